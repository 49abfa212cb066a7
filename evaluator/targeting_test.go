package evaluator

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator/jsonlogic"
)

// compileDocument parses a document from testdata into a revision (bypassing
// validation, as a revision stored by an older release might) and
// compiles it.
func compileDocument(t *testing.T, name string) *FlagSet {
	t.Helper()
	data, err := os.ReadFile("testdata/documents/" + name)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := ParseDocument(data)
	if err != nil {
		t.Fatal(err)
	}
	r := switchyard.InitialRevision(time.Unix(0, 0))
	r.Flags, r.Evaluators, r.Metadata = doc.Flags, doc.Evaluators, doc.Metadata
	fs, err := Compile(r, "")
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestEvaluateTargeting(t *testing.T) {
	fs := compileDocument(t, "evaluate.json")
	ctx := map[string]any{"targetingKey": "user-1", "plan": "pro", "seats": 1.0, "handle": make(chan int)}
	tests := []struct {
		key     string
		value   any
		variant string
		reason  Reason
		code    ResolutionError
		message string
	}{
		{key: "static", value: true, variant: "on", reason: ReasonStatic},
		{key: "no-default", reason: ReasonDefault},
		{key: "disabled", reason: ReasonDisabled},
		{key: "bool-result", value: "yes", variant: "true", reason: ReasonTargetingMatch},
		{key: "number-result", value: "two", variant: "2", reason: ReasonTargetingMatch},
		{key: "null-result", value: 1.0, variant: "hit", reason: ReasonTargetingMatch},
		{key: "null-result-no-default", reason: ReasonDefault},
		{key: "unknown-variant", reason: ReasonError, code: General,
			message: `targeting chose variant "b", which flag "unknown-variant" does not define`},
		{key: "array-result", reason: ReasonError, code: General,
			message: `flag "array-result": targeting: the rule returned array, not a variant name`},
		{key: "runtime-error", reason: ReasonError, code: ParseError,
			message: `flag "runtime-error": targeting: in: looking for number in a string`},
		{key: "infinite-result", reason: ReasonError, code: ParseError,
			message: `flag "infinite-result": targeting: the rule returned +Inf, which has no JSON form`},
		{key: "broken-ref", reason: ReasonError, code: ParseError,
			message: `flag "broken-ref": targeting.if[0].$ref: no evaluator named "missing" in $evaluators`},
		{key: "flag-key", value: "mine", variant: "flag-key", reason: ReasonTargetingMatch},
		{key: "timestamp", value: "after", variant: "after", reason: ReasonTargetingMatch},
		{key: "context-error", reason: ReasonError, code: General,
			message: `flag "context-error": targeting: evaluation context attribute cannot be encoded as JSON`},
		{key: "no-such-flag", reason: ReasonError, code: FlagNotFound, message: `flag "no-such-flag" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			got := fs.Evaluate(tt.key, ctx)
			if got.Value != tt.value || got.Variant != tt.variant || got.Reason != tt.reason ||
				got.ErrorCode != tt.code || !strings.HasPrefix(got.ErrorMessage, tt.message) {
				t.Fatalf("got %+v\nwant value %v, variant %q, reason %s, code %q, message %q",
					got, tt.value, tt.variant, tt.reason, tt.code, tt.message)
			}
		})
	}
	// Without a matching targeting key the rule gives null: the default.
	if got := fs.Evaluate("null-result", map[string]any{"targetingKey": "user-2"}); got.Value != 0.0 ||
		got.Variant != "miss" || got.Reason != ReasonDefault {
		t.Fatalf("got %+v, want the default variant miss", got)
	}
}

// Flag metadata is merged over the flag set's, and Switchyard adds the
// revision and whether the evaluation is pinned.
func TestEvaluateMetadata(t *testing.T) {
	fs := compileDocument(t, "evaluate.json")
	for _, pinned := range []bool{false, true} {
		set := fs
		if pinned {
			set = fs.Pinned()
		}
		md := set.Evaluate("with-metadata", nil).Metadata
		want := map[string]any{"flagSetId": "evaluate", "owner": "payments", "version": 3.0,
			MetadataRevision: int64(1), metadataPinned: pinned}
		if len(md) != len(want) {
			t.Fatalf("metadata %v, want %v", md, want)
		}
		for k, v := range want {
			if md[k] != v {
				t.Fatalf("metadata %v, want %v", md, want)
			}
		}
	}
}

// Evaluating a compiled rule allocates nothing: no maps, no JSON, no boxing.
func TestEvaluateDoesNotAllocate(t *testing.T) {
	data, err := os.ReadFile("testdata/benchmark-flags.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := ParseDocument(data)
	if err != nil {
		t.Fatal(err)
	}
	r := switchyard.InitialRevision(time.Unix(0, 0))
	r.Flags = doc.Flags
	fs, err := Compile(r, "")
	if err != nil {
		t.Fatal(err)
	}
	for key := range doc.Flags {
		res := fs.Evaluate(key, benchContext)
		if res.ErrorCode != "" || res.Variant == "" {
			t.Fatalf("%s: %+v", key, res)
		}
		if n := testing.AllocsPerRun(100, func() { fs.Evaluate(key, benchContext) }); n != 0 {
			t.Errorf("%s: %v allocations per evaluation, want 0", key, n)
		}
	}
}

// A revision whose targeting does not compile is refused by Validate,
// while Compile keeps serving its other flags.
func TestBrokenTargetingIsIsolated(t *testing.T) {
	r := switchyard.InitialRevision(time.Unix(0, 0))
	on := "on"
	r.Flags = map[string]switchyard.Flag{
		"good": {State: switchyard.StateEnabled, Variants: map[string]any{"on": true}, DefaultVariant: &on},
		"bad": {State: switchyard.StateEnabled, Variants: map[string]any{"on": true}, DefaultVariant: &on,
			Targeting: []byte(`{"if": [{"bogus": []}, "on"]}`)},
	}
	if err := Validate(r); err == nil || !strings.Contains(err.Error(), `flag "bad": targeting.if[0].bogus: unknown operator "bogus"`) {
		t.Fatalf("Validate: %v", err)
	}
	fs, err := Compile(r, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := fs.Evaluate("good", nil); got.Value != true {
		t.Fatalf("good: %+v", got)
	}
	if got := fs.Evaluate("bad", nil); got.ErrorCode != ParseError {
		t.Fatalf("bad: %+v", got)
	}
}

// A targeting rule or a shared evaluator that does not compile is an
// INVALID_REQUEST naming the flag or the evaluator, and the JSON path of
// the part at fault.
func TestTargetingCompileErrors(t *testing.T) {
	_, err := compileTargeting("new-checkout", json.RawMessage(`{"if": [{"in": [1]}, "a"]}`), jsonlogic.NewCompiler(nil))
	var e *switchyard.Error
	if !errors.As(err, &e) || e.Code != switchyard.CodeInvalidRequest || e.Fields["flag"] != "new-checkout" ||
		e.Fields["path"] != "targeting.if[0].in" ||
		e.Message != `flag "new-checkout": targeting.if[0].in: takes 2 arguments, got 1` {
		t.Fatalf("compileTargeting: %v, want the flag and the path", err)
	}
	err = validateEvaluators(jsonlogic.NewCompiler(map[string]json.RawMessage{"fine": json.RawMessage(`{"var": "a"}`),
		"staff": json.RawMessage(`{"==": [1]}`)}))
	if !errors.As(err, &e) || e.Code != switchyard.CodeInvalidRequest || e.Fields["evaluator"] != "staff" ||
		e.Fields["path"] != "$evaluators.staff.==" || e.Message != `$evaluators.staff.==: takes 2 arguments, got 1` {
		t.Fatalf("validateEvaluators: %v, want the evaluator and the path", err)
	}
}

func TestVariantTypesMustAgree(t *testing.T) {
	r := switchyard.InitialRevision(time.Unix(0, 0))
	r.Flags = map[string]switchyard.Flag{"mixed": {State: switchyard.StateEnabled, Variants: map[string]any{"a": true, "b": 1.0}}}
	if err := Validate(r); err == nil || !strings.Contains(err.Error(), `flag "mixed": variants.b: is number, but variant "a" is boolean`) {
		t.Fatalf("Validate: %v", err)
	}
}

func TestJSONNumber(t *testing.T) {
	for f, want := range map[float64]string{2: "2", -1.5: "-1.5", 1e21: "1e+21", 1e-7: "1e-7", 123456789: "123456789", 0.000001: "0.000001"} {
		if got := jsonNumber(f); got != want {
			t.Errorf("jsonNumber(%v) = %q, want %q", f, got, want)
		}
	}
}
