package evaluator

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
)

func TestParseDocument(t *testing.T) {
	data, err := os.ReadFile("testdata/documents/full.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := ParseDocument(data)
	if err != nil {
		t.Fatal(err)
	}
	if doc.Schema != switchyard.FlagdSchema || len(doc.Flags) != 4 || len(doc.Evaluators) != 1 {
		t.Fatalf("parsed %+v", doc)
	}
	if doc.Metadata["flagSetId"] != "checkout" || doc.Flags["new-checkout"].Metadata["ticket"] != 4242.0 {
		t.Fatalf("metadata %v, %v", doc.Metadata, doc.Flags["new-checkout"].Metadata)
	}
	if doc.Flags["banner-color"].DefaultVariant != nil || *doc.Flags["max-items"].DefaultVariant != "small" {
		t.Fatalf("default variants %v, %v", doc.Flags["banner-color"].DefaultVariant, doc.Flags["max-items"].DefaultVariant)
	}
	if got := string(doc.Evaluators["is_staff"]); got != `{"ends_with":[{"var":"email"},"@example.com"]}` {
		t.Fatalf("evaluator %s", got)
	}
	// The parsed document imports like any change: validated, then served.
	next, err := switchyard.ImportFlags(doc).Apply(switchyard.InitialRevision(time.Unix(0, 0)), time.Unix(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := Compile(next, "")
	if err != nil {
		t.Fatal(err)
	}
	res := fs.Evaluate("new-checkout", map[string]any{"targetingKey": "u-1", "email": "bob@example.com"})
	if res.Value != true || res.Reason != ReasonTargetingMatch || res.Metadata["flagSetId"] != "checkout" ||
		res.Metadata["owner"] != "payments" {
		t.Fatalf("evaluated %+v", res)
	}
}

func TestParseDocumentArrayForm(t *testing.T) {
	data, err := os.ReadFile("testdata/documents/array-flags.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := ParseDocument(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Flags) != 2 || doc.Flags["greeting"].Variants["hi"] != "hello" || len(doc.Flags["greeting"].Targeting) == 0 {
		t.Fatalf("parsed %+v", doc.Flags)
	}
}

func TestParseDocumentErrors(t *testing.T) {
	flag := func(fields string) string {
		return `{"flags": {"checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}` + fields + `}}}`
	}
	tests := []struct{ name, doc, want string }{
		{"not an object", `[]`, `the document must be a JSON object with "flags"`},
		{"no flags", `{}`, `flags: is required`},
		{"flags not an object", `{"flags": 1}`, `flags: must be an object of flags`},
		{"empty key", `{"flags": {"": {}}}`, `flags: a flag key must not be empty`},
		{"flag not an object", `{"flags": {"checkout": 1}}`, `flag "checkout": flag: must be an object`},
		{"syntax error in targeting", flag(`, "targeting": {"if": [1, }`), `flag "checkout": targeting.if[1]: invalid JSON at byte`},
		{"truncated", `{"flags": {"checkout": {"state": `, `flag "checkout": state: the document ends inside a value`},
		{"duplicate key", flag(`, "state": "DISABLED"`), `flag "checkout": state: duplicate key "state"`},
		{"nested too deep", flag(`, "targeting": {"if": [` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `]}`),
			`flag "checkout": targeting.if[0]` + strings.Repeat("[0]", 95) + `: nested deeper than 100 levels`},
		{"trailing data", `{"flags": {}} {}`, `unexpected data after the document`},
		{"unknown flag field", flag(`, "defaultVarient": "on"`), `flag "checkout": defaultVarient: unknown field`},
		{"key in a map flag", flag(`, "key": "checkout"`), `flag "checkout": key: unknown field`},
		{"missing state", `{"flags": {"checkout": {"variants": {"on": true}}}}`, `flag "checkout": state: is required`},
		{"bad state", `{"flags": {"checkout": {"state": "ON", "variants": {"on": true}}}}`, `flag "checkout": state: must be "ENABLED" or "DISABLED"`},
		{"missing variants", `{"flags": {"checkout": {"state": "ENABLED"}}}`, `flag "checkout": variants: is required`},
		{"empty variants", `{"flags": {"checkout": {"state": "ENABLED", "variants": {}}}}`, `flag "checkout": variants: must define at least one variant`},
		{"variants not an object", `{"flags": {"checkout": {"state": "ENABLED", "variants": [true]}}}`, `flag "checkout": variants: must be an object of variants`},
		{"mixed variants", `{"flags": {"checkout": {"state": "ENABLED", "variants": {"a": true, "b": "yes"}}}}`,
			`flag "checkout": variants.b: is string, but variant "a" is boolean: a flag's variants share one type`},
		{"null variant", `{"flags": {"checkout": {"state": "ENABLED", "variants": {"a": null}}}}`, `flag "checkout": variants.a: must be a boolean, string, number or object`},
		{"unknown default", flag(`, "defaultVariant": "maybe"`), `flag "checkout": defaultVariant: names no variant: "maybe"`},
		{"numeric default", flag(`, "defaultVariant": 1`), `flag "checkout": defaultVariant: must be a variant name or null`},
		{"targeting not an object", flag(`, "targeting": [1]`), `flag "checkout": targeting: must be a JsonLogic object`},
		{"bad flag metadata", flag(`, "metadata": {"owner": {"team": "x"}}`), `flag "checkout": metadata.owner: must be a string, number or boolean`},
		{"bad set metadata", `{"flags": {}, "metadata": {"tags": []}}`, `metadata.tags: must be a string, number or boolean`},
		{"evaluators not an object", `{"flags": {}, "$evaluators": []}`, `$evaluators: must be an object of named rules`},
		{"evaluator not an object", `{"flags": {}, "$evaluators": {"e": true}}`, `$evaluators.e: must be a JsonLogic object`},
		{"schema not a string", `{"flags": {}, "$schema": 1}`, `$schema: must be a string`},
		{"array flag without key", `{"flags": [{"state": "ENABLED", "variants": {"on": true}}]}`, `flags[0]: must be a flag object with a non-empty string "key"`},
		{"array flag twice", `{"flags": [{"key": "a", "state": "ENABLED", "variants": {"on": true}}, {"key": "a"}]}`, `flags[1].key: flag "a" is defined twice`},
		{"too large", `{"flags": {}, "pad": "` + strings.Repeat("x", MaxDocumentSize) + `"}`, `bytes; the limit is 10485760`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDocument([]byte(tt.doc))
			var e *switchyard.Error
			if !errors.As(err, &e) || e.Code != switchyard.CodeInvalidRequest {
				t.Fatalf("error %v, want an INVALID_REQUEST *switchyard.Error", err)
			}
			if !strings.Contains(e.Message, tt.want) {
				t.Fatalf("error %q, want %q", e.Message, tt.want)
			}
			if strings.HasPrefix(tt.want, `flag "checkout"`) && e.Fields["flag"] != "checkout" {
				t.Fatalf("fields %v do not name the flag", e.Fields)
			}
		})
	}
}

// A document flagd accepts but whose targeting does not compile parses,
// and is then refused by validation, naming the flag and the path: nothing
// is written.
func TestImportRefusesBadTargeting(t *testing.T) {
	tests := []struct{ doc, want string }{
		{`{"flags": {"checkout": {"state": "ENABLED", "variants": {"on": true, "off": false},
			"targeting": {"if": [{"in": [{"var": "email"}]}, "on", "off"]}}}}`,
			`flag "checkout": targeting.if[0].in: takes 2 arguments, got 1`},
		{`{"flags": {"checkout": {"state": "ENABLED", "variants": {"on": true, "off": false},
			"targeting": {"if": [{"regex": [{"var": "email"}, ".*"]}, "on", "off"]}}}}`,
			`flag "checkout": targeting.if[0].regex: unknown operator "regex"`},
		{`{"flags": {"checkout": {"state": "ENABLED", "variants": {"on": true, "off": false},
			"targeting": {"if": [{"$ref": "staff"}, "on", "off"]}}}}`,
			`flag "checkout": targeting.if[0].$ref: no evaluator named "staff" in $evaluators`},
		{`{"flags": {"checkout": {"state": "ENABLED", "variants": {"on": true}}},
			"$evaluators": {"unused": {"startswith": ["a", "b"]}}}`,
			`$evaluators.unused.startswith: unknown operator "startswith"`},
	}
	for _, tt := range tests {
		doc, err := ParseDocument([]byte(tt.doc))
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		cur := switchyard.InitialRevision(time.Unix(0, 0))
		// The domain applies the import; whether its flags compile is the
		// evaluator's to say, as stores ask it before storing anything.
		next, err := switchyard.ImportFlags(doc).Apply(cur, time.Unix(1, 0))
		if err == nil {
			err = Validate(next)
		}
		var e *switchyard.Error
		if !errors.As(err, &e) || e.Code != switchyard.CodeInvalidRequest || !strings.Contains(e.Message, tt.want) {
			t.Errorf("import gave %v, %v; want %q", next, err, tt.want)
		}
		if len(cur.Flags) != 0 {
			t.Errorf("the current revision was changed")
		}
	}
}

// TestParseFlagFile: a flag file parses as flagd serves it: a flag whose
// definition or rule is invalid is kept, evaluates to PARSE_ERROR with
// why, and is left out of an export, while the other flags are served; a
// file that is not flagd's format still fails whole.
func TestParseFlagFile(t *testing.T) {
	doc, err := ParseFlagFile([]byte(`{"flags": {
		"good": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
		"state": {"state": "MAYBE", "variants": {"on": true}},
		"rule": {"state": "ENABLED", "variants": {"a": "x"}, "defaultVariant": "a", "targeting": {"no_such_op": [1]}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	rev := switchyard.InitialRevision(time.Time{})
	rev.Flags = doc.Flags
	if err := Validate(rev); err != nil {
		t.Fatalf("a revision holding invalid flags: %v", err)
	}
	fs, err := Compile(rev, switchyard.ModeDemo)
	if err != nil {
		t.Fatal(err)
	}
	if r := fs.Evaluate("good", nil); r.Value != true || r.ErrorCode != "" {
		t.Fatalf("good = %+v", r)
	}
	for key, why := range map[string]string{"state": `flag "state": state: must be`, "rule": "no_such_op"} {
		if r := fs.Evaluate(key, nil); r.ErrorCode != ParseError || !strings.Contains(r.ErrorMessage, why) {
			t.Errorf("%s = %+v, want PARSE_ERROR saying %q", key, r, why)
		}
	}
	exported := Export(rev, switchyard.ModeDemo).Flags
	if _, ok := exported["state"]; ok || exported["good"].State != switchyard.StateEnabled {
		t.Fatalf("export holds %v", exported)
	}
	if _, err := ParseFlagFile([]byte(`{"flags": [`)); err == nil {
		t.Fatal("a malformed file parsed")
	}
}
