package jsonlogic

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	library "github.com/diegoholiveira/jsonlogic/v3"
)

// benchContext is the context evaluator's BenchmarkTargeting evaluates its
// flags with, so that the two benchmarks measure the same work.
var benchContext = map[string]any{
	"targetingKey": "user-7f3a9c",
	"email":        "alice@example.com",
	"plan":         "pro",
	"age":          42.0,
	"app":          map[string]any{"version": "2.5.1", "platform": "ios"},
}

// BenchmarkTargeting measures, rule by rule, the library flagd uses on the
// flags whose compiled evaluation evaluator's BenchmarkTargeting measures
// (as <rule>/switchyard): driven as flagd drives it per call (the context
// encoded with $flagd as JSON, the rule's JSON applied, the variant read
// back), and, for the targeted rules, given the rule and data already
// decoded (jsonlogic_preparsed), its best case. A static flag has no rule;
// flagd's equivalent applies the default variant's name. Each must choose
// the variant the compiled rule chooses.
func BenchmarkTargeting(b *testing.B) {
	data, err := os.ReadFile("../testdata/benchmark-flags.json")
	if err != nil {
		b.Fatal(err)
	}
	var doc struct {
		Flags map[string]struct {
			DefaultVariant string          `json:"defaultVariant"`
			Targeting      json.RawMessage `json:"targeting"`
		} `json:"flags"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		b.Fatal(err)
	}
	registerFlagdOperators()
	for _, name := range []string{"static", "if_in_ends_with", "fractional", "sem_ver"} {
		f := doc.Flags[name]
		var rule []byte
		want := f.DefaultVariant
		if len(f.Targeting) == 0 {
			rule, _ = json.Marshal(f.DefaultVariant)
		} else {
			// Compacted, as ParseDocument stores a flag's targeting.
			var compact bytes.Buffer
			if err := json.Compact(&compact, f.Targeting); err != nil {
				b.Fatal(err)
			}
			rule = compact.Bytes()
			r, err := compileRule(name, rule, nil)
			if err != nil {
				b.Fatal(err)
			}
			v, err := r.Eval(benchContext)
			if err != nil || v.Kind() != KindString {
				b.Fatalf("%s: the compiled rule gave %v, %v", name, v.toAny(), err)
			}
			want = v.Text()
		}
		got, _, err := flagdEvaluate(rule, name, benchContext)
		if err != nil || got != want {
			b.Fatalf("%s: jsonlogic chose %q (%v), Switchyard %q", name, got, err, want)
		}
		b.Run(name+"/jsonlogic", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if v, _, err := flagdEvaluate(rule, name, benchContext); err != nil || v != want {
					b.Fatalf("variant %q: %v", v, err)
				}
			}
		})
		if len(f.Targeting) == 0 {
			continue
		}
		var decoded any
		if err := json.Unmarshal(rule, &decoded); err != nil {
			b.Fatal(err)
		}
		var input any
		raw, _ := json.Marshal(flagdData(name, benchContext))
		if err := json.Unmarshal(raw, &input); err != nil {
			b.Fatal(err)
		}
		b.Run(name+"/jsonlogic_preparsed", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if v, err := library.ApplyInterface(decoded, input); err != nil || v != want {
					b.Fatalf("variant %v: %v", v, err)
				}
			}
		})
	}
}
