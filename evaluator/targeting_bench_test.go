package evaluator

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/diegoholiveira/jsonlogic/v3"
)

// benchContext is a typical evaluation context: a targeting key and a few
// attributes, one of them nested.
var benchContext = map[string]any{
	"targetingKey": "user-7f3a9c",
	"email":        "alice@example.com",
	"plan":         "pro",
	"age":          42.0,
	"app":          map[string]any{"version": "2.5.1", "platform": "ios"},
}

// BenchmarkTargeting compares, rule by rule, Switchyard's compiled
// evaluation (Compile once, then FlagSet.Evaluate) with the library flagd
// uses, driven as flagd drives it per call (the context encoded with
// $flagd as JSON, the rule's JSON applied, the variant read back), and,
// for the targeted rules, with the library given the rule and data
// already decoded (jsonlogic_preparsed), its best case. A static flag has
// no rule; flagd's equivalent applies the default variant's name.
func BenchmarkTargeting(b *testing.B) {
	data, err := os.ReadFile("testdata/benchmark-flags.json")
	if err != nil {
		b.Fatal(err)
	}
	doc, err := ParseDocument(data)
	if err != nil {
		b.Fatal(err)
	}
	r := InitialRevision(time.Unix(0, 0))
	r.Flags = doc.Flags
	fs, err := Compile(r, "")
	if err != nil {
		b.Fatal(err)
	}
	registerFlagdOperators()
	for _, name := range []string{"static", "if_in_ends_with", "fractional", "sem_ver"} {
		f := doc.Flags[name]
		rule := []byte(f.Targeting)
		if len(rule) == 0 {
			rule, _ = json.Marshal(*f.DefaultVariant)
		}
		want := fs.Evaluate(name, benchContext)
		got, _, err := flagdEvaluate(rule, name, benchContext)
		if err != nil || got != want.Variant {
			b.Fatalf("%s: jsonlogic chose %q (%v), Switchyard %q", name, got, err, want.Variant)
		}
		b.Run(name+"/switchyard", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if res := fs.Evaluate(name, benchContext); res.Variant != want.Variant {
					b.Fatalf("variant %q", res.Variant)
				}
			}
		})
		b.Run(name+"/jsonlogic", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if v, _, err := flagdEvaluate(rule, name, benchContext); err != nil || v != want.Variant {
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
				if v, err := jsonlogic.ApplyInterface(decoded, input); err != nil || v != want.Variant {
					b.Fatalf("variant %v: %v", v, err)
				}
			}
		})
	}
}
