package jsonlogic

import (
	"fmt"
	"math"
	"testing"

	"github.com/twmb/murmur3"
)

// The expected buckets are LaunchDarkly's own SDK test vectors (flag
// "hashKey", salt "saltyA"), as fractions of 1.
func TestLDBucket(t *testing.T) {
	tests := []struct {
		key  any
		seed string
		want float64
	}{
		{"userKeyA", "null", 0.42157587},
		{"userKeyB", "null", 0.6708485},
		{"userKeyC", "null", 0.10343106},
		{"userKeyA", "61", 0.09801207},
		{"userKeyB", "61", 0.14483777},
		{"userKeyC", "61", 0.9242641},
		{"33333", "null", 0.54771423},
		{33333.0, "null", 0.54771423},
		{int64(33333), "null", 0.54771423},
		{33.5, "null", 0},
		{true, "null", 0},
		{nil, "null", 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/%s", tt.key, tt.seed), func(t *testing.T) {
			r, err := compileRule("f", []byte(`{"ld_bucket": [{"var": "key"}, "hashKey", "saltyA", `+tt.seed+`]}`), nil)
			if err != nil {
				t.Fatal(err)
			}
			v, err := r.evalAt(map[string]any{"key": tt.key}, 0)
			if err != nil || v.k != KindNumber || math.Abs(v.n-tt.want*100000) > 1e-7*100000 {
				t.Fatalf("got %v, %v; want %v", v.toAny(), err, tt.want*100000)
			}
		})
	}
}

// The expected values are Unleash's cross-SDK vectors for seed 0; other
// seeds are checked against murmur3 directly.
func TestUnleashHash(t *testing.T) {
	tests := []struct {
		value      any
		group      string
		normalizer int
		seed       uint32
		want       any
	}{
		{"123", "gr1", 100, 0, 73.0},
		{"999", "groupX", 100, 0, 25.0},
		{123.0, "gr1", 100, 0, 73.0},
		{"user-42", "new-checkout", 1000, 86028157, float64(murmur3.SeedStringSum32(86028157, "new-checkout:user-42")%1000 + 1)},
		{"", "gr1", 100, 0, nil},
		{nil, "gr1", 100, 0, nil},
		{1.5, "gr1", 100, 0, nil},
		{false, "gr1", 100, 0, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/%s/%d", tt.value, tt.group, tt.seed), func(t *testing.T) {
			rule := fmt.Sprintf(`{"unleash_hash": [{"var": "v"}, %q, %d, %d]}`, tt.group, tt.normalizer, tt.seed)
			r, err := compileRule("f", []byte(rule), nil)
			if err != nil {
				t.Fatal(err)
			}
			v, err := r.evalAt(map[string]any{"v": tt.value}, 0)
			if err != nil || v.toAny() != tt.want {
				t.Fatalf("got %v, %v; want %v", v.toAny(), err, tt.want)
			}
		})
	}
}

// Every user lands in [1, normalizer], and a 25% rollout takes about a
// quarter of them.
func TestUnleashHashRange(t *testing.T) {
	r, err := compileRule("f", []byte(`{"unleash_hash": [{"var": "targetingKey"}, "rollout", 100, 0]}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	in := 0
	const users = 20000
	for i := range users {
		v, err := r.evalAt(map[string]any{"targetingKey": fmt.Sprintf("user-%d", i)}, 0)
		if err != nil || v.n < 1 || v.n > 100 || v.n != math.Trunc(v.n) {
			t.Fatalf("user-%d: %v, %v", i, v.toAny(), err)
		}
		if v.n <= 25 {
			in++
		}
	}
	if share := float64(in) / users; share < 0.23 || share > 0.27 {
		t.Fatalf("a 25%% rollout took %.3f of users", share)
	}
}
