package jsonlogic

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// ruleContext is the context of the operator tests.
const ruleContext = `{
	"targetingKey": "user-1", "email": "alice@example.com", "age": 42, "plan": "pro",
	"tags": ["a", "b"], "nums": [1, 2, 3], "zeros": [0, 1], "nothing": null, "1": "one",
	"user": {"name": "alice", "langs": ["en", "fr"]}
}`

// compileRule compiles one rule of flag flagKey, with the document's
// shared evaluators.
func compileRule(flagKey string, raw json.RawMessage, evaluators map[string]json.RawMessage) (*Rule, error) {
	return NewCompiler(evaluators).Compile(flagKey, raw)
}

// evalRule compiles rule and evaluates it for flag "my-flag" over ctx
// (JSON), returning the result as encoding/json would decode it.
func evalRule(t *testing.T, rule, ctx string, evaluators map[string]json.RawMessage) (any, error) {
	t.Helper()
	r, err := compileRule("my-flag", []byte(rule), evaluators)
	if err != nil {
		t.Fatalf("compile %s: %v", rule, err)
	}
	var c map[string]any
	if err := json.Unmarshal([]byte(ctx), &c); err != nil {
		t.Fatal(err)
	}
	v, err := r.evalAt(c, diffTimestamp)
	return v.toAny(), err
}

func decodeJSON(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return v
}

func TestOperators(t *testing.T) {
	// libraryDiffers holds the one deliberate difference from the
	// library: in filter, none and some, var reads the element even when
	// the context has an attribute of that name.
	libraryDiffers := map[string]bool{`{"filter": [{"var": "nums"}, {"var": "email"}]}`: true}
	tests := []struct {
		rule string
		want string // JSON; empty when the rule must fail
	}{
		// var
		{`{"var": "email"}`, `"alice@example.com"`},
		{`{"var": ["email"]}`, `"alice@example.com"`},
		{`{"var": "user.name"}`, `"alice"`},
		{`{"var": "user..name"}`, `"alice"`},
		{`{"var": "user.langs.1"}`, `"fr"`},
		{`{"var": "tags.5"}`, `null`},
		{`{"var": "tags.x"}`, `"a"`},
		{`{"var": "email.length"}`, `null`},
		{`{"var": ["missing", "fallback"]}`, `"fallback"`},
		{`{"var": ["nothing", "fallback"]}`, `"fallback"`},
		{`{"var": ["email", "fallback"]}`, `"alice@example.com"`},
		{`{"var": 1}`, `"one"`},
		{`{"var": null}`, `null`},
		{`{"var": "$flagd.flagKey"}`, `"my-flag"`},
		{`{"var": "$flagd.timestamp"}`, `1700000000`},
		{`{"var": "$flagd"}`, `{"flagKey": "my-flag", "timestamp": 1700000000}`},
		{`{"var": "$flagd.flagKey.x"}`, `null`},
		{`{"var": "$flagd.other"}`, `null`},
		{`{"var": {"cat": ["user", ".", "name"]}}`, `"alice"`},
		{`{"var": {"if": [true, ["missing", 7]]}}`, `7`},
		{`{"var": {"if": [true, true]}}`, ``},
		{`{"var": [{"cat": ["e", "mail"]}, "x"]}`, `"alice@example.com"`},
		// missing, missing_some
		{`{"missing": ["email", "phone", "user.name", "user.age"]}`, `["phone", "user.age"]`},
		{`{"missing": "phone"}`, `["phone"]`},
		{`{"missing": []}`, `[]`},
		{`{"missing": {"merge": [["email"], "fax"]}}`, `["fax"]`},
		{`{"missing_some": [1, ["email", "phone"]]}`, `[]`},
		{`{"missing_some": [2, ["email", "phone", "fax"]]}`, `["phone", "fax"]`},
		{`{"missing_some": [1, "email"]}`, ``},
		// if, ?:
		{`{"if": [true, "a", "b"]}`, `"a"`},
		{`{"if": [false, "a", "b"]}`, `"b"`},
		{`{"if": [false, "a"]}`, `null`},
		{`{"if": ["x"]}`, `"x"`},
		{`{"if": [false, "a", true, "c", "d"]}`, `"c"`},
		{`{"if": [0, "a", [], "b", "", "c", null, "d", "else"]}`, `"else"`},
		{`{"if": [false, {"in": [1, "abc"]}, "safe"]}`, `"safe"`},
		{`{"?:": [true, 1, 2]}`, `1`},
		// and, or
		{`{"and": [true, "x", 0, "y"]}`, `0`},
		{`{"and": [1, "x"]}`, `"x"`},
		{`{"and": [false, {"in": [1, "abc"]}]}`, `false`},
		{`{"and": [true, {"in": [1, "abc"]}]}`, ``},
		{`{"or": [false, 0, "", null]}`, `null`},
		{`{"or": [0, "first", true]}`, `"first"`},
		// !, !!
		{`{"!": [true]}`, `false`},
		{`{"!": true}`, `false`},
		{`{"!": [[]]}`, `true`},
		{`{"!": [{"var": "zeros"}]}`, `false`},
		{`{"!": {"var": "zeros"}}`, `true`},
		{`{"!!": ["0"]}`, `true`},
		{`{"!!": [0]}`, `false`},
		{`{"!!": [{"var": "nothing"}]}`, `false`},
		// ==, ===, !=, !==
		{`{"==": [1, "1"]}`, `true`},
		{`{"==": [0, ""]}`, `true`},
		{`{"==": [" 1", 1]}`, `false`},
		{`{"==": [null, 0]}`, `false`},
		{`{"==": [null, null]}`, `true`},
		{`{"==": [true, 1]}`, `true`},
		{`{"==": [[1], [1]]}`, `false`},
		{`{"==": [{"var": "age"}, "42"]}`, `true`},
		{`{"===": [1, "1"]}`, `false`},
		{`{"===": [1, 1]}`, `true`},
		{`{"===": [null, null]}`, `true`},
		{`{"!=": [1, "1"]}`, `false`},
		{`{"!==": [1, "1"]}`, `true`},
		// <, <=, >, >=
		{`{"<": [1, 2]}`, `true`},
		{`{"<": ["a", "b"]}`, `true`},
		{`{"<": ["10", "9"]}`, `true`},
		{`{"<": [10, "9"]}`, `false`},
		{`{"<": [null, 1]}`, `true`},
		{`{"<": ["abc", 1]}`, `false`},
		{`{"<": [1, 2, 3]}`, `true`},
		{`{"<": [1, 3, 2]}`, `false`},
		{`{"<=": [2, 2]}`, `true`},
		{`{"<=": [1, 2, 2]}`, `true`},
		{`{"<=": [null, 0]}`, `false`},
		{`{">": [2, 1]}`, `true`},
		{`{">": ["b", "a"]}`, `true`},
		{`{">=": [{"var": "age"}, 18]}`, `true`},
		{`{">=": [1, 2]}`, `false`},
		// arithmetic
		{`{"+": [1, 2, 3]}`, `6`},
		{`{"+": ["1", 2]}`, `3`},
		{`{"+": ["3"]}`, `3`},
		{`{"+": ["abc", 1]}`, `1`},
		{`{"+": [true, 1]}`, ``},
		{`{"-": [10, 3, 2]}`, `5`},
		{`{"-": [4]}`, `-4`},
		{`{"*": [2, 3, 4]}`, `24`},
		{`{"/": [7, 2]}`, `3.5`},
		{`{"%": [7, 3]}`, `1`},
		{`{"%": [-7, 3]}`, `-1`},
		{`{"min": [3, 1, 2]}`, `1`},
		{`{"max": [3, "7", 2]}`, `7`},
		{`{"max": [null]}`, ``},
		// in
		{`{"in": ["b", ["a", "b"]]}`, `true`},
		{`{"in": ["c", ["a", "b"]]}`, `false`},
		{`{"in": [{"var": "plan"}, ["free", "pro"]]}`, `true`},
		{`{"in": ["lic", {"var": "email"}]}`, `true`},
		{`{"in": [1, ["1", 2]]}`, `true`},
		{`{"in": [5, [[1, 10]]]}`, `true`},
		{`{"in": [11, [[1, 10]]]}`, `false`},
		{`{"in": [5, [[1]]]}`, ``},
		{`{"in": [1, "abc"]}`, ``},
		{`{"in": [null, ["a", null]]}`, `true`},
		{`{"in": [true, [1, true]]}`, `true`},
		{`{"in": ["a", 5]}`, `false`},
		{`{"in": [1, [null]]}`, ``},
		// cat, substr, merge
		{`{"cat": ["a", 1, null, "b"]}`, `"a1b"`},
		{`{"cat": [" a ", "b "]}`, `"a b"`},
		{`{"cat": [" a "]}`, `" a "`},
		{`{"cat": [2.50]}`, `"2.5"`},
		{`{"cat": [true]}`, ``},
		{`{"substr": ["abcdef", 2]}`, `"cdef"`},
		{`{"substr": ["abcdef", -2]}`, `"ef"`},
		{`{"substr": ["abcdef", 1, 3]}`, `"bcd"`},
		{`{"substr": ["abcdef", 1, -1]}`, `"bcde"`},
		{`{"substr": ["héllo", 1, 2]}`, `"él"`},
		{`{"substr": ["abc", 10]}`, `"abc"`},
		{`{"substr": ["abcdef", 4, -3]}`, ``},
		{`{"merge": [[1, 2], [3], 4]}`, `[1, 2, 3, 4]`},
		{`{"merge": [[1, [2]]]}`, `[1, [2]]`},
		{`{"merge": [[{"var": "age"}], "x"]}`, `[42, "x"]`},
		// map, filter, reduce, all, none, some
		{`{"map": [{"var": "nums"}, {"*": [{"var": ""}, 2]}]}`, `[2, 4, 6]`},
		{`{"map": [[1, 2], {"+": [{"var": ""}, 1]}]}`, `[2, 3]`},
		{`{"map": [{"var": "missing"}, {"var": ""}]}`, `[]`},
		{`{"map": [{"var": "email"}, {"var": ""}]}`, ``},
		{`{"map": ["abc", {"var": ""}]}`, `[]`},
		{`{"map": [[{"a": 1, "b": 2}], {"var": "b"}]}`, `[2]`},
		{`{"filter": [{"var": "nums"}, {">": [{"var": ""}, 1]}]}`, `[2, 3]`},
		{`{"filter": [{"var": "nums"}, {"var": "email"}]}`, `[]`},
		{`{"reduce": [{"var": "nums"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]}`, `6`},
		{`{"reduce": [[1, 2], {"cat": [{"var": "accumulator"}, {"var": "current"}]}, ""]}`, `"12"`},
		{`{"reduce": [[1, null, 2], {"+": [{"var": "current"}, {"var": "accumulator"}]}, 10]}`, `13`},
		{`{"reduce": [{"var": "missing"}, {"var": "current"}, 10]}`, `0`},
		{`{"reduce": [[1], {"var": "current"}, []]}`, ``},
		{`{"all": [{"var": "nums"}, {">": [{"var": ""}, 0]}]}`, `true`},
		{`{"all": [[], {">": [{"var": ""}, 0]}]}`, `false`},
		{`{"all": ["x", {">": [{"var": ""}, 0]}]}`, `false`},
		{`{"all": [{"var": "email"}, {">": [{"var": ""}, 0]}]}`, ``},
		{`{"none": [{"var": "nums"}, {">": [{"var": ""}, 2]}]}`, `false`},
		{`{"none": [[], {">": [{"var": ""}, 2]}]}`, `true`},
		{`{"some": [{"var": "user.langs"}, {"==": [{"var": ""}, "fr"]}]}`, `true`},
		{`{"some": [{"var": "user.langs"}, {"==": [{"var": ""}, "de"]}]}`, `false`},
		// flagd's starts_with and ends_with
		{`{"starts_with": [{"var": "email"}, "alice"]}`, `true`},
		{`{"starts_with": [{"var": "email"}, "bob"]}`, `false`},
		{`{"starts_with": [{"var": "age"}, "4"]}`, `null`},
		{`{"starts_with": ["abc"]}`, `null`},
		{`{"ends_with": [{"var": "email"}, ".com"]}`, `true`},
		{`{"ends_with": [{"var": "email"}, {"var": "plan"}]}`, `false`},
		{`{"ends_with": ["a", "b", "c"]}`, `null`},
		{`{"ends_with": [{"var": "email"}, 5]}`, `null`},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			got, err := evalRule(t, tt.rule, ruleContext, nil)
			// The library flagd uses must agree with the expectation too.
			ref, refErr := referenceApply([]byte(tt.rule), "my-flag", []byte(ruleContext))
			if !libraryDiffers[tt.rule] && ((refErr != nil) != (tt.want == "") ||
				(refErr == nil && !sameJSONValue(ref, decodeJSON(t, tt.want)))) {
				t.Errorf("jsonlogic gives %#v, %v; the expectation is wrong", ref, refErr)
			}
			if tt.want == "" {
				var re *errRule
				if !errors.As(err, &re) {
					t.Fatalf("got %#v, %v; want a rule error", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("error %v, want %s", err, tt.want)
			}
			if want := decodeJSON(t, tt.want); !sameJSONValue(got, want) {
				t.Fatalf("got %#v, want %#v", got, want)
			}
		})
	}
}

func TestWholeDataIncludesFlagdProperties(t *testing.T) {
	got, err := evalRule(t, `{"var": ""}`, `{"a": 1}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := decodeJSON(t, `{"a": 1, "$flagd": {"flagKey": "my-flag", "timestamp": 1700000000}}`)
	if !sameJSONValue(got, want) {
		t.Fatalf("got %#v, want %#v", got, want)
	}
}

// Context values of Go types other than encoding/json's read as their
// JSON form, as flagd encodes the context before evaluating.
func TestGoContextValues(t *testing.T) {
	r, err := compileRule("f", []byte(`{"if": [{"and": [{"==": [{"var": "n"}, 42]}, {"in": ["b", {"var": "list"}]},
		{"==": [{"var": "m.k"}, "v"]}]}, "yes", "no"]}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := map[string]any{"n": int64(42), "list": []string{"a", "b"}, "m": map[string]string{"k": "v"}}
	v, err := r.evalAt(ctx, 0)
	if err != nil || v.toAny() != "yes" {
		t.Fatalf("got %v, %v; want yes", v.toAny(), err)
	}
	r, err = compileRule("f", []byte(`{"var": "ch"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.evalAt(map[string]any{"ch": make(chan int)}, 0); !errors.Is(err, ErrContext) {
		t.Fatalf("error %v, want ErrContext", err)
	}
}

func TestRefs(t *testing.T) {
	evaluators := map[string]json.RawMessage{
		"is_alice":  json.RawMessage(`{"==": [{"var": "email"}, "alice@example.com"]}`),
		"is_pro":    json.RawMessage(`{"==": [{"var": "plan"}, "pro"]}`),
		"both":      json.RawMessage(`{"and": [{"$ref": "is_alice"}, {"$ref": "is_pro"}]}`),
		"loop_a":    json.RawMessage(`{"!": {"$ref": "loop_b"}}`),
		"loop_b":    json.RawMessage(`{"!": {"$ref": "loop_a"}}`),
		"broken":    json.RawMessage(`{"in": [1]}`),
		"not_valid": json.RawMessage(`{"==": [`),
	}
	got, err := evalRule(t, `{"if": [{"$ref": "both"}, "hit", "miss"]}`, ruleContext, evaluators)
	if err != nil || got != "hit" {
		t.Fatalf("got %v, %v; want hit", got, err)
	}
	for rule, want := range map[string]string{
		`{"if": [{"$ref": "nope"}, 1]}`:   `targeting.if[0].$ref: no evaluator named "nope" in $evaluators`,
		`{"$ref": "loop_a"}`:              `targeting.$ref(loop_a).![0].$ref(loop_b).![0].$ref: evaluator "loop_a" refers to itself (loop_a -> loop_b -> loop_a)`,
		`{"if": [{"$ref": "broken"}, 1]}`: `targeting.if[0].$ref(broken).in: takes 2 arguments, got 1`,
		`{"$ref": "not_valid"}`:           `targeting.$ref: evaluator "not_valid" is not valid JSON`,
		`{"$ref": 5}`:                     `targeting.$ref: must name an evaluator, not a number`,
	} {
		_, err := compileRule("f", []byte(rule), evaluators)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", rule, err, want)
		}
	}
}

// Compile errors give the JSON path of the part at fault.
func TestCompileErrors(t *testing.T) {
	deep := strings.Repeat(`{"!": `, 70) + `true` + strings.Repeat(`}`, 70)
	tests := []struct{ rule, want string }{
		{`[1]`, `targeting: must be a JsonLogic object, not an array`},
		{`{"foo": [1]}`, `targeting.foo: unknown operator "foo"`},
		{`{"if": [{"in": [1]}, "a"]}`, `targeting.if[0].in: takes 2 arguments, got 1`},
		{`{"==": 1}`, `targeting.==: takes an array of arguments, not a number`},
		{`{"if": [{"a": 1, "b": 2}]}`, `targeting.if[0]: an operation is an object with exactly one key, found 2 (a, b)`},
		{`{"var": true}`, `targeting.var: takes a path, not a boolean`},
		{`{"var": [1]}`, `targeting.var[0]: the path must be a string, not a number`},
		{`{"var": ["a", 1, 2]}`, `targeting.var: takes a path and an optional default, got 3 arguments`},
		{`{"!": []}`, `targeting.!: takes 1 argument, got 0`},
		{`{"<": [1]}`, `targeting.<: takes 2 to 3 arguments, got 1`},
		{`{"*": [1]}`, `targeting.*: takes at least 2 arguments, got 1`},
		{`{"map": [[1]]}`, `targeting.map: takes 2 arguments`},
		{`{"reduce": [[1], {"var": ""}]}`, `targeting.reduce: takes 3 arguments`},
		{`{"sem_ver": "1.0.0"}`, `targeting.sem_ver: takes an array of arguments, not a string`},
		{`{"missing": 5}`, `targeting.missing: takes an array of paths, not a number`},
		{`{"fractional": []}`, `targeting.fractional: takes an optional bucketing key and at least one bucket [variant, weight]`},
		{`{"fractional": ["key"]}`, `targeting.fractional: needs at least one bucket [variant, weight]`},
		{`{"fractional": [5, ["a"]]}`, `targeting.fractional[0]: the bucketing key must be a string or an expression, not a number`},
		{`{"fractional": ["key", "a"]}`, `targeting.fractional[1]: a bucket is [variant] or [variant, weight]`},
		{`{"fractional": [["a", 1, 2]]}`, `targeting.fractional[0]: a bucket is [variant] or [variant, weight]`},
		{`{"fractional": [["a", 1.5]]}`, `targeting.fractional[0][1]: a weight is a whole number, not 1.5`},
		{`{"fractional": [["a", "1"]]}`, `targeting.fractional[0][1]: a weight is a number or an expression, not a string`},
		{`{"fractional": [["a", 3000000000]]}`, `targeting.fractional[0][1]: a weight is at most 2147483647`},
		{`{"fractional": [["a", 2147483647], ["b", 1]]}`, `targeting.fractional: the weights add up to more than 2147483647`},
		{`{"fractional": [{"var": "k"}, [["x"], 1]]}`, `targeting.fractional[1][0]: a variant is a string, boolean, number or null, not array`},
		{`{"fractional": [{"cat": []}, ["a"]]}`, `targeting.fractional[0].cat: takes at least 1 argument, got 0`},
		{`{"ld_bucket": [{"var": "k"}, "f"]}`, `targeting.ld_bucket: takes [key, flagKey, salt, seed or null]`},
		{`{"ld_bucket": [{"var": "k"}, 1, "s", null]}`, `targeting.ld_bucket[1]: the flag key is a string, not a number`},
		{`{"ld_bucket": [{"var": "k"}, "f", null, null]}`, `targeting.ld_bucket[2]: the salt is a string, not null`},
		{`{"ld_bucket": [{"var": "k"}, "f", "s", 1.5]}`, `targeting.ld_bucket[3]: the seed is a whole number, not 1.5`},
		{`{"ld_bucket": [{"var": "k"}, "f", "s", "61"]}`, `targeting.ld_bucket[3]: the seed is a number or null, not a string`},
		{`{"unleash_hash": [{"var": "k"}, "g", 100]}`, `targeting.unleash_hash: takes [value, groupId, normalizer, seed]`},
		{`{"unleash_hash": [{"var": "k"}, 5, 100, 0]}`, `targeting.unleash_hash[1]: the group id is a string, not a number`},
		{`{"unleash_hash": [{"var": "k"}, "g", 0, 0]}`, `targeting.unleash_hash[2]: the normalizer is a whole number from 1 to 4294967295`},
		{`{"unleash_hash": [{"var": "k"}, "g", 100, -1]}`, `targeting.unleash_hash[3]: the seed is a whole number from 0 to 4294967295`},
		{deep, `: nested deeper than 64 levels`},
		{`{"in": [1, ` + strings.Repeat(`[`, 70) + strings.Repeat(`]`, 70) + `]}`, `: nested deeper than 64 levels`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := compileRule("new-checkout", json.RawMessage(tt.rule), nil)
			var ce *CompileError
			if !errors.As(err, &ce) || !strings.HasPrefix(ce.Path, "targeting") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want a *CompileError at targeting and %q", err, tt.want)
			}
		})
	}
}

// Constant sub-rules are evaluated once, at compile time.
func TestConstantFolding(t *testing.T) {
	r, err := compileRule("f", []byte(`{"if": [{"==": [{"+": [1, 2]}, 3]}, {"cat": ["a", "b"]}, "c"]}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &NewCompiler(nil).c
	folded, err := c.compile(decodeJSON(t, `{"if": [{"==": [{"+": [1, 2]}, 3]}, {"cat": ["a", "b"]}, "c"]}`), "t", 0)
	if err != nil || !folded.konst || folded.val.Text() != "ab" {
		t.Fatalf("folded to %+v, %v; want the constant \"ab\"", folded, err)
	}
	if v, err := r.evalAt(nil, 0); err != nil || v.Text() != "ab" {
		t.Fatalf("got %v, %v", v.toAny(), err)
	}
	kept, err := c.compile(decodeJSON(t, `{"/": [1, {"var": "x"}]}`), "t", 0)
	if err != nil || kept.konst {
		t.Fatalf("a rule reading the context was folded: %+v, %v", kept, err)
	}
}
