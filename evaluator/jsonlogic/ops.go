package jsonlogic

import (
	"fmt"
	"math"
	"strings"
)

// The JsonLogic operations flagd's targeting schema allows, with the
// semantics of the library flagd evaluates them with
// (github.com/diegoholiveira/jsonlogic/v3). Arities follow flagd's schema
// and are checked at compile time; where the library fails at evaluation
// (a type it cannot convert), so does the compiled rule.

func compileIf(c *compiler, args any, path string, depth int) (expr, error) {
	a, err := c.args(args, path, depth, 1, -1)
	if err != nil {
		return expr{}, err
	}
	if len(a) == 3 {
		cond, then, otherwise := a[0].eval, a[1].eval, a[2].eval
		return c.fold(expr{eval: func(e env) (Value, error) {
			v, err := cond(e)
			if err != nil {
				return null, err
			}
			if v.truthy() {
				return then(e)
			}
			return otherwise(e)
		}}, a...), nil
	}
	f := funcs(a)
	n := len(f)
	return c.fold(expr{eval: func(e env) (Value, error) {
		for i := 0; i+1 < n; i += 2 {
			cond, err := f[i](e)
			if err != nil {
				return null, err
			}
			if cond.truthy() {
				return f[i+1](e)
			}
		}
		if n%2 == 1 {
			return f[n-1](e)
		}
		return null, nil
	}}, a...), nil
}

// funcs returns the evaluation functions of es, which closures iterate
// over more cheaply than the exprs.
func funcs(es []expr) []evalFunc {
	out := make([]evalFunc, len(es))
	for i, e := range es {
		out[i] = e.eval
	}
	return out
}

// compileAnd returns the first falsy argument, or the last one.
func compileAnd(c *compiler, args any, path string, depth int) (expr, error) {
	return compileShortCircuit(c, args, path, depth, false)
}

// compileOr returns the first truthy argument, or the last one.
func compileOr(c *compiler, args any, path string, depth int) (expr, error) {
	return compileShortCircuit(c, args, path, depth, true)
}

func compileShortCircuit(c *compiler, args any, path string, depth int, stopOn bool) (expr, error) {
	a, err := c.args(args, path, depth, 1, -1)
	if err != nil {
		return expr{}, err
	}
	f := funcs(a)
	return c.fold(expr{eval: func(e env) (Value, error) {
		var last Value
		for _, x := range f {
			v, err := x(e)
			if err != nil {
				return null, err
			}
			if v.truthy() == stopOn {
				return v, nil
			}
			last = v
		}
		return last, nil
	}}, a...), nil
}

// compileNot compiles !, which takes one argument, bare or in an array.
func compileNot(c *compiler, args any, path string, depth int) (expr, error) {
	x, err := c.unary(args, path, depth)
	if err != nil {
		return expr{}, err
	}
	return c.fold(expr{eval: func(e env) (Value, error) {
		v, err := x.eval(e)
		return boolValue(!v.truthy()), err
	}}, x), nil
}

// compileNotNot compiles !!, the cast to a boolean.
func compileNotNot(c *compiler, args any, path string, depth int) (expr, error) {
	x, err := c.unary(args, path, depth)
	if err != nil {
		return expr{}, err
	}
	return c.fold(expr{eval: func(e env) (Value, error) {
		v, err := x.eval(e)
		return boolValue(v.truthy()), err
	}}, x), nil
}

// unary compiles the argument of ! and !!. Given bare, an argument that
// evaluates to a non-empty array stands for its first element, as in the
// library.
func (c *compiler) unary(args any, path string, depth int) (expr, error) {
	if a, ok := args.([]any); ok {
		x, err := c.args(a, path, depth, 1, 1)
		if err != nil {
			return expr{}, err
		}
		return x[0], nil
	}
	x, err := c.compile(args, path+"[0]", depth)
	if err != nil {
		return expr{}, err
	}
	return c.fold(expr{eval: func(e env) (Value, error) {
		v, err := x.eval(e)
		if err != nil {
			return null, err
		}
		if a := v.array(); v.k == KindArray && len(a) > 0 {
			return fromAny(a[0])
		}
		return v, nil
	}}, x), nil
}

func compileEquality(eq func(a, b Value) bool, negate bool) operatorFunc {
	return func(c *compiler, args any, path string, depth int) (expr, error) {
		a, err := c.args(args, path, depth, 2, 2)
		if err != nil {
			return expr{}, err
		}
		x, y := a[0].eval, a[1].eval
		return c.fold(expr{eval: func(e env) (Value, error) {
			l, err := x(e)
			if err != nil {
				return null, err
			}
			r, err := y(e)
			if err != nil {
				return null, err
			}
			if err := e.scan(l, r); err != nil {
				return null, err
			}
			return boolValue(eq(l, r) != negate), nil
		}}, a...), nil
	}
}

// compileLess compiles < and <=, which also test that the middle of three
// arguments lies between the other two.
func compileLess(orEqual bool) operatorFunc {
	cmp := func(a, b Value) bool { return less(a, b) || (orEqual && looseEquals(a, b)) }
	return func(c *compiler, args any, path string, depth int) (expr, error) {
		a, err := c.args(args, path, depth, 2, 3)
		if err != nil {
			return expr{}, err
		}
		x, y := a[0].eval, a[1].eval
		if len(a) == 2 {
			return c.fold(expr{eval: func(e env) (Value, error) {
				l, err := x(e)
				if err != nil {
					return null, err
				}
				r, err := y(e)
				if err != nil {
					return null, err
				}
				if err := e.scan(l, r); err != nil {
					return null, err
				}
				return boolValue(cmp(l, r)), nil
			}}, a...), nil
		}
		z := a[2].eval
		return c.fold(expr{eval: func(e env) (Value, error) {
			l, err := x(e)
			if err != nil {
				return null, err
			}
			m, err := y(e)
			if err != nil {
				return null, err
			}
			r, err := z(e)
			if err != nil {
				return null, err
			}
			if err := e.scan(l, m); err != nil {
				return null, err
			}
			if err := e.scan(m, r); err != nil {
				return null, err
			}
			return boolValue(cmp(l, m) && cmp(m, r)), nil
		}}, a...), nil
	}
}

// compileGreater compiles > and >=.
func compileGreater(orEqual bool) operatorFunc {
	return func(c *compiler, args any, path string, depth int) (expr, error) {
		a, err := c.args(args, path, depth, 2, 2)
		if err != nil {
			return expr{}, err
		}
		x, y := a[0].eval, a[1].eval
		return c.fold(expr{eval: func(e env) (Value, error) {
			l, err := x(e)
			if err != nil {
				return null, err
			}
			r, err := y(e)
			if err != nil {
				return null, err
			}
			if err := e.scan(l, r); err != nil {
				return null, err
			}
			return boolValue(less(r, l) || (orEqual && looseEquals(r, l))), nil
		}}, a...), nil
	}
}

// arithmetic compiles an operation on numbers: combine folds each argument
// after the first into the running result.
func arithmetic(c *compiler, args any, path string, depth, minN, maxN int, op string,
	single func(float64) float64, combine func(acc, n float64) float64) (expr, error) {
	a, err := c.args(args, path, depth, minN, maxN)
	if err != nil {
		return expr{}, err
	}
	f := funcs(a)
	return c.fold(expr{eval: func(e env) (Value, error) {
		var acc float64
		for i, x := range f {
			v, err := x(e)
			if err != nil {
				return null, err
			}
			if err := e.scan(v, null); err != nil {
				return null, err
			}
			n, err := v.number()
			if err != nil {
				return null, fmt.Errorf("%s: %w", op, err)
			}
			if i == 0 {
				acc = n
			} else {
				acc = combine(acc, n)
			}
		}
		if len(f) == 1 {
			acc = single(acc)
		}
		return numberValue(acc), nil
	}}, a...), nil
}

func identity(n float64) float64 { return n }

func compileSum(c *compiler, args any, path string, depth int) (expr, error) {
	return arithmetic(c, args, path, depth, 1, -1, "+", identity, func(acc, n float64) float64 { return acc + n })
}

func compileMinus(c *compiler, args any, path string, depth int) (expr, error) {
	return arithmetic(c, args, path, depth, 1, -1, "-", func(n float64) float64 { return -1 * n },
		func(acc, n float64) float64 { return acc - n })
}

func compileProduct(c *compiler, args any, path string, depth int) (expr, error) {
	return arithmetic(c, args, path, depth, 2, -1, "*", identity, func(acc, n float64) float64 { return acc * n })
}

func compileDivide(c *compiler, args any, path string, depth int) (expr, error) {
	return arithmetic(c, args, path, depth, 2, 2, "/", identity, func(acc, n float64) float64 { return acc / n })
}

func compileModulo(c *compiler, args any, path string, depth int) (expr, error) {
	return arithmetic(c, args, path, depth, 2, 2, "%", identity, math.Mod)
}

func compileMinMax(isMax bool) operatorFunc {
	op := "min"
	if isMax {
		op = "max"
	}
	return func(c *compiler, args any, path string, depth int) (expr, error) {
		return arithmetic(c, args, path, depth, 1, -1, op, identity, func(acc, n float64) float64 {
			if (isMax && n > acc) || (!isMax && acc > n) {
				return n
			}
			return acc
		})
	}
}

// compileIn compiles {"in": [needle, haystack]}: a substring test when the
// haystack is a string, membership when it is an array (where an element
// that is itself an array [lo, hi] is a range).
func compileIn(c *compiler, args any, path string, depth int) (expr, error) {
	a, err := c.args(args, path, depth, 2, 2)
	if err != nil {
		return expr{}, err
	}
	needle, haystack := a[0].eval, a[1]
	if list, ok := stringList(haystack); ok {
		contains := containsFunc(list)
		return expr{eval: func(e env) (Value, error) {
			n, err := needle(e)
			if err != nil {
				return null, err
			}
			if n.k == KindString {
				return boolValue(contains(n.Text())), nil
			}
			found, err := e.in(n, haystack.val)
			return boolValue(found), err
		}}, nil
	}
	return c.fold(expr{eval: func(e env) (Value, error) {
		n, err := needle(e)
		if err != nil {
			return null, err
		}
		h, err := haystack.eval(e)
		if err != nil {
			return null, err
		}
		found, err := e.in(n, h)
		return boolValue(found), err
	}}, a...), nil
}

// stringList returns a constant haystack made only of strings.
func stringList(h expr) ([]string, bool) {
	if !h.konst || h.val.k != KindArray {
		return nil, false
	}
	list := make([]string, 0, len(h.val.array()))
	for _, x := range h.val.array() {
		s, ok := x.(string)
		if !ok {
			return nil, false
		}
		list = append(list, s)
	}
	return list, true
}

// containsFunc returns a membership test for list: a scan for short lists,
// where comparing lengths first beats hashing, a set for long ones.
func containsFunc(list []string) func(string) bool {
	if len(list) <= 16 {
		return func(s string) bool {
			for _, x := range list {
				if len(x) == len(s) && x == s {
					return true
				}
			}
			return false
		}
	}
	set := make(map[string]struct{}, len(list))
	for _, x := range list {
		set[x] = struct{}{}
	}
	return func(s string) bool {
		_, ok := set[s]
		return ok
	}
}

// in reports whether needle is in haystack, a string or an array; any
// other haystack holds nothing. It charges the evaluation for reading the
// haystack whole, and in an array for comparing the needle to each
// element.
func (e env) in(needle, haystack Value) (bool, error) {
	switch haystack.k {
	case KindString:
		if needle.k != KindString {
			return false, ruleErrorf("in: looking for %s in a string", needle.k)
		}
		if err := e.scan(haystack, needle); err != nil {
			return false, err
		}
		return strings.Contains(haystack.Text(), needle.Text()), nil
	case KindArray:
		if err := e.spend(len(haystack.array())*(1+scanCost(needle.Text())), 0); err != nil {
			return false, err
		}
		for _, raw := range haystack.array() {
			el, err := fromAny(raw)
			if err != nil {
				return false, err
			}
			if found, err := matches(needle, el); found || err != nil {
				return found, err
			}
		}
	}
	return false, nil
}

// matches reports whether needle matches one element of an in haystack.
func matches(needle, el Value) (bool, error) {
	switch {
	case el.k == KindArray:
		return inRange(needle, el.array())
	case needle.k == KindNumber:
		n, err := el.number()
		if err != nil {
			return false, fmt.Errorf("in: %w", err)
		}
		return n == needle.n, nil
	case el.k != needle.k:
		return false, nil
	}
	switch el.k {
	case KindNull:
		return true, nil
	case KindBool:
		return el.b == needle.b, nil
	case KindString:
		return el.Text() == needle.Text(), nil
	}
	return false, ruleErrorf("in: objects cannot be compared")
}

func inRange(needle Value, bounds []any) (bool, error) {
	if len(bounds) < 2 {
		return false, ruleErrorf("in: a range needs two bounds, got %d", len(bounds))
	}
	x, err := needle.number()
	if err != nil {
		return false, fmt.Errorf("in: %w", err)
	}
	lo, err := rangeBound(bounds[0])
	if err != nil || x < lo {
		return false, err
	}
	hi, err := rangeBound(bounds[1])
	return err == nil && hi >= x, err
}

func rangeBound(raw any) (float64, error) {
	v, err := fromAny(raw)
	if err != nil {
		return 0, err
	}
	n, err := v.number()
	if err != nil {
		return 0, fmt.Errorf("in: %w", err)
	}
	return n, nil
}

// compileCat concatenates its arguments as strings. Like the library, it
// trims white space from the result of two or more arguments.
// The string is charged to the evaluation before it is built.
func compileCat(c *compiler, args any, path string, depth int) (expr, error) {
	a, err := c.args(args, path, depth, 1, -1)
	if err != nil {
		return expr{}, err
	}
	c.bounded = true
	f := funcs(a)
	return c.fold(expr{eval: func(e env) (Value, error) {
		if len(f) == 1 {
			v, err := f[0](e)
			if err != nil || v.k == KindString {
				return v, err
			}
			s, err := v.str()
			if err != nil {
				return null, fmt.Errorf("cat: %w", err)
			}
			return stringValue(s), nil
		}
		var buf [8]string
		parts := buf[:0]
		size := 0
		for _, x := range f {
			v, err := x(e)
			if err != nil {
				return null, err
			}
			s, err := v.str()
			if err != nil {
				return null, fmt.Errorf("cat: %w", err)
			}
			parts = append(parts, s)
			size += len(s)
		}
		if err := e.spend(0, size); err != nil {
			return null, err
		}
		var b strings.Builder
		b.Grow(size)
		for _, s := range parts {
			b.WriteString(s)
		}
		return stringValue(strings.TrimSpace(b.String())), nil
	}}, a...), nil
}

// compileSubstr compiles {"substr": [string, start, length?]}, counting in
// characters; a negative start counts from the end, a negative length
// stops that many characters before it.
func compileSubstr(c *compiler, args any, path string, depth int) (expr, error) {
	a, err := c.args(args, path, depth, 2, 3)
	if err != nil {
		return expr{}, err
	}
	c.bounded = true
	f := funcs(a)
	return c.fold(expr{eval: func(e env) (Value, error) {
		var v [3]Value
		if err := evalInto(e, f, v[:]); err != nil {
			return null, err
		}
		s, err := v[0].str()
		if err != nil {
			return null, fmt.Errorf("substr: %w", err)
		}
		// The characters take at most four bytes each, and so does the
		// result.
		if err := e.spend(scanCost(s), 8*len(s)); err != nil {
			return null, err
		}
		runes := []rune(s)
		start, err := v[1].number()
		if err != nil {
			return null, fmt.Errorf("substr: %w", err)
		}
		from, length := int(start), len(runes)
		if from < 0 {
			from += length
		}
		if from < 0 || from > length {
			if v[0].k == KindString {
				return v[0], nil
			}
			return stringValue(s), nil
		}
		if len(f) == 3 {
			l, err := v[2].number()
			if err != nil {
				return null, fmt.Errorf("substr: %w", err)
			}
			length = int(l)
		}
		to := from + length
		if length < 0 {
			to = len(runes) + length
		}
		to = min(to, len(runes))
		if to < from {
			return null, ruleErrorf("substr: the length ends before the start")
		}
		return stringValue(string(runes[from:to])), nil
	}}, a...), nil
}

// compileMerge flattens its arguments, one level deep, into one array.
func compileMerge(c *compiler, args any, path string, depth int) (expr, error) {
	a, err := c.args(args, path, depth, 1, -1)
	if err != nil {
		return expr{}, err
	}
	c.bounded = true
	f := funcs(a)
	return c.fold(expr{eval: func(e env) (Value, error) {
		var buf [8]Value
		vs := buf[:0]
		size := 0
		for _, x := range f {
			v, err := x(e)
			if err != nil {
				return null, err
			}
			vs = append(vs, v)
			if v.k == KindArray {
				size += len(v.array())
			} else {
				size++
			}
		}
		if err := e.spend(0, size*elementBytes); err != nil {
			return null, err
		}
		out := make([]any, 0, size)
		for _, v := range vs {
			if v.k == KindArray {
				out = append(out, v.array()...)
			} else {
				out = append(out, v.toAny())
			}
		}
		return arrayValue(out), nil
	}}, a...), nil
}

// The array operations evaluate their second argument once per element of
// the first, with var reading the element. A literal array is taken as
// data, unevaluated, as the library does.

// subject compiles the array an array operation iterates over.
func (c *compiler) subject(args any, path string, depth, n int) (evalFunc, []expr, error) {
	a, ok := args.([]any)
	if !ok || len(a) != n {
		return nil, nil, errorAt(path, "takes %s", arity(n, n))
	}
	rest, err := c.compileAll(a[1:], path, depth)
	if err != nil {
		return nil, nil, err
	}
	switch s := a[0].(type) {
	case []any:
		v, err := c.literal(s, path+"[0]", depth)
		if err != nil {
			return nil, nil, err
		}
		return constant(v).eval, rest, nil
	case map[string]any:
		x, err := c.compile(s, path+"[0]", depth+1)
		if err != nil {
			return nil, nil, err
		}
		return x.eval, rest, nil
	}
	return constant(null).eval, rest, nil
}

func compileMap(c *compiler, args any, path string, depth int) (expr, error) {
	return c.collect(args, path, depth, "map", mapped)
}

func compileFilter(c *compiler, args any, path string, depth int) (expr, error) {
	return c.collect(args, path, depth, "filter", kept)
}

// mapped keeps what map's body gives each element.
func mapped(_ any, v Value) (any, bool) { return v.toAny(), true }

// kept keeps the elements filter's body finds truthy.
func kept(item any, v Value) (any, bool) { return item, v.truthy() }

// collect compiles op (map or filter): the body runs for each element of
// the subject, and pick says what of the element and the body's value the
// result keeps. The result's room is charged to the budget before it is
// built.
func (c *compiler) collect(args any, path string, depth int, op string, pick func(item any, v Value) (any, bool)) (expr, error) {
	subject, rest, err := c.subject(args, path, depth, 2)
	if err != nil {
		return expr{}, err
	}
	c.bounded = true
	body := loopOver(rest[0])
	return expr{eval: func(e env) (Value, error) {
		items, err := iterate(e, subject, op)
		if err != nil || items == nil {
			return arrayValue(emptyArray), err
		}
		if err := e.spend(0, len(items)*elementBytes); err != nil {
			return null, err
		}
		out := make([]any, 0, len(items))
		for _, it := range items {
			v, err := body.run(e, it)
			if err != nil {
				return null, err
			}
			if x, ok := pick(it, v); ok {
				out = append(out, x)
			}
		}
		return arrayValue(out), nil
	}}, nil
}

// evalInto evaluates fs in order into v, which has room for them all,
// stopping at the first error.
func evalInto(e env, fs []evalFunc, v []Value) error {
	for i, f := range fs {
		var err error
		if v[i], err = f(e); err != nil {
			return err
		}
	}
	return nil
}

// iterate evaluates an array operation's subject: nil when it is null, an
// error when it is not an array.
func iterate(e env, subject evalFunc, op string) ([]any, error) {
	s, err := subject(e)
	if err != nil {
		return nil, err
	}
	switch s.k {
	case KindNull:
		return nil, nil
	case KindArray:
		if a := s.array(); a != nil {
			return a, nil
		}
		return emptyArray, nil
	}
	return nil, ruleErrorf("%s: iterates over %s, not an array", op, s.k)
}

// loop is the body of an iteration, with what one pass costs the
// evaluation: its operations, and at least one.
type loop struct {
	eval evalFunc
	cost int
}

func loopOver(body expr) loop { return loop{eval: body.eval, cost: max(1, body.nodes)} }

// run evaluates the body over elem, charging the evaluation for the pass.
func (l loop) run(e env, elem any) (Value, error) {
	if err := e.spend(l.cost, 0); err != nil {
		return null, err
	}
	return l.eval(e.scope(elem))
}

func (e env) scope(elem any) env {
	e.elem, e.scoped = elem, true
	return e
}

type quantifier int

const (
	quantAll quantifier = iota
	quantNone
	quantSome
)

// compileQuantifier compiles all, none and some. A falsy subject (null or
// an empty array) makes all and some false and none true.
func compileQuantifier(q quantifier) operatorFunc {
	name := [...]string{"all", "none", "some"}[q]
	return func(c *compiler, args any, path string, depth int) (expr, error) {
		subject, rest, err := c.subject(args, path, depth, 2)
		if err != nil {
			return expr{}, err
		}
		c.bounded = true
		body := loopOver(rest[0])
		return expr{eval: func(e env) (Value, error) {
			s, err := subject(e)
			if err != nil {
				return null, err
			}
			if !s.truthy() {
				return boolValue(q == quantNone), nil
			}
			if s.k != KindArray {
				return null, ruleErrorf("%s: iterates over %s, not an array", name, s.k)
			}
			for _, it := range s.array() {
				v, err := body.run(e, it)
				if err != nil {
					return null, err
				}
				switch t := v.truthy(); {
				case q == quantAll && !t:
					return falseValue, nil
				case q == quantNone && t:
					return falseValue, nil
				case q == quantSome && t:
					return trueValue, nil
				}
			}
			return boolValue(q != quantSome), nil
		}}, nil
	}
}

// reduceScopeBytes is what the object reduce's rule reads costs the
// evaluation: a small map.
const reduceScopeBytes = 512

// compileReduce compiles {"reduce": [array, rule, initial]}: the rule reads
// {"current", "accumulator"} and its result, converted to the type of the
// initial value, becomes the next accumulator. Null elements are skipped;
// a null subject gives 0.
func compileReduce(c *compiler, args any, path string, depth int) (expr, error) {
	subject, rest, err := c.subject(args, path, depth, 3)
	if err != nil {
		return expr{}, err
	}
	c.bounded = true
	body, initial := loopOver(rest[0]), rest[1].eval
	return expr{eval: func(e env) (Value, error) {
		acc, err := initial(e)
		if err != nil {
			return null, err
		}
		if acc.k != KindBool && acc.k != KindNumber && acc.k != KindString {
			return null, ruleErrorf("reduce: the initial value is %s, not a boolean, number or string", acc.k)
		}
		items, err := iterate(e, subject, "reduce")
		if err != nil {
			return null, err
		}
		if items == nil {
			return numberValue(0), nil
		}
		if err := e.spend(0, reduceScopeBytes); err != nil {
			return null, err
		}
		k := acc.k
		data := map[string]any{"current": 0.0, "accumulator": acc.toAny(), "valueType": k.String()}
		for _, it := range items {
			if it == nil {
				continue
			}
			data["current"] = it
			v, err := body.run(e, data)
			if err != nil {
				return null, err
			}
			switch k {
			case KindBool:
				acc = boolValue(v.truthy())
			case KindNumber:
				n, err := v.number()
				if err != nil {
					return null, fmt.Errorf("reduce: %w", err)
				}
				acc = numberValue(n)
			case KindString:
				if v.k == KindString {
					acc = v
					break
				}
				s, err := v.str()
				if err != nil {
					return null, fmt.Errorf("reduce: %w", err)
				}
				acc = stringValue(s)
			}
			data["accumulator"] = acc.toAny()
		}
		return acc, nil
	}}, nil
}

// compileAffix compiles flagd's starts_with and ends_with. Like flagd, it
// gives null (so the default variant is served), not false, unless given
// exactly two strings.
func compileAffix(test func(s, affix string) bool) operatorFunc {
	return func(c *compiler, args any, path string, depth int) (expr, error) {
		a, err := c.args(args, path, depth, 0, -1)
		if err != nil {
			return expr{}, err
		}
		if len(a) == 2 && a[1].konst && a[1].val.k == KindString {
			x, affix := a[0].eval, a[1].val.Text()
			return c.fold(expr{eval: func(e env) (Value, error) {
				v, err := x(e)
				if err != nil || v.k != KindString {
					return null, err
				}
				return boolValue(test(v.Text(), affix)), nil
			}}, a...), nil
		}
		f := funcs(a)
		return c.fold(expr{eval: func(e env) (Value, error) {
			var v [2]Value
			for i, x := range f {
				r, err := x(e)
				if err != nil {
					return null, err
				}
				if i < 2 {
					v[i] = r
				}
			}
			if len(f) != 2 || v[0].k != KindString || v[1].k != KindString {
				return null, nil
			}
			return boolValue(test(v[0].Text(), v[1].Text())), nil
		}}, a...), nil
	}
}
