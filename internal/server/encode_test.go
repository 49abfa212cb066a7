package server

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/switchyard-dev/switchyard/evaluator"
)

// TestEncoderMatchesEncodingJSON holds the hand-written encoder to the
// bytes encoding/json writes for the same values.
func TestEncoderMatchesEncodingJSON(t *testing.T) {
	values := []any{
		nil, true, false,
		"", "plain", `quote " and backslash \`, "<script>&</script>", "tab\tnew\nline\rcr\bback\fform",
		"\x00\x01\x1f\x7f", "héllo wörld ✓ 🚀", "bad \xff utf8", "line\u2028sep\u2029par",
		0.0, 1.0, -1.5, 250.5, 1e20, 1e21, 1.5e-7, 0.000001, 123456789.125, -1e-9, math.MaxFloat64,
		int64(0), int64(-42), int64(math.MaxInt64), 7,
		map[string]any{"b": 1.0, "a": []any{"x", true, nil}, "c": map[string]any{"z": "<"}},
		[]any{1.0, "two"},
	}
	for _, v := range values {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendValue(nil, v)
		if err != nil {
			t.Fatalf("appendValue(%#v): %v", v, err)
		}
		if string(got) != string(want) {
			t.Errorf("appendValue(%#v) = %s, encoding/json writes %s", v, got, want)
		}
	}
	if _, err := appendValue(nil, math.NaN()); err == nil {
		t.Error("NaN encoded without an error")
	}
}

func TestEncodeSuccess(t *testing.T) {
	tests := []struct {
		name string
		r    evaluator.Result
		want string
	}{
		{"value and metadata in key order",
			evaluator.Result{Key: "k", Value: "v1", Variant: "v1", Reason: evaluator.ReasonStatic,
				Metadata: map[string]any{"revision": int64(3), "pinned": true, "owner": "team", "b": 1.5, "a": false, "c": "x", "d": 1.0, "e": 2.0, "f": 3.0}},
			`{"key":"k","value":"v1","reason":"STATIC","variant":"v1","metadata":{"a":false,"b":1.5,"c":"x","d":1,"e":2,"f":3,"owner":"team","pinned":true,"revision":3}}`},
		{"no value: the code default", evaluator.Result{Key: "m", Reason: evaluator.ReasonDisabled},
			`{"key":"m","reason":"DISABLED"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := appendSuccess(nil, tt.r)
			if err != nil || string(got) != tt.want {
				t.Fatalf("appendSuccess = %s, %v\nwant %s", got, err, tt.want)
			}
		})
	}
}
