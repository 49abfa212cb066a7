package importer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
)

func TestFlagdImportIsLossless(t *testing.T) {
	content := readTestdata(t, "flagd.json")
	res, err := Import(FormatFlagd, content, Options{})
	if err != nil {
		t.Fatal(err)
	}
	direct, err := evaluator.ParseDocument(content)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Document.Flags, direct.Flags) || !reflect.DeepEqual(res.Document.Evaluators, direct.Evaluators) ||
		!reflect.DeepEqual(res.Document.Metadata, direct.Metadata) {
		t.Fatalf("import changed the document:\n%+v\n%+v", res.Document, direct)
	}
	if len(res.Report) != 0 {
		t.Errorf("report %v, want none", res.Report)
	}
	users := []user{
		{name: "shared evaluator", flag: "new-checkout", ctx: map[string]any{"targetingKey": "u", "email": "a@example.com"}, variant: "on"},
		{name: "new app", flag: "color-scheme", ctx: map[string]any{"appVersion": "3.1.0"}, variant: "dark"},
		{name: "japanese locale", flag: "color-scheme", ctx: map[string]any{"locale": "ja-JP"}, variant: "contrast", value: "high-contrast"},
		{name: "default", flag: "color-scheme", ctx: map[string]any{}, variant: "light"},
		{name: "pro plan", flag: "rate-limit", ctx: map[string]any{"plan": "pro"}, variant: "high", value: float64(100)},
		{name: "disabled", flag: "retired-banner", ctx: map[string]any{}, reason: evaluator.ReasonDisabled},
		{name: "static", flag: "static-config", ctx: map[string]any{}, variant: "default"},
	}
	// The fractional split must agree with the document read directly.
	directSet := compile(t, direct)
	for i := range 20 {
		key := fmt.Sprintf("crowd-%d", i)
		users = append(users, user{name: key, flag: "new-checkout", ctx: map[string]any{"targetingKey": key},
			variant: directSet.Evaluate("new-checkout", map[string]any{"targetingKey": key}).Variant})
	}
	checkUsers(t, res.Document, users)
}

// TestBadInput: malformed files, unknown operators, wrong types, huge
// files and deep nesting fail with an invalid request naming the flag and
// the path inside it, and nothing is returned.
func TestBadInput(t *testing.T) {
	ldFlag := func(env string) string {
		return `{"key": "bad-flag", "variations": [{"value": true}, {"value": false}], "environments": {"production": ` + env + `}}`
	}
	deep := strings.Repeat(`{"and": [`, 80) + `true` + strings.Repeat(`]}`, 80)
	for _, tc := range []struct {
		name, format, content string
		flag, path            string // expected in the message
	}{
		{"LD malformed JSON", FormatLaunchDarkly, `{"items": [`, "", "byte"},
		{"LD unknown operator", FormatLaunchDarkly, ldFlag(`{"on": true, "fallthrough": {"variation": 0}, "rules": [{"variation": 0, "clauses": [{"attribute": "a", "op": "isOneOf", "values": ["x"]}]}]}`),
			"bad-flag", "environments.production.rules[0].clauses[0].op"},
		{"LD wrong type", FormatLaunchDarkly, ldFlag(`{"on": "yes"}`), "bad-flag", "environments.production.on"},
		{"LD variation out of range", FormatLaunchDarkly, ldFlag(`{"on": true, "fallthrough": {"variation": 5}}`), "bad-flag", "environments.production.fallthrough.variation"},
		{"LD rollout weight negative", FormatLaunchDarkly, ldFlag(`{"on": true, "fallthrough": {"rollout": {"variations": [{"variation": 0, "weight": -1}]}}}`),
			"bad-flag", "environments.production.fallthrough.rollout.variations[0].weight"},
		{"LD target variation out of range", FormatLaunchDarkly, ldFlag(`{"on": true, "fallthrough": {"variation": 0}, "targets": [{"values": ["u"], "variation": 2}]}`),
			"bad-flag", "environments.production.targets[0].variation"},
		{"LD no fallthrough", FormatLaunchDarkly, ldFlag(`{"on": true}`), "bad-flag", "environments.production.fallthrough"},
		{"LD deep nesting", FormatLaunchDarkly, `{"key": "bad-flag", "variations": [{"value": ` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}]}`,
			"bad-flag", "variations[0].value"},
		{"LD missing key", FormatLaunchDarkly, `{"items": [{"name": "x"}]}`, "", "items[0]"},
		{"Unleash unknown operator", FormatUnleash, `{"features": [{"name": "bad-flag", "enabled": true, "strategies": [{"name": "default", "constraints": [{"contextName": "a", "operator": "REGEX", "values": ["x"]}]}]}]}`,
			"bad-flag", "features[0].strategies[0].constraints[0].operator"},
		{"Unleash wrong type", FormatUnleash, `{"features": [{"name": "bad-flag", "enabled": "yes"}]}`, "bad-flag", "features[0].enabled"},
		{"Unleash bad rollout", FormatUnleash, `{"features": [{"name": "bad-flag", "enabled": true, "strategies": [{"name": "flexibleRollout", "parameters": {"rollout": "half"}}]}]}`,
			"bad-flag", "features[0].strategies[0].parameters.rollout"},
		{"Unleash deep nesting", FormatUnleash, `{"features": [{"name": "bad-flag", "tags": ` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}]}`,
			"bad-flag", "features[0].tags"},
		{"Unleash not an export", FormatUnleash, `{"flags": {}}`, "", "features"},
		{"GOFF malformed YAML", FormatGoFeatureFlag, "flag: [unclosed\n", "", "YAML"},
		{"GOFF unknown variation", FormatGoFeatureFlag, "bad-flag:\n  variations: {a: 1}\n  defaultRule: {variation: b}\n", "bad-flag", "defaultRule.variation"},
		{"GOFF wrong type", FormatGoFeatureFlag, "bad-flag:\n  variations: {a: 1}\n  targeting: yes\n  defaultRule: {variation: a}\n", "bad-flag", "targeting"},
		{"GOFF no default rule", FormatGoFeatureFlag, "bad-flag:\n  variations: {a: 1}\n", "bad-flag", "defaultRule"},
		{"GOFF JsonLogic too deep", FormatGoFeatureFlag, fmt.Sprintf("bad-flag:\n  variations: {a: 1}\n  targeting:\n    - query: '%s'\n      variation: a\n  defaultRule: {variation: a}\n", deep),
			"bad-flag", "targeting[0].query"},
		{"flagd unknown operator", FormatFlagd, `{"flags": {"bad-flag": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a", "targeting": {"regex": ["x"]}}}}`,
			"bad-flag", "targeting"},
		{"flagd wrong type", FormatFlagd, `{"flags": {"bad-flag": {"state": "ON", "variants": {"a": 1}}}}`, "bad-flag", "state"},
		{"flagd deep", FormatFlagd, `{"flags": {"bad-flag": {"state": "ENABLED", "variants": {"a": 1}, "targeting": ` + strings.Repeat(`{"!": [`, 120) + "true" + strings.Repeat("]}", 120) + `}}}`,
			"bad-flag", "targeting"},
		{"huge file", FormatFlagd, `{"flags": {}, "metadata": {"pad": "` + strings.Repeat("x", MaxSize) + `"}}`, "", "limit"},
		{"empty file", FormatUnleash, "  ", "", "empty"},
		{"no flags", FormatGoFeatureFlag, "{}", "", "no flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Import(tc.format, []byte(tc.content), Options{})
			var e *switchyard.Error
			if !errors.As(err, &e) || e.Code != switchyard.CodeInvalidRequest {
				t.Fatalf("got %v, want an invalid request", err)
			}
			if tc.flag != "" && (!strings.Contains(e.Message, `"`+tc.flag+`"`) || e.Fields["flag"] != tc.flag) {
				t.Errorf("%q does not name flag %q (fields %v)", e.Message, tc.flag, e.Fields)
			}
			if !strings.Contains(e.Message, tc.path) {
				t.Errorf("%q does not name %q", e.Message, tc.path)
			}
			if res.Document.Flags != nil || res.Report != nil {
				t.Errorf("a failed import returned %+v", res)
			}
		})
	}
}

// fuzzImport is the property every importer keeps on any input: no panic,
// and either an invalid request or a document that compiles and exports.
func fuzzImport(f *testing.F, format string) {
	f.Fuzz(func(t *testing.T, content []byte) {
		res, err := Import(format, content, Options{Environment: "production"})
		if err != nil {
			if switchyard.ErrorCode(err) != switchyard.CodeInvalidRequest {
				t.Fatalf("error %v is not an invalid request", err)
			}
			return
		}
		var b bytes.Buffer
		if err := json.NewEncoder(&b).Encode(res.Document); err != nil {
			t.Fatal(err)
		}
		if _, err := evaluator.ParseDocument(b.Bytes()); err != nil {
			t.Fatalf("the document does not read back: %v\n%s", err, b.Bytes())
		}
	})
}

func FuzzLaunchDarkly(f *testing.F)  { fuzzImport(f, FormatLaunchDarkly) }
func FuzzUnleash(f *testing.F)       { fuzzImport(f, FormatUnleash) }
func FuzzGoFeatureFlag(f *testing.F) { fuzzImport(f, FormatGoFeatureFlag) }
func FuzzFlagd(f *testing.F)         { fuzzImport(f, FormatFlagd) }

func BenchmarkImport(b *testing.B) {
	for _, tc := range []struct{ format, file string }{
		{FormatFlagd, "flagd.json"},
		{FormatLaunchDarkly, "launchdarkly.json"},
		{FormatUnleash, "unleash.json"},
		{FormatGoFeatureFlag, "gofeatureflag.yaml"},
	} {
		content, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.format, func(b *testing.B) {
			b.SetBytes(int64(len(content)))
			for b.Loop() {
				if _, err := Import(tc.format, content, Options{Environment: "production"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
