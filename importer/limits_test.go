package importer

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard"
)

// refChain is a flagd document of the shape that made a 190 KB dry-run
// import burn 180 s of CPU (issue #12): shared evaluators e0 to
// e<levels-1>, each referring twice to the one before, so e<i> expands to
// 2^i copies of e0, and n flags whose targeting is rule. Small as a file,
// huge once every $ref is expanded.
func refChain(levels, n int, rule string) []byte {
	var b strings.Builder
	b.WriteString(`{"$evaluators": {"e0": {"==": [{"var": "n"}, 1]}`)
	for i := 1; i < levels; i++ {
		fmt.Fprintf(&b, `, "e%d": {"or": [{"$ref": "e%d"}, {"$ref": "e%d"}]}`, i, i-1, i-1)
	}
	b.WriteString(`}, "flags": {`)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `"flag-%04d": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off", "targeting": %s}`, i, rule)
	}
	b.WriteString("}}")
	return []byte(b.String())
}

// TestImportRefusesRulesOverTheLimit imports documents whose rules are
// over the compile limit once $ref is expanded: each is refused with an
// invalid request naming the evaluator or the flag at fault and the limit,
// at the cost of compiling each shared evaluator once (the test takes
// milliseconds by design: nothing is expanded).
func TestImportRefusesRulesOverTheLimit(t *testing.T) {
	tests := []struct {
		name    string
		content []byte
		field   string
		value   string
	}{
		{name: "the 190 KB document of issue #12: evaluators over the limit",
			content: refChain(15, 1250, `{"if": [{"$ref": "e14"}, "on", "off"]}`),
			field:   "evaluator", value: "e11"},
		{name: "evaluators within the limit, flags over it",
			content: refChain(11, 1250, `{"and": [{"$ref": "e10"}, {"$ref": "e10"}]}`),
			field:   "flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Logf("document of %d bytes", len(tt.content))
			_, err := Import(FormatFlagd, tt.content, Options{})
			var e *switchyard.Error
			if !errors.As(err, &e) || e.Code != switchyard.CodeInvalidRequest {
				t.Fatalf("error %v, want INVALID_REQUEST", err)
			}
			if !strings.Contains(e.Message, "more than 10000 operations") {
				t.Errorf("message %q does not give the limit", e.Message)
			}
			named, _ := e.Fields[tt.field].(string)
			if named == "" || (tt.value != "" && named != tt.value) || !strings.Contains(e.Message, named) {
				t.Errorf("error %q (fields %v) does not name the %s at fault", e.Message, e.Fields, tt.field)
			}
			t.Log(e.Message)
		})
	}
}
