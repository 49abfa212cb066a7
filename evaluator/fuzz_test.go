package evaluator

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchyard-dev/switchyard"
)

// FuzzParseDocument feeds arbitrary bytes to ParseDocument: it must never
// panic, must fail only with an *Error, and what it accepts must survive
// a round trip through JSON unchanged.
func FuzzParseDocument(f *testing.F) {
	files, _ := filepath.Glob("testdata/documents/*.json")
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := ParseDocument(data)
		if err != nil {
			var e *switchyard.Error
			if !errors.As(err, &e) || e.Code != switchyard.CodeInvalidRequest {
				t.Fatalf("error %v (%T) is not an INVALID_REQUEST *switchyard.Error", err, err)
			}
			return
		}
		out, err := json.Marshal(doc)
		if err != nil {
			t.Fatalf("marshal accepted document: %v", err)
		}
		again, err := ParseDocument(out)
		if err != nil {
			t.Fatalf("accepted document %s does not parse again: %v", out, err)
		}
		if len(again.Flags) != len(doc.Flags) || len(again.Evaluators) != len(doc.Evaluators) {
			t.Fatalf("round trip changed the document: %s", out)
		}
	})
}
