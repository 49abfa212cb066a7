// Package jsonlogic compiles flagd's targeting rules, JsonLogic with the
// operations flagd adds, once per revision into closures over typed
// values, so that evaluating a rule reads the context directly, builds no
// maps, parses no JSON and allocates nothing.
//
// Rules mean what they mean in flagd: the operations of flagd's targeting
// schema, with the semantics of the JsonLogic library flagd evaluates them
// with (github.com/diegoholiveira/jsonlogic/v3); flagd's fractional
// (murmur3 bucketing, bit-for-bit as flagd's, so a rollout migrated from
// flagd keeps its users), sem_ver, starts_with and ends_with; $ref to the
// document's shared $evaluators; and the $flagd.flagKey and
// $flagd.timestamp properties. ld_bucket and unleash_hash add the
// bucketing of LaunchDarkly and Unleash, so a rollout imported from either
// keeps assigning every user to the same side. Anything else is refused
// at compile time, at its JSON path.
//
// Nothing a rule or a context holds can make compiling or evaluating slow
// or large: a document compiles in time proportional to its size, a rule
// has at most MaxRuleOperations operations with every $ref expanded, and an
// evaluation spends at most MaxEvalOperations operations and MaxEvalBytes
// bytes, past which it fails with ErrBudget.
package jsonlogic

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Rule is a flag's targeting rule, compiled. It is immutable, so one
// compiled revision serves concurrent evaluations.
type Rule struct {
	root evalFunc
	// flagKey is the key of the flag the rule belongs to, boxed once so
	// $flagd.flagKey costs nothing per evaluation.
	flagKey any
	// usesTime is set when the rule may read $flagd.timestamp, so other
	// rules never read the clock.
	usesTime bool
	// bounded is set when the rule iterates, builds strings or arrays, or
	// has more than maxOperationsWithoutBudget operations: only its
	// evaluations take a budget.
	bounded bool
}

// Compiler compiles the targeting rules of one document against its shared
// evaluators ($evaluators). Each evaluator is compiled once, however many
// rules refer to it and however deeply, and its compiled form is shared by
// them all, so compiling a document costs time in proportion to its size,
// never to the size of its rules with every $ref expanded; that size is
// counted, and limited to MaxRuleOperations a rule. A Compiler is not safe
// for concurrent use; the rules it compiles are.
type Compiler struct {
	c compiler
}

// NewCompiler returns a compiler for the rules of a document whose shared
// evaluators are evaluators.
func NewCompiler(evaluators map[string]json.RawMessage) *Compiler {
	return &Compiler{c: compiler{evaluators: evaluators, folding: fullBudget}}
}

// Compile compiles raw, the targeting rule of flag flagKey. A rule is
// compiled for its flag because $flagd.flagKey and fractional read the
// key: held from here, it costs no allocation per evaluation. Errors are
// *CompileError, located from "targeting", the rule's field in the flag.
func (cc *Compiler) Compile(flagKey string, raw json.RawMessage) (*Rule, error) {
	r, err := cc.c.rule(raw, "targeting")
	if err != nil {
		return nil, err
	}
	r.flagKey = flagKey
	return r, nil
}

// ValidateEvaluators compiles every shared evaluator on its own, so one
// that no flag uses yet cannot hide an error until a flag does. Its error
// is a *CompileError naming the evaluator, located from
// "$evaluators.<name>".
func (cc *Compiler) ValidateEvaluators() error {
	c := &cc.c
	for _, name := range slices.Sorted(maps.Keys(c.evaluators)) {
		root := "$evaluators." + name
		s, err := c.shared(name, root)
		if err != nil {
			return err
		}
		if s.err != nil {
			return &CompileError{Path: root + strings.TrimPrefix(s.err.Path, "("+name+")"), Msg: s.err.Msg, Evaluator: name}
		}
		if _, ok := c.parsed[name].(map[string]any); !ok {
			return &CompileError{Path: root, Msg: fmt.Sprintf("must be a JsonLogic object, not %s", jsonType(c.parsed[name])), Evaluator: name}
		}
	}
	return nil
}

// Eval evaluates the rule against ctx, OpenFeature's flattened evaluation
// context, reading the clock only for a rule that reads $flagd.timestamp.
// An error is ErrContext (errors.Is) when an attribute of ctx has no JSON
// form, ErrBudget when the evaluation needed more than its budget; any
// other is a failure of the rule itself, where the library flagd uses
// fails too.
func (r *Rule) Eval(ctx map[string]any) (Value, error) {
	var now int64
	if r.usesTime {
		now = time.Now().Unix()
	}
	return r.evalAt(ctx, now)
}

// evalAt evaluates the rule with $flagd.timestamp set to now (Unix
// seconds).
func (r *Rule) evalAt(ctx map[string]any, now int64) (Value, error) {
	return r.evalWithin(ctx, now, fullBudget)
}

// evalWithin evaluates the rule with the budget limit, if it needs one.
func (r *Rule) evalWithin(ctx map[string]any, now int64, limit budget) (Value, error) {
	e := env{ctx: ctx, flagKey: r.flagKey, now: now}
	if !r.bounded {
		return r.root(e)
	}
	b := budgets.Get().(*budget)
	*b = limit
	e.b = b
	v, err := r.root(e)
	budgets.Put(b)
	return v, err
}

// CompileError is a rule that does not compile: what is wrong and where,
// as a JSON path in the flag document, so its author can find the part
// at fault.
type CompileError struct {
	// Path locates the problem, such as targeting.if[0].in or
	// $evaluators.staff.==, with $ref(name) marking an expansion.
	Path string
	// Msg says what is wrong.
	Msg string
	// Evaluator names the shared evaluator at fault when
	// ValidateEvaluators, compiling it on its own, found the problem.
	Evaluator string
}

// Error returns the message prefixed by its path.
func (e *CompileError) Error() string { return e.Path + ": " + e.Msg }

func errorAt(path, format string, args ...any) error {
	return &CompileError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// env is what a rule reads while it is evaluated: the caller's flattened
// context and flagd's $flagd properties. It is passed by value so an
// evaluation keeps it on the stack. Inside map, filter, all, none, some and
// reduce, var reads the current element (elem) instead. b is the
// evaluation's budget, nil for a rule that needs none.
type env struct {
	ctx map[string]any
	// flagKey is the flag's key, boxed once per flag.
	flagKey any
	now     int64
	elem    any
	scoped  bool
	b       *budget
}

// evalFunc is a compiled rule or sub-rule.
type evalFunc func(e env) (Value, error)

// expr is a compiled sub-rule. A constant one (konst) is folded into its
// parent at compile time. nodes counts the operations evaluating it runs,
// every $ref expanded: what one pass of an iteration over it costs.
type expr struct {
	eval  evalFunc
	konst bool
	val   Value
	nodes int
}

func constant(v Value) expr {
	return expr{eval: func(env) (Value, error) { return v, nil }, konst: true, val: v}
}

// operatorFunc compiles one operation; path names the operation itself
// (e.g. targeting.if[1].in) and args is its raw argument.
type operatorFunc func(c *compiler, args any, path string, depth int) (expr, error)

// operators are the operations a rule may use: flagd's JsonLogic (its
// targeting schema), flagd's custom operations, and the bucketing of the
// vendors Switchyard imports from. Anything else is refused at compile
// time. It is filled in init because the compilers refer back to it.
var operators map[string]operatorFunc

func init() {
	operators = map[string]operatorFunc{
		"var": compileVar, "missing": compileMissing, "missing_some": compileMissingSome,
		"if": compileIf, "?:": compileIf, "and": compileAnd, "or": compileOr,
		"!": compileNot, "!!": compileNotNot,
		"==": compileEquality(looseEquals, false), "!=": compileEquality(looseEquals, true),
		"===": compileEquality(strictEquals, false), "!==": compileEquality(strictEquals, true),
		"<": compileLess(false), "<=": compileLess(true), ">": compileGreater(false), ">=": compileGreater(true),
		"+": compileSum, "-": compileMinus, "*": compileProduct, "/": compileDivide, "%": compileModulo,
		"min": compileMinMax(false), "max": compileMinMax(true),
		"in": compileIn, "cat": compileCat, "substr": compileSubstr, "merge": compileMerge,
		"map": compileMap, "filter": compileFilter, "reduce": compileReduce,
		"all": compileQuantifier(quantAll), "none": compileQuantifier(quantNone), "some": compileQuantifier(quantSome),
		"starts_with": compileAffix(strings.HasPrefix), "ends_with": compileAffix(strings.HasSuffix),
		"sem_ver": compileSemVer, "fractional": compileFractional,
		"ld_bucket": compileLDBucket, "unleash_hash": compileUnleashHash,
	}
}

// compiler compiles the rules of one document. It keeps each shared
// evaluator compiled (refs) and what the rule or evaluator being compiled
// has used so far: its operations (ops), the deepest level it reached,
// the clock, a budget.
type compiler struct {
	evaluators map[string]json.RawMessage
	parsed     map[string]any
	refs       map[string]*sharedRule
	expanding  []string
	// folding is what compile-time evaluation of constant sub-rules may
	// still spend, for the whole document: past it, they are left to
	// evaluation.
	folding budget

	ops      int
	deepest  int
	usesTime bool
	bounded  bool
}

// sharedRule is a shared evaluator compiled on its own, at depth 0, with
// what a rule referring to it takes over: its operations, how deep it
// nests, whether it reads the clock or needs a budget. err, with a path
// relative to the reference, is why it does not compile.
type sharedRule struct {
	x        expr
	ops      int
	height   int
	usesTime bool
	bounded  bool
	err      *CompileError
}

// unit is what the compiler counts for the rule or evaluator it compiles.
type unit struct {
	ops, deepest      int
	usesTime, bounded bool
}

func (c *compiler) unit() unit {
	return unit{ops: c.ops, deepest: c.deepest, usesTime: c.usesTime, bounded: c.bounded}
}

func (c *compiler) setUnit(u unit) {
	c.ops, c.deepest, c.usesTime, c.bounded = u.ops, u.deepest, u.usesTime, u.bounded
}

// rule compiles the rule raw, whose path is root.
func (c *compiler) rule(raw json.RawMessage, root string) (*Rule, error) {
	var x any
	if err := json.Unmarshal(raw, &x); err != nil {
		return nil, errorAt(root, "not valid JSON: %v", err)
	}
	if _, ok := x.(map[string]any); !ok {
		return nil, errorAt(root, "must be a JsonLogic object, not %s", jsonType(x))
	}
	c.setUnit(unit{})
	top, err := c.compile(x, root, 0)
	if err != nil {
		return nil, err
	}
	return &Rule{root: top.eval, usesTime: c.usesTime, bounded: c.bounded || c.ops > maxOperationsWithoutBudget}, nil
}

// compile compiles x, a rule, an argument or a literal, found at path.
func (c *compiler) compile(x any, path string, depth int) (expr, error) {
	before := c.ops
	e, err := c.compileNode(x, path, depth)
	if err == nil && !e.konst {
		e.nodes = c.ops - before
	}
	return e, err
}

func (c *compiler) compileNode(x any, path string, depth int) (expr, error) {
	if depth > maxRuleDepth {
		return expr{}, errorAt(path, "nested deeper than %d levels", maxRuleDepth)
	}
	c.deepest = max(c.deepest, depth)
	switch v := x.(type) {
	case map[string]any:
		if len(v) == 0 {
			return constant(Value{k: KindObject, x: map[string]any{}}), nil
		}
		if len(v) > 1 {
			return expr{}, errorAt(path, "an operation is an object with exactly one key, found %d (%s)",
				len(v), strings.Join(slices.Sorted(maps.Keys(v)), ", "))
		}
		if err := c.count(1, path); err != nil {
			return expr{}, err
		}
		for op, args := range v {
			if op == "$ref" {
				return c.ref(args, path+".$ref", depth)
			}
			compileOp, ok := operators[op]
			if !ok {
				return expr{}, errorAt(path+"."+op, "unknown operator %q", op)
			}
			return compileOp(c, args, path+"."+op, depth+1)
		}
	case []any:
		return c.array(v, path, depth)
	}
	v, err := c.literal(x, path, depth)
	if err != nil {
		return expr{}, err
	}
	return constant(v), nil
}

// count adds n operations to the rule being compiled, which may have at
// most MaxRuleOperations.
func (c *compiler) count(n int, path string) error {
	c.ops += n
	if c.ops > MaxRuleOperations {
		return errorAt(path, "more than %d operations with every $ref expanded, the limit of one rule", MaxRuleOperations)
	}
	return nil
}

// literal converts a decoded JSON value used as data, checking its depth.
func (c *compiler) literal(x any, path string, depth int) (Value, error) {
	d := jsonDepth(x, maxRuleDepth-depth+1)
	if d > maxRuleDepth-depth {
		return null, errorAt(path, "nested deeper than %d levels", maxRuleDepth)
	}
	c.deepest = max(c.deepest, depth+d)
	return fromAny(x)
}

// jsonDepth returns the nesting depth of x, counting at most to limit.
func jsonDepth(x any, limit int) int {
	if limit <= 0 {
		return 0
	}
	best := 0
	switch v := x.(type) {
	case map[string]any:
		for _, e := range v {
			best = max(best, jsonDepth(e, limit-1))
		}
	case []any:
		for _, e := range v {
			best = max(best, jsonDepth(e, limit-1))
		}
	default:
		return 0
	}
	return best + 1
}

// array compiles a literal array whose elements JsonLogic evaluates.
func (c *compiler) array(a []any, path string, depth int) (expr, error) {
	elems, err := c.compileAll(a, path, depth)
	if err != nil {
		return expr{}, err
	}
	if allConstant(elems) {
		out := make([]any, len(elems))
		for i, e := range elems {
			out[i] = e.val.toAny()
		}
		return constant(arrayValue(out)), nil
	}
	return expr{eval: func(e env) (Value, error) {
		if err := e.spend(0, len(elems)*elementBytes); err != nil {
			return null, err
		}
		out := make([]any, len(elems))
		for i, el := range elems {
			v, err := el.eval(e)
			if err != nil {
				return null, err
			}
			out[i] = v.toAny()
		}
		return arrayValue(out), nil
	}}, nil
}

func (c *compiler) compileAll(a []any, path string, depth int) ([]expr, error) {
	out := make([]expr, len(a))
	for i, x := range a {
		e, err := c.compile(x, fmt.Sprintf("%s[%d]", path, i), depth+1)
		if err != nil {
			return nil, err
		}
		out[i] = e
	}
	return out, nil
}

func allConstant(es []expr) bool {
	for _, e := range es {
		if !e.konst {
			return false
		}
	}
	return true
}

// ref compiles {"$ref": "name"}: the shared evaluator name, as if written
// in its place, as flagd expands it. The evaluator is compiled once, and
// its compiled form shared; what it costs (operations, depth) is counted
// as if expanded.
func (c *compiler) ref(args any, path string, depth int) (expr, error) {
	name, ok := args.(string)
	if !ok {
		return expr{}, errorAt(path, "must name an evaluator, not %s", jsonType(args))
	}
	s, err := c.shared(name, path)
	if err != nil {
		return expr{}, err
	}
	if s.err != nil {
		return expr{}, &CompileError{Path: path + s.err.Path, Msg: s.err.Msg}
	}
	at := fmt.Sprintf("%s(%s)", path, name)
	if depth+1+s.height > maxRuleDepth {
		return expr{}, errorAt(at, "nested deeper than %d levels", maxRuleDepth)
	}
	if err := c.count(s.ops, at); err != nil {
		return expr{}, err
	}
	c.deepest = max(c.deepest, depth+1+s.height)
	c.usesTime = c.usesTime || s.usesTime
	c.bounded = c.bounded || s.bounded
	return s.x, nil
}

// shared returns the evaluator name compiled on its own, compiling it the
// first time. Its errors are located relative to a reference
// ("(name).in", "" for the reference itself); the errors of the reference
// at path (no such evaluator, an evaluator that refers to itself) are
// returned.
func (c *compiler) shared(name, path string) (*sharedRule, error) {
	if s, ok := c.refs[name]; ok {
		return s, nil
	}
	raw, ok := c.evaluators[name]
	if !ok {
		return nil, errorAt(path, "no evaluator named %q in $evaluators", name)
	}
	if slices.Contains(c.expanding, name) {
		return nil, errorAt(path, "evaluator %q refers to itself (%s -> %s)",
			name, strings.Join(c.expanding, " -> "), name)
	}
	if c.refs == nil {
		c.refs, c.parsed = map[string]*sharedRule{}, map[string]any{}
	}
	var x any
	if err := json.Unmarshal(raw, &x); err != nil {
		s := &sharedRule{err: &CompileError{Msg: fmt.Sprintf("evaluator %q is not valid JSON: %v", name, err)}}
		c.refs[name] = s
		return s, nil
	}
	c.parsed[name] = x
	outer := c.unit()
	c.setUnit(unit{})
	c.expanding = append(c.expanding, name)
	compiled, err := c.compile(x, "("+name+")", 0)
	c.expanding = c.expanding[:len(c.expanding)-1]
	s := &sharedRule{x: compiled, ops: c.ops, height: c.deepest, usesTime: c.usesTime, bounded: c.bounded}
	c.setUnit(outer)
	if err != nil {
		var ce *CompileError
		if !errors.As(err, &ce) {
			ce = &CompileError{Path: "(" + name + ")", Msg: err.Error()}
		}
		s.err = ce
	}
	c.refs[name] = s
	return s, nil
}

// args compiles an operation's argument array, which must hold between
// minN and maxN elements (maxN < 0: no upper bound).
func (c *compiler) args(args any, path string, depth, minN, maxN int) ([]expr, error) {
	a, ok := args.([]any)
	if !ok {
		return nil, errorAt(path, "takes an array of arguments, not %s", jsonType(args))
	}
	if len(a) < minN || (maxN >= 0 && len(a) > maxN) {
		return nil, errorAt(path, "takes %s, got %d", arity(minN, maxN), len(a))
	}
	return c.compileAll(a, path, depth)
}

func arity(minN, maxN int) string {
	switch {
	case minN == maxN && minN == 1:
		return "1 argument"
	case minN == maxN:
		return fmt.Sprintf("%d arguments", minN)
	case maxN < 0:
		return fmt.Sprintf("at least %d argument%s", minN, plural(minN))
	}
	return fmt.Sprintf("%d to %d arguments", minN, maxN)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// fold evaluates e once at compile time when every argument is constant,
// so the rule does that work once per revision instead of once per call.
// A failure is left for evaluation time, where it belongs, and so is what
// would take the document past its budget for folding.
func (c *compiler) fold(e expr, args ...expr) expr {
	if !allConstant(args) {
		return e
	}
	v, err := e.eval(env{b: &c.folding})
	if err != nil {
		return e
	}
	return constant(v)
}

func jsonType(x any) string {
	switch x.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	}
	return "an object"
}

// The var operation and the lookups it shares with missing.

// compileVar compiles {"var": path}, {"var": [path]} and
// {"var": [path, default]}.
func compileVar(c *compiler, args any, path string, depth int) (expr, error) {
	switch a := args.(type) {
	case string:
		return c.varPath(a, expr{}), nil
	case float64:
		return c.varPath(strconv.FormatFloat(a, 'f', -1, 64), expr{}), nil
	case nil:
		return expr{eval: func(e env) (Value, error) { return e.lookupValue(null) }}, nil
	case map[string]any:
		p, err := c.compile(a, path+"[0]", depth)
		if err != nil {
			return expr{}, err
		}
		c.usesTime = true
		return expr{eval: func(e env) (Value, error) {
			pv, err := p.eval(e)
			if err != nil {
				return null, err
			}
			return e.lookupValue(pv)
		}}, nil
	case []any:
		if len(a) == 0 {
			return c.varPath("", expr{}), nil
		}
		if len(a) > 2 {
			return expr{}, errorAt(path, "takes a path and an optional default, got %d arguments", len(a))
		}
		var def expr
		if len(a) == 2 {
			d, err := c.compile(a[1], path+"[1]", depth)
			if err != nil {
				return expr{}, err
			}
			def = d
		}
		switch p := a[0].(type) {
		case string:
			return c.varPath(p, def), nil
		case map[string]any:
			pe, err := c.compile(p, path+"[0]", depth)
			if err != nil {
				return expr{}, err
			}
			c.usesTime = true
			return expr{eval: func(e env) (Value, error) {
				d := null
				if def.eval != nil {
					var err error
					if d, err = def.eval(e); err != nil {
						return null, err
					}
				}
				pv, err := pe.eval(e)
				if err != nil {
					return null, err
				}
				if pv.k != KindString {
					return null, ruleErrorf("var: the path is %s, not a string", pv.k)
				}
				if err := e.scan(pv, null); err != nil {
					return null, err
				}
				return e.lookup(pv.Text(), d)
			}}, nil
		}
		return expr{}, errorAt(path+"[0]", "the path must be a string, not %s", jsonType(a[0]))
	}
	return expr{}, errorAt(path, "takes a path, not %s", jsonType(args))
}

// varPath compiles a lookup of a fixed path, with def evaluated (as
// JsonLogic does, before the lookup) when the path is missing.
func (c *compiler) varPath(p string, def expr) expr {
	if readsTime(p) {
		c.usesTime = true
	}
	if def.eval == nil {
		segs := segments(p)
		switch {
		case len(segs) == 1 && segs[0] != flagdPrefix:
			// A plain context attribute, the common case: one map read.
			name := segs[0]
			return expr{eval: func(e env) (Value, error) {
				if e.scoped {
					return e.lookup(p, null)
				}
				return fromAny(e.ctx[name])
			}}
		case len(segs) > 1 && segs[0] != flagdPrefix:
			// A nested attribute: the path is split once, here.
			return expr{eval: func(e env) (Value, error) {
				if e.scoped {
					return e.lookup(p, null)
				}
				return walk(e.ctx[segs[0]], segs[1:], null)
			}}
		}
		return expr{eval: func(e env) (Value, error) { return e.lookup(p, null) }}
	}
	if def.konst {
		d := def.val
		return expr{eval: func(e env) (Value, error) { return e.lookup(p, d) }}
	}
	return expr{eval: func(e env) (Value, error) {
		d, err := def.eval(e)
		if err != nil {
			return null, err
		}
		return e.lookup(p, d)
	}}
}

const flagdPrefix = "$flagd"

// readsTime reports whether a lookup of path p at the top level may read
// $flagd.timestamp, so evaluation reads the clock only for rules that do.
func readsTime(p string) bool {
	seg, rest, ok := nextSegment(p)
	if !ok {
		return true
	}
	if seg != flagdPrefix {
		return false
	}
	seg, _, ok = nextSegment(rest)
	return !ok || seg == "timestamp"
}

// lookupValue resolves a path computed at evaluation time, as JsonLogic's
// var does with whatever its argument evaluated to.
func (e env) lookupValue(p Value) (Value, error) {
	if err := e.scan(p, null); err != nil {
		return null, err
	}
	switch p.k {
	case KindString:
		return e.lookup(p.Text(), null)
	case KindNumber:
		s, _ := p.str()
		return e.lookup(s, null)
	case KindNull:
		if e.scoped {
			if v, err := fromAny(e.elem); err == nil && (v.k == KindBool || v.k == KindNumber || v.k == KindString) {
				return v, nil
			}
		}
		return null, nil
	case KindArray:
		a := p.array()
		if len(a) == 0 {
			return e.lookup("", null)
		}
		s, ok := a[0].(string)
		if !ok {
			return null, ruleErrorf("var: the path is %s, not a string", jsonType(a[0]))
		}
		d := null
		if len(a) == 2 {
			var err error
			if d, err = fromAny(a[1]); err != nil {
				return null, err
			}
		}
		return e.lookup(s, d)
	}
	return null, ruleErrorf("var: the path is %s, not a string", p.k)
}

// lookup resolves a dotted path in the data, returning def when any step
// is missing or null. Segments index arrays by their numeric value. At the
// top level the data is the context plus flagd's $flagd object
// ({"flagKey", "timestamp"}), which is never built unless a rule asks for
// it whole.
func (e env) lookup(p string, def Value) (Value, error) {
	var cur any
	rest := p
	if e.scoped {
		if e.elem == nil {
			return def, nil
		}
		cur = e.elem
	} else {
		seg, r, ok := nextSegment(rest)
		if !ok {
			// A copy of the context: an entry costs a key and a value.
			if err := e.spend(len(e.ctx), (len(e.ctx)+1)*2*elementBytes); err != nil {
				return null, err
			}
			return Value{k: KindObject, x: e.wholeData()}, nil
		}
		rest = r
		if seg == flagdPrefix {
			seg, r, ok = nextSegment(rest)
			if !ok {
				return Value{k: KindObject, x: e.flagdProperties()}, nil
			}
			if _, _, deeper := nextSegment(r); deeper {
				return def, nil
			}
			switch seg {
			case "flagKey":
				return Value{k: KindString, x: e.flagKey}, nil
			case "timestamp":
				return numberValue(float64(e.now)), nil
			}
			return def, nil
		}
		cur = e.ctx[seg]
		if cur == nil {
			return def, nil
		}
	}
	for seg, r, ok := nextSegment(rest); ok; seg, r, ok = nextSegment(r) {
		next, found, err := step(cur, seg)
		if err != nil {
			return null, err
		}
		if !found {
			return def, nil
		}
		cur = next
	}
	return fromAny(cur)
}

// segments splits a path into its non-empty segments.
func segments(p string) []string {
	var out []string
	for seg, rest, ok := nextSegment(p); ok; seg, rest, ok = nextSegment(rest) {
		out = append(out, seg)
	}
	return out
}

// walk follows segs down from cur, as lookup does after the first segment.
func walk(cur any, segs []string, def Value) (Value, error) {
	if cur == nil {
		return def, nil
	}
	for _, seg := range segs {
		next, ok, err := step(cur, seg)
		if err != nil || !ok {
			return def, err
		}
		cur = next
	}
	return fromAny(cur)
}

// step reads segment seg of cur: a key of an object or, by its numeric
// value, an index of an array. ok is false when there is nothing there
// (or nothing but null).
func step(cur any, seg string) (next any, ok bool, err error) {
	if m, isMap := cur.(map[string]any); isMap {
		next = m[seg]
		return next, next != nil, nil
	}
	c, isContainer, err := container(cur)
	if err != nil || !isContainer {
		return nil, false, err
	}
	switch c := c.(type) {
	case map[string]any:
		next = c[seg]
	case []any:
		f, _ := strconv.ParseFloat(seg, 64)
		i := int(f)
		if i < 0 || i >= len(c) {
			return nil, false, nil
		}
		next = c[i]
	}
	return next, next != nil, nil
}

// nextSegment splits the first non-empty dot-separated segment off p.
func nextSegment(p string) (seg, rest string, ok bool) {
	for p != "" {
		i := strings.IndexByte(p, '.')
		if i < 0 {
			return p, "", true
		}
		seg, p = p[:i], p[i+1:]
		if seg != "" {
			return seg, p, true
		}
	}
	return "", "", false
}

// key returns the key of the flag being evaluated.
func (e env) key() string {
	s, _ := e.flagKey.(string)
	return s
}

func (e env) flagdProperties() map[string]any {
	return map[string]any{"flagKey": e.flagKey, "timestamp": float64(e.now)}
}

func (e env) wholeData() map[string]any {
	m := make(map[string]any, len(e.ctx)+1)
	maps.Copy(m, e.ctx)
	m[flagdPrefix] = e.flagdProperties()
	return m
}

// compileMissing compiles {"missing": [paths]}: the paths whose value is
// missing or null.
func compileMissing(c *compiler, args any, path string, depth int) (expr, error) {
	c.usesTime, c.bounded = true, true
	var list expr
	switch a := args.(type) {
	case []any:
		l, err := c.array(a, path, depth)
		if err != nil {
			return expr{}, err
		}
		list = l
	case string:
		list = constant(arrayValue([]any{a}))
	case map[string]any:
		l, err := c.compile(a, path+"[0]", depth)
		if err != nil {
			return expr{}, err
		}
		list = l
	default:
		return expr{}, errorAt(path, "takes an array of paths, not %s", jsonType(args))
	}
	return expr{eval: func(e env) (Value, error) {
		l, err := list.eval(e)
		if err != nil {
			return null, err
		}
		switch l.k {
		case KindString:
			l = arrayValue([]any{l.x})
		case KindArray:
		default:
			return null, ruleErrorf("missing: takes an array of paths, not %s", l.k)
		}
		missing, _, err := e.missing(l.array())
		if err != nil {
			return null, err
		}
		return arrayValue(missing), nil
	}}, nil
}

var emptyArray = []any{}

// missing returns the paths that resolve to null, and how many resolved.
// Each path costs the evaluation an operation, and a place in the result.
func (e env) missing(paths []any) ([]any, int, error) {
	if err := e.spend(len(paths), len(paths)*elementBytes); err != nil {
		return nil, 0, err
	}
	out := emptyArray
	found := 0
	for _, p := range paths {
		pv, err := fromAny(p)
		if err != nil {
			return nil, 0, err
		}
		v, err := e.lookupValue(pv)
		if err != nil {
			return nil, 0, err
		}
		if v.k == KindNull {
			if len(out) == 0 {
				out = make([]any, 0, len(paths))
			}
			out = append(out, p)
		} else {
			found++
		}
	}
	return out, found, nil
}

// compileMissingSome compiles {"missing_some": [need, [paths]]}: no paths
// when at least need of them are present, else the missing ones.
func compileMissingSome(c *compiler, args any, path string, depth int) (expr, error) {
	c.usesTime, c.bounded = true, true
	a, err := c.args(args, path, depth, 2, 2)
	if err != nil {
		return expr{}, err
	}
	need, list := a[0], a[1]
	return expr{eval: func(e env) (Value, error) {
		nv, err := need.eval(e)
		if err != nil {
			return null, err
		}
		l, err := list.eval(e)
		if err != nil {
			return null, err
		}
		n, err := nv.number()
		if err != nil {
			return null, fmt.Errorf("missing_some: %w", err)
		}
		if l.k != KindArray {
			return null, ruleErrorf("missing_some: the paths are %s, not an array", l.k)
		}
		missing, found, err := e.missing(l.array())
		if err != nil {
			return null, err
		}
		if int(n) > found {
			return arrayValue(missing), nil
		}
		return arrayValue(emptyArray), nil
	}}, nil
}

// isIntegral reports whether f is a whole number that fits an int64.
func isIntegral(f float64) bool {
	return f == math.Trunc(f) && math.Abs(f) < 1<<63
}
