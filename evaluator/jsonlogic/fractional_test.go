package jsonlogic

import (
	"fmt"
	"testing"

	"github.com/twmb/murmur3"
)

// flagdBucket is flagd's bucketing written out from its definition:
// murmur3 x86_32 (seed 0) of the key, scaled to the total weight.
func flagdBucket(key string, weights []int64) int {
	var total int64
	for _, w := range weights {
		total += w
	}
	point := int64((uint64(murmur3.StringSum32(key)) * uint64(total)) >> 32)
	for i, w := range weights {
		if point < w {
			return i
		}
		point -= w
	}
	return -1
}

// The ways of giving the bucketing key (implicit, a cat expression, a
// computed string, constant weights or computed ones) all bucket users
// exactly as flagd's definition says.
func TestFractionalBucketing(t *testing.T) {
	variants := []string{"a", "b", "c"}
	weights := []int64{20, 30, 50}
	rules := []string{
		`{"fractional": [["a", 20], ["b", 30], ["c", 50]]}`,
		`{"fractional": [null, ["a", 20], ["b", 30], ["c", 50]]}`,
		`{"fractional": [{"var": "missing"}, ["a", 20], ["b", 30], ["c", 50]]}`,
		`{"fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "targetingKey"}]}, ["a", 20], ["b", 30], ["c", 50]]}`,
		`{"fractional": [{"var": "key"}, ["a", 20], ["b", 30], ["c", 50]]}`,
		`{"fractional": [{"var": "key"}, ["a", {"var": "w20"}], [{"cat": ["b"]}, 30], ["c", 50]]}`,
	}
	for _, rule := range rules {
		r, err := compileRule("rollout", []byte(rule), nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 500 {
			tk := fmt.Sprintf("user-%d@example.com", i)
			ctx := map[string]any{"targetingKey": tk, "key": "rollout" + tk, "w20": 20.0}
			v, err := r.evalAt(ctx, 0)
			want := variants[flagdBucket("rollout"+tk, weights)]
			if err != nil || v.toAny() != want {
				t.Fatalf("%s, %s: got %v, %v; want %s", rule, tk, v.toAny(), err, want)
			}
		}
	}
}

func TestFractionalNull(t *testing.T) {
	tests := []struct {
		name, rule string
		ctx        map[string]any
	}{
		{"no targeting key", `{"fractional": [["a", 1], ["b", 1]]}`, map[string]any{}},
		{"empty targeting key", `{"fractional": [["a", 1], ["b", 1]]}`, map[string]any{"targetingKey": ""}},
		{"numeric targeting key", `{"fractional": [["a", 1], ["b", 1]]}`, map[string]any{"targetingKey": 5.0}},
		{"numeric bucketing key", `{"fractional": [{"var": "n"}, ["a", 1]]}`, map[string]any{"n": 5.0, "targetingKey": "u"}},
		{"zero weights", `{"fractional": [["a", 0], ["b", 0]]}`, map[string]any{"targetingKey": "u"}},
		{"computed decimal weight", `{"fractional": [["a", {"var": "w"}]]}`, map[string]any{"targetingKey": "u", "w": 1.5}},
		{"computed string weight", `{"fractional": [["a", {"var": "w"}]]}`, map[string]any{"targetingKey": "u", "w": "1"}},
		{"computed weight too large", `{"fractional": [["a", {"var": "w"}]]}`, map[string]any{"targetingKey": "u", "w": 3e9}},
		{"computed object variant", `{"fractional": [[{"var": "o"}, 1]]}`, map[string]any{"targetingKey": "u", "o": map[string]any{}}},
		{"inside an array operation", `{"map": [[1], {"fractional": [["a", 1]]}]}`, map[string]any{"targetingKey": "u"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := compileRule("f", []byte(tt.rule), nil)
			if err != nil {
				t.Fatal(err)
			}
			v, err := r.evalAt(tt.ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := v.toAny(); got != nil && !sameJSONValue(got, []any{nil}) {
				t.Fatalf("got %#v, want null", got)
			}
		})
	}
}

// Negative weights count as 0, a missing weight as 1, and variants may be
// booleans, numbers or computed.
func TestFractionalWeightsAndVariants(t *testing.T) {
	tests := []struct {
		rule string
		want any
	}{
		{`{"fractional": [["never", -50], ["always", 100]]}`, "always"},
		{`{"fractional": [["never", {"-": [0, 50]}], ["always", 100]]}`, "always"},
		{`{"fractional": [["only"]]}`, "only"},
		{`{"fractional": [[true, 100], [false, 0]]}`, true},
		{`{"fractional": [[2.5, 1]]}`, 2.5},
		{`{"fractional": [[{"var": "color"}, 1]]}`, "teal"},
		{`{"fractional": [["never", 0], ["always", null]]}`, "always"},
	}
	for _, tt := range tests {
		got, err := evalRule(t, tt.rule, `{"targetingKey": "u-1", "color": "teal"}`, nil)
		if err != nil || got != tt.want {
			t.Errorf("%s: got %v, %v; want %v", tt.rule, got, err, tt.want)
		}
	}
}

// A 10/90 split puts about a tenth of users in the first bucket.
func TestFractionalDistribution(t *testing.T) {
	r, err := compileRule("split", []byte(`{"fractional": [["on", 10], ["off", 90]]}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	on := 0
	const users = 20000
	for i := range users {
		v, err := r.evalAt(map[string]any{"targetingKey": fmt.Sprintf("%d", i)}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if v.Text() == "on" {
			on++
		}
	}
	if share := float64(on) / users; share < 0.09 || share > 0.11 {
		t.Fatalf("a 10%% bucket took %.3f of users", share)
	}
}
