package jsonlogic

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// FuzzCompileRule compiles arbitrary rules and evaluates them over
// arbitrary contexts: neither may panic, compile errors carry a path, and
// evaluation is deterministic.
func FuzzCompileRule(f *testing.F) {
	files, _ := filepath.Glob("testdata/rules/*.json")
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data, []byte(`{"targetingKey":"user-1","email":"alice@example.com","version":"1.2.3","tags":["a","b"]}`))
		}
	}
	evaluators := map[string]json.RawMessage{
		"is_admin": json.RawMessage(`{"==": [{"var": "role"}, "admin"]}`),
		"loop":     json.RawMessage(`{"$ref": "loop"}`),
	}
	f.Fuzz(func(t *testing.T, rule, ctxJSON []byte) {
		r, err := compileRule("fuzz-flag", rule, evaluators)
		if err != nil {
			var ce *CompileError
			if !errors.As(err, &ce) || ce.Path == "" {
				t.Fatalf("compile error %v carries no path", err)
			}
			return
		}
		var ctx map[string]any
		if json.Unmarshal(ctxJSON, &ctx) != nil {
			ctx = nil
		}
		v1, err1 := r.evalAt(ctx, diffTimestamp)
		v2, err2 := r.evalAt(ctx, diffTimestamp)
		if (err1 == nil) != (err2 == nil) || (err1 == nil && !sameJSONValue(v1.toAny(), v2.toAny())) {
			t.Fatalf("evaluation is not deterministic: %v/%v, %v/%v", v1.toAny(), err1, v2.toAny(), err2)
		}
	})
}

// FuzzEvalBudget evaluates arbitrary rules over arbitrary contexts within
// a small budget (10,000 operations, 64 KiB): no evaluation may panic,
// fail other than with ErrBudget where the full budget succeeds, or give
// another result than the full budget gives; and none may allocate more
// than a few times what its budget lets it build, beyond what reading
// the context costs once per operation.
func FuzzEvalBudget(f *testing.F) {
	files, _ := filepath.Glob("testdata/rules/*.json")
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data, []byte(`{"targetingKey":"user-1","email":"alice@example.com","tags":["a","b"]}`))
		}
	}
	tags := `{"tags": [` + strings.TrimSuffix(strings.Repeat(`"tag", `, 40), ", ") + `]}`
	f.Add([]byte(`{"reduce": [{"var": "tags"}, {"cat": [{"var": "accumulator"}, {"var": "accumulator"}]}, "ab"]}`), []byte(tags))
	f.Add([]byte(`{"reduce": [{"var": "tags"}, {"cat": [{"var": "accumulator"}, {"var": "current"}]}, ""]}`), []byte(tags))
	f.Add([]byte(`{"map": [{"var": "tags"}, {"merge": [{"var": ""}, {"var": ""}, {"var": ""}]}]}`), []byte(tags))
	f.Add([]byte(`{"some": [{"var": "tags"}, {"some": [{"var": "tags"}, false]}]}`), []byte(tags))
	evaluators := map[string]json.RawMessage{
		"is_admin": json.RawMessage(`{"==": [{"var": "role"}, "admin"]}`),
		"double":   json.RawMessage(`{"merge": [{"var": ""}, {"var": ""}]}`),
	}
	small := within(10_000, 64<<10)
	f.Fuzz(func(t *testing.T, rule, ctxJSON []byte) {
		r, err := compileRule("fuzz-flag", rule, evaluators)
		if err != nil {
			return
		}
		var ctx map[string]any
		if json.Unmarshal(ctxJSON, &ctx) != nil {
			ctx = nil
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		v, err := r.evalWithin(ctx, diffTimestamp, small)
		runtime.ReadMemStats(&after)
		allowed := 4*uint64(small.bytes) + 256<<10 + 64*uint64(len(rule))*uint64(len(ctxJSON)+64)
		if got := after.TotalAlloc - before.TotalAlloc; got > allowed {
			t.Fatalf("the evaluation allocated %d bytes, more than %d", got, allowed)
		}
		full, fullErr := r.evalAt(ctx, diffTimestamp)
		switch {
		case errors.Is(err, ErrBudget):
		case (err == nil) != (fullErr == nil):
			t.Fatalf("within the small budget: %v, %v; within the full one: %v, %v", v.toAny(), err, full.toAny(), fullErr)
		case err == nil && !sameJSONValue(v.toAny(), full.toAny()):
			t.Fatalf("within the small budget: %v; within the full one: %v", v.toAny(), full.toAny())
		}
	})
}
