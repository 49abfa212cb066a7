package evaluator

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
)

// tagsContext is an evaluation context whose attribute tags holds n tags
// of seven characters: 100,000 of them make a context of 1 MB as JSON.
func tagsContext(n int) map[string]any {
	tags := make([]any, n)
	for i := range tags {
		tags[i] = fmt.Sprintf("t%06d", i)
	}
	return map[string]any{"targetingKey": "user-1", "tags": tags}
}

// compileRules compiles a flag set whose flags, named as in rules, have
// those targeting rules, and variants yes and no.
func compileRules(tb testing.TB, rules map[string]string) *FlagSet {
	tb.Helper()
	r := switchyard.InitialRevision(time.Unix(0, 0))
	r.Flags = map[string]switchyard.Flag{}
	def := "no"
	for key, rule := range rules {
		r.Flags[key] = switchyard.Flag{State: switchyard.StateEnabled, DefaultVariant: &def,
			Variants: map[string]any{"yes": "yes", "no": "no"}, Targeting: json.RawMessage(rule)}
	}
	if err := Validate(r); err != nil {
		tb.Fatal(err)
	}
	fs, err := Compile(r, "")
	if err != nil {
		tb.Fatal(err)
	}
	return fs
}

// issueRules are the two rules of issue #12: a doubling accumulator, and
// one that accumulates the whole context.
var issueRules = map[string]string{
	"doubling":   `{"reduce": [{"var": "tags"}, {"cat": [{"var": "accumulator"}, {"var": "accumulator"}]}, "ab"]}`,
	"accumulate": `{"reduce": [{"var": "tags"}, {"cat": [{"var": "accumulator"}, {"var": "current"}]}, ""]}`,
}

// TestEvaluationBudget evaluates rules that, unbounded, take seconds or
// gigabytes (issue #12: 3 GB in 4 s from 40 tags; 15 s of CPU from a 1 MB
// context): each is that flag's ERROR with GENERAL and a message giving
// the limit it exceeded, and comes back at once, by design.
func TestEvaluationBudget(t *testing.T) {
	zeros := "[" + strings.TrimSuffix(strings.Repeat("0,", 1000), ",") + "]"
	rules := map[string]string{
		"doubling":   issueRules["doubling"],
		"accumulate": issueRules["accumulate"],
		"nested":     `{"if": [{"some": [{"var": "tags"}, {"some": [` + zeros + `, false]}]}, "yes", "no"]}`,
		"scan": `{"reduce": [{"var": "tags"}, {"if": [{"in": [{"var": "current"}, {"var": "accumulator"}]},
			{"var": "accumulator"}, {"var": "accumulator"}]}, {"var": "big"}]}`,
	}
	fs := compileRules(t, rules)
	megabyte := tagsContext(100_000)
	scan := tagsContext(50_000)
	scan["big"] = strings.Repeat("x", 512<<10)
	tests := []struct {
		key  string
		ctx  map[string]any
		want string
	}{
		{"doubling", tagsContext(40), "more than 1048576 bytes of strings and arrays"},
		{"accumulate", megabyte, "more than 1048576 bytes of strings and arrays"},
		{"nested", megabyte, "more than 100000 operations"},
		{"scan", scan, "more than 100000 operations"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			got := fs.Evaluate(tt.key, tt.ctx)
			if got.Reason != ReasonError || got.ErrorCode != General || got.Value != nil ||
				!strings.Contains(got.ErrorMessage, tt.want) || len(got.ErrorMessage) > 300 {
				t.Fatalf("got %.300v\nwant ERROR, GENERAL and a message with %q", got, tt.want)
			}
			t.Log(got.ErrorMessage)
		})
	}
}

// BenchmarkIssueRules measures what the rules of issue #12 cost once
// bounded: the doubling accumulator over 40 tags, and the accumulator over
// a context of 1 MB.
func BenchmarkIssueRules(b *testing.B) {
	fs := compileRules(b, issueRules)
	for _, bc := range []struct {
		key string
		ctx map[string]any
	}{{"doubling", tagsContext(40)}, {"accumulate", tagsContext(100_000)}} {
		b.Run(bc.key, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if res := fs.Evaluate(bc.key, bc.ctx); res.ErrorCode != General {
					b.Fatalf("%+v", res)
				}
			}
		})
	}
}

// A rule may choose a variant named by the context, which the caller may
// make 1 MB long: the error naming a variant the flag does not define
// quotes only its beginning, so an answer is not a copy of the request per
// flag.
func TestUnknownVariantIsQuotedShort(t *testing.T) {
	fs := compileRules(t, map[string]string{"by-plan": `{"var": "plan"}`})
	got := fs.Evaluate("by-plan", map[string]any{"plan": strings.Repeat("p", 1<<20)})
	want := `targeting chose variant "` + strings.Repeat("p", 64) + `…" (1048576 bytes), which flag "by-plan" does not define`
	if got.Reason != ReasonError || got.ErrorCode != General || got.ErrorMessage != want {
		t.Fatalf("got %.300v\nwant ERROR, GENERAL and the message %q", got, want)
	}
}

// A rule that takes a budget still evaluates without allocating: the
// budget comes from a pool, and reading an array from the context does not
// box it again.
func TestBudgetedEvaluationDoesNotAllocate(t *testing.T) {
	fs := compileRules(t, map[string]string{"admin": `{"if": [{"some": [{"var": "groups"}, {"==": [{"var": ""}, "admin"]}]}, "yes", "no"]}`})
	ctx := map[string]any{"groups": []any{"dev", "ops", "admin"}}
	if got := fs.Evaluate("admin", ctx); got.Variant != "yes" {
		t.Fatalf("got %+v, want yes", got)
	}
	if n := testing.AllocsPerRun(100, func() { fs.Evaluate("admin", ctx) }); n != 0 {
		t.Errorf("%v allocations per evaluation, want 0", n)
	}
}
