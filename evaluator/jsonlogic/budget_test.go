package jsonlogic

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// within is a budget of ops operations and bytes bytes.
func within(ops, bytes int) budget {
	return budget{ops: ops, bytes: bytes, maxOps: ops, maxBytes: bytes}
}

// budgetContext is the context of the budget tests: a few hundred
// elements and strings of 2,000 bytes, small for a real evaluation and
// too much for a budget of 100 operations and 1,024 bytes.
func budgetContext() map[string]any {
	long := strings.Repeat("a", 2000)
	ctx := map[string]any{"long": long, "longs": []any{long, long, long, long}}
	var xs, words, paths []any
	for i := range 200 {
		xs = append(xs, float64(i))
		words = append(words, "w")
		paths = append(paths, fmt.Sprintf("p%d", i))
	}
	ctx["xs"], ctx["paths"], ctx["nested"] = xs, paths, []any{words}
	ctx["users"] = []any{map[string]any{"targetingKey": long}}
	return ctx
}

// TestBudgetCharges evaluates, within a budget of 100 operations and
// 1,024 bytes, rules that each exceed it in one way: every operation whose
// cost grows with the data is charged, and the error says which limit was
// exceeded. With the full budget, the same rules evaluate.
func TestBudgetCharges(t *testing.T) {
	vars := strings.TrimSuffix(strings.Repeat(`{"var": "long"}, `, 70), ", ")
	tests := []struct{ name, rule, want string }{
		{"map builds an array", `{"map": [{"var": "xs"}, {"var": ""}]}`, "bytes"},
		{"filter builds an array", `{"filter": [{"var": "xs"}, true]}`, "bytes"},
		{"merge builds an array", `{"merge": [{"var": "xs"}, {"var": "xs"}]}`, "bytes"},
		{"an array of computed elements", `{"map": [[1], [` + vars + `]]}`, "bytes"},
		{"cat builds a string", `{"cat": [{"var": "long"}, "x"]}`, "bytes"},
		{"substr decodes characters", `{"substr": [{"var": "long"}, 0, 1]}`, "bytes"},
		{"reduce passes", `{"reduce": [{"var": "xs"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]}`, "operations"},
		{"all passes", `{"all": [{"var": "xs"}, true]}`, "operations"},
		{"some passes", `{"some": [{"var": "xs"}, false]}`, "operations"},
		{"none passes", `{"none": [{"var": "xs"}, false]}`, "operations"},
		{"nested passes", `{"some": [{"var": "xs"}, {"some": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], false]}]}`, "operations"},
		{"in reads an array", `{"some": [{"var": "nested"}, {"in": ["x", {"var": ""}]}]}`, "operations"},
		{"in reads a string", `{"some": [{"var": "longs"}, {"in": ["b", {"var": ""}]}]}`, "operations"},
		{"== reads strings", `{"some": [{"var": "longs"}, {"==": [{"var": ""}, "b"]}]}`, "operations"},
		{"< reads strings", `{"all": [{"var": "longs"}, {"<": [{"var": ""}, "b"]}]}`, "operations"},
		{"arithmetic parses strings", `{"all": [{"var": "longs"}, {"+": [{"var": ""}, 1]}]}`, "operations"},
		{"sem_ver parses strings", `{"some": [{"var": "longs"}, {"sem_ver": [{"var": ""}, ">=", "1.0.0"]}]}`, "operations"},
		{"var reads a computed path", `{"some": [{"var": "longs"}, {"var": {"var": ""}}]}`, "operations"},
		{"missing reads paths", `{"missing": {"var": "paths"}}`, "operations"},
		{"fractional hashes its key", `{"some": [{"var": "users"}, {"fractional": [["a", 1]]}]}`, "bytes"},
		{"ld_bucket hashes its key", `{"some": [{"var": "longs"}, {"ld_bucket": [{"var": ""}, "f", "s", null]}]}`, "bytes"},
		{"unleash_hash hashes its value", `{"some": [{"var": "longs"}, {"unleash_hash": [{"var": ""}, "g", 100, 0]}]}`, "bytes"},
		{"the whole data is copied", `{"merge": [{"var": ""}, {"var": ""}, {"var": ""}, {"var": ""}, {"var": ""}]}`, "bytes"},
	}
	ctx := budgetContext()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := compileRule("f", []byte(tt.rule), nil)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"bytes": "more than 1024 bytes of strings and arrays built",
				"operations": "more than 100 operations"}[tt.want]
			if _, err := r.evalWithin(ctx, 0, within(100, 1024)); !errors.Is(err, ErrBudget) || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v, want ErrBudget with %q", err, want)
			}
			if _, err := r.evalAt(ctx, 0); err != nil {
				t.Errorf("with the full budget: %v", err)
			}
		})
	}
}

// A rule that neither iterates nor builds strings or arrays evaluates
// without a budget, its cost bounded by its size; one operation alone
// still may not build more than an evaluation could.
func TestRulesWithoutBudget(t *testing.T) {
	r, err := compileRule("f", []byte(`{"if": [{"in": ["b", {"var": "long"}]}, "yes", "no"]}`), nil)
	if err != nil || r.bounded {
		t.Fatalf("compiled %+v, %v; want a rule without budget", r, err)
	}
	if v, err := r.evalWithin(budgetContext(), 0, within(0, 0)); err != nil || v.Text() != "no" {
		t.Fatalf("got %v, %v; want no", v.toAny(), err)
	}
	r, err = compileRule("f", []byte(`{"fractional": [{"cat": [{"var": "big"}, {"var": "big"}]}, ["a", 1]]}`), nil)
	if err != nil || r.bounded {
		t.Fatalf("compiled %+v, %v; want a rule without budget", r, err)
	}
	big := strings.Repeat("k", 600<<10)
	if _, err := r.evalAt(map[string]any{"targetingKey": "u", "big": big}, 0); !errors.Is(err, ErrBudget) {
		t.Fatalf("a bucketing key of 1.2 MB: error %v, want ErrBudget", err)
	}
}

// A rule of many operations takes a budget even if it neither iterates nor
// builds: each operation may read a context value of a megabyte, and 5,000
// of them would read 5 GB.
func TestLargeRulesTakeABudget(t *testing.T) {
	in := `{"in": ["zzq", {"var": "s"}]}`
	small := `{"or": [` + strings.TrimSuffix(strings.Repeat(in+", ", 30), ", ") + `]}`
	large := `{"or": [` + strings.TrimSuffix(strings.Repeat(in+", ", 100), ", ") + `]}`
	ctx := map[string]any{"s": strings.Repeat("zzy", 350_000)}
	r, err := compileRule("f", []byte(small), nil)
	if err != nil || r.bounded {
		t.Fatalf("a rule of 61 operations: %+v, %v; want one without budget", r, err)
	}
	r, err = compileRule("f", []byte(large), nil)
	if err != nil || !r.bounded {
		t.Fatalf("a rule of 201 operations: %+v, %v; want one with a budget", r, err)
	}
	if _, err := r.evalAt(ctx, 0); !errors.Is(err, ErrBudget) {
		t.Fatalf("100 searches of 1 MB: error %v, want ErrBudget", err)
	}
}

// TestRuleOperationsLimit: a rule may have MaxRuleOperations operations
// with every $ref expanded, and no more; the error gives the path where
// the count went over and the limit. Nesting is counted through $ref too.
func TestRuleOperationsLimit(t *testing.T) {
	and := func(n int, arg string) string {
		return `{"and": [` + strings.TrimSuffix(strings.Repeat(arg+", ", n), ", ") + `]}`
	}
	evaluators := map[string]json.RawMessage{
		"many": json.RawMessage(and(148, `{"var": "a"}`)),
		"deep": json.RawMessage(strings.Repeat(`{"!": `, 40) + `true` + strings.Repeat(`}`, 40)),
	}
	if _, err := compileRule("f", []byte(and(MaxRuleOperations-1, `{"var": "a"}`)), nil); err != nil {
		t.Fatalf("a rule of %d operations: %v", MaxRuleOperations, err)
	}
	tests := []struct{ rule, path, msg string }{
		{and(MaxRuleOperations, `{"var": "a"}`), "targeting.and[9999]",
			"more than 10000 operations with every $ref expanded, the limit of one rule"},
		{and(100, `{"$ref": "many"}`), "targeting.and[66].$ref(many)",
			"more than 10000 operations with every $ref expanded, the limit of one rule"},
		{strings.Repeat(`{"!": `, 30) + `{"$ref": "deep"}` + strings.Repeat(`}`, 30), ".$ref(deep)",
			"nested deeper than 64 levels"},
	}
	for _, tt := range tests {
		_, err := compileRule("f", []byte(tt.rule), evaluators)
		var ce *CompileError
		if !errors.As(err, &ce) || !strings.Contains(ce.Path, tt.path) || ce.Msg != tt.msg {
			t.Errorf("error %v, want %q at %s", err, tt.msg, tt.path)
		}
	}
}

// Constant sub-rules are evaluated at compile time only within the
// document's budget: a chain of shared evaluators each doubling a 64 KiB
// string would otherwise build 128 MiB while compiling. Past the budget
// they are left to evaluation, whose budget refuses them.
func TestFoldingIsBounded(t *testing.T) {
	evaluators := map[string]json.RawMessage{"e0": json.RawMessage(`"` + strings.Repeat("x", 64<<10) + `"`)}
	for i := 1; i <= 11; i++ {
		evaluators[fmt.Sprintf("e%d", i)] = json.RawMessage(fmt.Sprintf(`{"cat": [{"$ref": "e%d"}, {"$ref": "e%d"}]}`, i-1, i-1))
	}
	c := NewCompiler(evaluators)
	r, err := c.Compile("f", []byte(`{"$ref": "e11"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !c.c.refs["e3"].x.konst || c.c.refs["e4"].x.konst {
		t.Errorf("e3 (512 KiB) folded %v, e4 (1 MiB) folded %v; want e3 folded and no more",
			c.c.refs["e3"].x.konst, c.c.refs["e4"].x.konst)
	}
	if _, err := r.evalAt(nil, 0); !errors.Is(err, ErrBudget) {
		t.Fatalf("error %v, want ErrBudget", err)
	}
}
