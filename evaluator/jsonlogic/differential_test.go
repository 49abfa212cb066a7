package jsonlogic

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	library "github.com/diegoholiveira/jsonlogic/v3"
)

// The differential test: generated rules over generated contexts, each
// evaluated by the compiled rule and by the library flagd uses, must give
// the same result, or both fail.
//
// The generator leaves out two behaviours of the library that Switchyard
// deliberately does not copy: an "if" branch whose value is an object
// with exactly one key is run again as a rule (so context data would be
// executed as code); and inside filter, none and some, a var is first
// resolved against the outer data (a var naming a context attribute, or
// carrying a default, never reads the element). Generated contexts
// therefore hold no one-key objects, and element rules read, without
// defaults, only element fields (x, y) that no context has.

const diffTimestamp = 1_700_000_000

func TestDifferentialAgainstJsonLogic(t *testing.T) {
	n := 4000
	if testing.Short() {
		n = 500
	}
	failures := 0
	for seed := range uint64(n) {
		if msg := differential(seed); msg != "" {
			t.Error(msg)
			if failures++; failures > 10 {
				t.Fatal("too many differences")
			}
		}
	}
}

// FuzzDifferential explores the generator's space from fuzzed seeds.
func FuzzDifferential(f *testing.F) {
	for seed := range uint64(8) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		if msg := differential(seed); msg != "" {
			t.Error(msg)
		}
	})
}

// differential compares one generated case, returning a description of
// any difference.
func differential(seed uint64) string {
	g := &ruleGen{r: rand.New(rand.NewPCG(seed, 0x5717c4a7d))}
	rule := g.operation(0)
	ctx := g.context()
	raw, err := json.Marshal(rule)
	if err != nil {
		return fmt.Sprintf("seed %d: marshal rule: %v", seed, err)
	}
	compiled, err := compileRule("diff-flag", raw, nil)
	if err != nil {
		return fmt.Sprintf("seed %d: rule %s does not compile: %v", seed, raw, err)
	}
	ctxJSON, _ := json.Marshal(ctx)
	var ours map[string]any
	if err := json.Unmarshal(ctxJSON, &ours); err != nil {
		return fmt.Sprintf("seed %d: %v", seed, err)
	}
	got, gotErr := compiled.evalAt(ours, diffTimestamp)
	want, wantErr := referenceApply(raw, "diff-flag", ctxJSON)
	switch {
	case (gotErr != nil) != (wantErr != nil):
		return fmt.Sprintf("seed %d: rule %s\ncontext %s\nswitchyard: %v, %v\njsonlogic:  %v, %v",
			seed, raw, ctxJSON, got.toAny(), gotErr, want, wantErr)
	case gotErr == nil && !sameJSONValue(got.toAny(), want):
		return fmt.Sprintf("seed %d: rule %s\ncontext %s\nswitchyard: %#v\njsonlogic:  %#v",
			seed, raw, ctxJSON, got.toAny(), want)
	}
	return ""
}

// referenceApply evaluates rule with the library over the data flagd
// would give it.
func referenceApply(rule []byte, flagKey string, ctxJSON []byte) (any, error) {
	registerFlagdOperators()
	var r, data any
	if err := json.Unmarshal(rule, &r); err != nil {
		return nil, err
	}
	var ctx map[string]any
	if err := json.Unmarshal(ctxJSON, &ctx); err != nil {
		return nil, err
	}
	if ctx == nil {
		ctx = map[string]any{}
	}
	ctx["$flagd"] = map[string]any{"flagKey": flagKey, "timestamp": float64(diffTimestamp)}
	b, _ := json.Marshal(ctx)
	if err := json.Unmarshal(b, &data); err != nil {
		return nil, err
	}
	return library.ApplyInterface(r, data)
}

// sameJSONValue compares two results as JSON values (numbers by value,
// NaN equal to NaN, a nil slice equal to an empty one).
func sameJSONValue(a, b any) bool {
	if x, ok := asFloat(a); ok {
		y, ok := asFloat(b)
		return ok && (x == y || (math.IsNaN(x) && math.IsNaN(y)))
	}
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameJSONValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !sameJSONValue(v, w) {
				return false
			}
		}
		return true
	}
	return a == b
}

func asFloat(x any) (float64, bool) {
	switch v := x.(type) {
	case float64:
		return v, true
	case int:
		return float64(v), true
	}
	return 0, false
}

// ruleGen generates JsonLogic rules and contexts.
type ruleGen struct {
	r *rand.Rand
	// scope is the kind of element var reads inside an array operation:
	// "" at the top level, "element" or "reduce".
	scope string
}

const maxGenDepth = 4

var (
	genStrings = []any{"", "a", "abc", "1", "2.5", " ", " 7 ", "10", "true", "null", "0x1p-2", "inf",
		"alice@example.com", "@example.com", "pro", "free", "ab", "bc"}
	genNumbers = []any{0.0, 1.0, -1.0, 2.0, 2.5, 10.0, 100.0, -3.7, 0.5, 3.0}
	topPaths   = []string{"email", "age", "plan", "tags", "user.name", "user.age", "tags.0", "tags.1", "tags.x",
		"nested.a.b", "nested.a", "nested", "missing", "n", "s", "b", "items", "items.0.x", "targetingKey",
		"$flagd.flagKey", "$flagd.timestamp", "$flagd", "", "user..name"}
	elementPaths = []string{"", "x", "y", "x.0"}
	reducePaths  = []string{"current", "accumulator", "current.x"}
	operators1   = []string{"!", "!!"}
	comparisons  = []string{"==", "===", "!=", "!==", ">", ">=", "<", "<="}
	arithmetics  = []string{"+", "-", "*", "/", "%", "min", "max"}
)

func (g *ruleGen) pick(xs []any) any { return xs[g.r.IntN(len(xs))] }

func (g *ruleGen) pickString(xs []string) string { return xs[g.r.IntN(len(xs))] }

// literal is a primitive or a small array of primitives.
func (g *ruleGen) literal() any {
	switch g.r.IntN(9) {
	case 0:
		return nil
	case 1:
		return g.r.IntN(2) == 0
	case 2, 3:
		return g.pick(genNumbers)
	case 4, 5, 6:
		return g.pick(genStrings)
	}
	a := make([]any, g.r.IntN(4))
	for i := range a {
		if g.r.IntN(5) == 0 {
			a[i] = []any{g.pick(genNumbers), g.pick(genNumbers)}
		} else {
			a[i] = g.primitive()
		}
	}
	return a
}

func (g *ruleGen) primitive() any {
	switch g.r.IntN(4) {
	case 0:
		return g.pick(genNumbers)
	case 1:
		return g.r.IntN(2) == 0
	}
	return g.pick(genStrings)
}

// arg is an argument: a literal, a var or, while depth allows, an
// operation.
func (g *ruleGen) arg(depth int) any {
	switch n := g.r.IntN(10); {
	case depth < maxGenDepth && n < 4:
		return g.operation(depth + 1)
	case n < 7:
		return g.variable(depth)
	}
	return g.literal()
}

func (g *ruleGen) args(depth, minN, maxN int) []any {
	a := make([]any, minN+g.r.IntN(maxN-minN+1))
	for i := range a {
		a[i] = g.arg(depth)
	}
	return a
}

func (g *ruleGen) variable(depth int) any {
	var path string
	switch g.scope {
	case "element":
		path = g.pickString(elementPaths)
	case "reduce":
		path = g.pickString(reducePaths)
	default:
		path = g.pickString(topPaths)
	}
	if g.scope == "element" {
		// The library's filter, none and some resolve a var against the
		// outer data first: {"var": [""]} is the whole context there, and
		// a var with a default is always found.
		if path == "" || g.r.IntN(2) == 0 {
			return map[string]any{"var": path}
		}
		return map[string]any{"var": []any{path}}
	}
	switch g.r.IntN(4) {
	case 0:
		return map[string]any{"var": []any{path, g.literal()}}
	case 1:
		return map[string]any{"var": []any{path}}
	}
	return map[string]any{"var": path}
}

func op(name string, args any) map[string]any { return map[string]any{name: args} }

func isArray(x any) bool {
	_, ok := x.([]any)
	return ok
}

func (g *ruleGen) operation(depth int) any {
	if depth >= maxGenDepth {
		return g.variable(depth)
	}
	switch g.r.IntN(16) {
	case 0:
		return op("if", g.args(depth, 1, 5))
	case 1:
		return op([]string{"and", "or"}[g.r.IntN(2)], g.args(depth, 1, 3))
	case 2:
		name := g.pickString(operators1)
		if a := g.arg(depth); g.r.IntN(2) == 0 && !isArray(a) {
			return op(name, a)
		}
		return op(name, []any{g.arg(depth)})
	case 3, 4:
		name := g.pickString(comparisons)
		if (name == "<" || name == "<=") && g.r.IntN(3) == 0 {
			return op(name, g.args(depth, 3, 3))
		}
		return op(name, g.args(depth, 2, 2))
	case 5:
		switch name := g.pickString(arithmetics); name {
		case "/", "%":
			return op(name, g.args(depth, 2, 2))
		case "*":
			return op(name, g.args(depth, 2, 3))
		default:
			return op(name, g.args(depth, 1, 3))
		}
	case 6:
		return op("in", []any{g.arg(depth), g.arg(depth)})
	case 7:
		return op("cat", g.args(depth, 1, 3))
	case 8:
		return op("substr", g.args(depth, 2, 3))
	case 9:
		return op("merge", g.args(depth, 1, 3))
	case 10:
		paths := make([]any, g.r.IntN(3)+1)
		for i := range paths {
			paths[i] = g.pickString(topPaths[:len(topPaths)-4])
		}
		if g.scope != "" {
			return op("!", []any{g.literal()})
		}
		if g.r.IntN(2) == 0 {
			return op("missing", paths)
		}
		return op("missing_some", []any{float64(g.r.IntN(3)), paths})
	case 11, 12:
		if g.scope == "" {
			return g.arrayOperation(depth)
		}
	case 13:
		return op("?:", g.args(depth, 1, 3))
	}
	return op(g.pickString(comparisons), []any{g.variable(depth), g.literal()})
}

// arrayOperation generates map, filter, reduce, all, none or some over a
// context array or a literal one. They are not nested: the library
// resolves an inner operation's vars against the outer element.
func (g *ruleGen) arrayOperation(depth int) any {
	subject := g.literal()
	if g.r.IntN(3) != 0 {
		subject = map[string]any{"var": g.pickString([]string{"tags", "items", "missing", "n", "s"})}
	}
	defer func() { g.scope = "" }()
	name := []string{"map", "filter", "reduce", "all", "none", "some"}[g.r.IntN(6)]
	if name == "reduce" {
		g.scope = "reduce"
		body := g.body(depth + 1)
		return op(name, []any{subject, body, g.primitive()})
	}
	g.scope = "element"
	body := g.body(depth + 1)
	return op(name, []any{subject, body})
}

// body is the rule of an array operation: always an operation, as the
// library requires.
func (g *ruleGen) body(depth int) any {
	if depth >= maxGenDepth {
		return op(g.pickString(comparisons), []any{g.variable(depth), g.literal()})
	}
	return g.operation(depth)
}

// context generates a flattened evaluation context. Its objects have no
// key or at least two (see the file comment).
func (g *ruleGen) context() map[string]any {
	all := map[string]func() any{
		"targetingKey": func() any { return g.pick([]any{"user-1", "user-2", "", nil}) },
		"email":        func() any { return g.pick([]any{"alice@example.com", "bob@corp.io", "", 5.0, nil}) },
		"age":          func() any { return g.pick([]any{0.0, 17.0, 42.0, "42", 3.5, nil, true}) },
		"plan":         func() any { return g.pick([]any{"pro", "free", "", nil, 1.0}) },
		"tags":         func() any { return g.list(func() any { return g.pick([]any{"a", "b", "pro", 1.0, true, nil}) }) },
		"user": func() any {
			return g.pick([]any{map[string]any{"name": "alice", "age": 30.0}, map[string]any{}, "user", nil})
		},
		"nested": func() any {
			return map[string]any{"a": map[string]any{"b": g.primitive(), "c": 2.0}, "d": g.primitive()}
		},
		"n": func() any { return g.pick(genNumbers) },
		"s": func() any { return g.pick(genStrings) },
		"b": func() any { return g.r.IntN(2) == 0 },
		"items": func() any {
			return g.list(func() any {
				if g.r.IntN(3) == 0 {
					return g.primitive()
				}
				return map[string]any{"x": g.primitive(), "y": g.primitive()}
			})
		},
	}
	ctx := map[string]any{}
	for k, f := range all {
		if g.r.IntN(4) != 0 {
			ctx[k] = f()
		}
	}
	return ctx
}

func (g *ruleGen) list(elem func() any) []any {
	a := make([]any, g.r.IntN(4))
	for i := range a {
		a[i] = elem()
	}
	return a
}
