package importer

import (
	"fmt"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
)

func TestGoFeatureFlagImport(t *testing.T) {
	res, err := Import(FormatGoFeatureFlag, readTestdata(t, "gofeatureflag.yaml"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	users := []user{
		{name: "employee in beta", flag: "new-header", ctx: map[string]any{"targetingKey": "e1", "email": "a@example.com", "beta": true}, variant: "enabled", value: true},
		{name: "senior employee", flag: "new-header", ctx: map[string]any{"targetingKey": "e2", "email": "a@example.com", "age": 31}, variant: "enabled"},
		{name: "young employee, not in beta", flag: "new-header", ctx: map[string]any{"targetingKey": "e3", "email": "a@example.com", "age": 25}, variant: "disabled"},
		{name: "old iOS app", flag: "new-header", ctx: map[string]any{"targetingKey": "user-1", "platform": "ios", "appVersion": "1.5.0"}, variant: "disabled"},
		{name: "allow list", flag: "new-header", ctx: map[string]any{"targetingKey": "user-2", "platform": "android"}, variant: "enabled"},
		{name: "disabled rule is skipped", flag: "new-header", ctx: map[string]any{"targetingKey": "u", "plan": "free"}, variant: "disabled", value: false},
		{name: "outside the split", flag: "checkout-flow", ctx: map[string]any{"targetingKey": "u", "country": "DE"}, variant: "v1", value: "checkout-v1"},
		{name: "in the split", flag: "checkout-flow", ctx: map[string]any{"targetingKey": "u", "country": "FR"}, oneOf: []string{"v1", "v2"}},
		{name: "JsonLogic query", flag: "recommendations", ctx: map[string]any{"targetingKey": "u", "plan": "enterprise"}, variant: "many", value: float64(20)},
		{name: "numbers, lists and presence", flag: "recommendations", ctx: map[string]any{"targetingKey": "u", "orders": 11, "country": "AT", "tier": "gold"}, variant: "few"},
		{name: "presence missing", flag: "recommendations", ctx: map[string]any{"targetingKey": "u", "orders": 11, "country": "AT"}, oneOf: []string{"none", "few"}},
		{name: "progressive rollout is not imported", flag: "recommendations", ctx: map[string]any{"targetingKey": "u", "country": "US"}, oneOf: []string{"none", "few"}},
		{name: "disabled flag", flag: "dark-mode", ctx: map[string]any{"targetingKey": "u"}, reason: evaluator.ReasonDisabled},
		{name: "scheduled rollout keeps the current state", flag: "holiday-theme", ctx: map[string]any{"targetingKey": "u"}, variant: "plain"},
	}
	checkUsers(t, res.Document, users)
	checkReport(t, res.Report, []reportKey{
		{"checkout-flow", "targeting[0].percentage", SeverityChanged},
		{"checkout-flow", "targeting", SeverityChanged},
		{"holiday-theme", "scheduledRollout", SeverityUnsupported},
		{"new-header", "metadata.links", SeverityUnsupported},
		{"new-header", "targeting", SeverityChanged},
		{"recommendations", "targeting[2].progressiveRollout", SeverityUnsupported},
		{"recommendations", "defaultRule.percentage", SeverityChanged},
	})
	if got := res.Document.Flags["new-header"].Metadata["owner"]; got != "web-team" {
		t.Errorf("metadata owner = %v", got)
	}
}

func TestGoFeatureFlagJSONFile(t *testing.T) {
	res, err := Import(FormatGoFeatureFlag, []byte(`{"f": {"variations": {"a": "A", "b": "B"},
		"targeting": [{"query": "tier eq \"gold\"", "variation": "b"}], "defaultRule": {"variation": "a"}}}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkUsers(t, res.Document, []user{
		{name: "gold", flag: "f", ctx: map[string]any{"targetingKey": "u", "tier": "gold"}, variant: "b"},
		{name: "silver", flag: "f", ctx: map[string]any{"targetingKey": "u", "tier": "silver"}, variant: "a"},
	})
}

// TestGoFeatureFlagQueries checks the query language against what
// nikunjy/rules decides for the same context.
func TestGoFeatureFlagQueries(t *testing.T) {
	ctx := map[string]any{"targetingKey": "k1", "name": "Ann", "age": 42, "admin": true, "version": "1.4.2",
		"org": map[string]any{"plan": "pro"}, "ratio": 0.5}
	for _, tc := range []struct {
		query string
		want  bool
	}{
		{`key eq "k1"`, true},
		{`targetingKey == "k1"`, true},
		{`name ne "Bob"`, true},
		{`missing ne "Bob"`, false},
		{`name co "nn"`, true},
		{`name sw "An"`, true},
		{`name ew "nn"`, true},
		{`name in ["Ann", "Bob"]`, true},
		{`age gt 40`, true},
		{`age lt 40`, false},
		{`age >= 42`, true},
		{`age le 41`, false},
		{`age in [41, 42]`, true},
		{`ratio lt 0.75`, true},
		{`admin eq true`, true},
		{`admin ne true`, false},
		{`missing eq null`, true},
		{`name ne null`, true},
		{`version gt 1.4.0`, true},
		{`version eq 1.4.2`, true},
		{`org.plan eq "pro"`, true},
		{`org.seats pr`, false},
		{`org pr`, true},
		{`not (age gt 40)`, false},
		{`age gt 40 and admin eq false`, false},
		{`age gt 40 and admin eq false or name eq "Ann"`, true},
		{`name eq "Bob" or age gt 40 and admin eq false`, false}, // and/or group from the left
		{`name eq "Bob" or (age gt 40 and admin eq true)`, true},
		{`(name eq "Ann") and (not (age lt 18))`, true},
	} {
		file := fmt.Sprintf(`{"f": {"variations": {"yes": true, "no": false}, "targeting": [{"query": %q, "variation": "yes"}], "defaultRule": {"variation": "no"}}}`, tc.query)
		res, err := Import(FormatGoFeatureFlag, []byte(file), Options{})
		if err != nil {
			t.Errorf("%s: %v", tc.query, err)
			continue
		}
		got := compile(t, res.Document).Evaluate("f", ctx)
		if got.Variant != map[bool]string{true: "yes", false: "no"}[tc.want] {
			t.Errorf("%s: got %s (%s %s), want %t", tc.query, got.Variant, got.Reason, got.ErrorMessage, tc.want)
		}
	}
}

func TestGoFeatureFlagQueryErrors(t *testing.T) {
	for _, q := range []string{
		`name eq`,
		`name xx "a"`,
		`name eq "unterminated`,
		`name co 3`,
		`name in "a"`,
		`name in ["a", 1]`,
		`(name eq "a"`,
		`not name eq "a"`,
		`age gt null`,
		`name eq "a" and`,
		strings.Repeat("(", 100) + `a eq 1` + strings.Repeat(")", 100),
	} {
		file := fmt.Sprintf(`{"flag-x": {"variations": {"a": 1}, "targeting": [{"query": %q, "variation": "a"}], "defaultRule": {"variation": "a"}}}`, q)
		_, err := Import(FormatGoFeatureFlag, []byte(file), Options{})
		if switchyard.ErrorCode(err) != switchyard.CodeInvalidRequest || !strings.Contains(err.Error(), `flag "flag-x"`) ||
			!strings.Contains(err.Error(), "targeting[0].query") {
			t.Errorf("%s: got %v, want an invalid request naming the flag and the query", q, err)
		}
	}
}
