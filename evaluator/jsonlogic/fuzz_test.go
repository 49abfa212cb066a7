package jsonlogic

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
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
		r, err := Compile("fuzz-flag", rule, evaluators)
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
