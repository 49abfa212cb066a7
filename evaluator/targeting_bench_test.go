package evaluator

import (
	"os"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
)

// benchContext is a typical evaluation context: a targeting key and a few
// attributes, one of them nested. evaluator/jsonlogic's BenchmarkTargeting
// gives the library flagd uses the same one.
var benchContext = map[string]any{
	"targetingKey": "user-7f3a9c",
	"email":        "alice@example.com",
	"plan":         "pro",
	"age":          42.0,
	"app":          map[string]any{"version": "2.5.1", "platform": "ios"},
}

// BenchmarkTargeting measures, rule by rule, Switchyard's compiled
// evaluation: Compile once, then FlagSet.Evaluate. Its results are named
// <rule>/switchyard; evaluator/jsonlogic's BenchmarkTargeting measures the
// library flagd uses on the same flags as <rule>/jsonlogic and
// <rule>/jsonlogic_preparsed, for the side-by-side comparison.
func BenchmarkTargeting(b *testing.B) {
	data, err := os.ReadFile("testdata/benchmark-flags.json")
	if err != nil {
		b.Fatal(err)
	}
	doc, err := ParseDocument(data)
	if err != nil {
		b.Fatal(err)
	}
	r := switchyard.InitialRevision(time.Unix(0, 0))
	r.Flags = doc.Flags
	fs, err := Compile(r, "")
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"static", "if_in_ends_with", "fractional", "sem_ver"} {
		want := fs.Evaluate(name, benchContext)
		if want.ErrorCode != "" || want.Variant == "" {
			b.Fatalf("%s: %+v", name, want)
		}
		b.Run(name+"/switchyard", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if res := fs.Evaluate(name, benchContext); res.Variant != want.Variant {
					b.Fatalf("variant %q", res.Variant)
				}
			}
		})
	}
}
