package importer

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/evaluator"
)

const (
	checkoutSalt = "f5b1cd6e6fc34b4b8d0a1e43a4c1ab2e"
	pricingSalt  = "pricing-salt"
)

func TestLaunchDarklyImport(t *testing.T) {
	res, err := Import(FormatLaunchDarkly, readTestdata(t, "launchdarkly.json"), Options{Environment: "production"})
	if err != nil {
		t.Fatal(err)
	}
	onOff := []string{"on", "off"}
	users := []user{
		{name: "individual target", flag: "checkout-redesign", ctx: map[string]any{"targetingKey": "user-vip"}, variant: "on", value: true},
		{name: "targets beat rules", flag: "checkout-redesign", ctx: map[string]any{"targetingKey": "user-blocked", "email": "b@example.com"}, variant: "off"},
		{name: "rule on email", flag: "checkout-redesign", ctx: map[string]any{"targetingKey": "emp-1", "email": "ann@example.com"}, variant: "on"},
		{name: "organization targets never match a user", flag: "checkout-redesign", ctx: map[string]any{"targetingKey": "org-acme"},
			variant: ldVariant("checkout-redesign", checkoutSalt, nil, "org-acme", []int{25000, 75000}, onOff)},
		{name: "unsupported segment rule never matches", flag: "checkout-redesign", ctx: map[string]any{"targetingKey": "beta-1", "segment": "beta-testers"},
			variant: ldVariant("checkout-redesign", checkoutSalt, nil, "beta-1", []int{25000, 75000}, onOff)},
		{name: "negated clause with missing attribute never matches", flag: "checkout-redesign", ctx: map[string]any{"targetingKey": "u-noplan", "country": "DE"},
			variant: ldVariant("checkout-redesign", checkoutSalt, nil, "u-noplan", []int{25000, 75000}, onOff)},
		{name: "negated clause excludes the free plan", flag: "checkout-redesign", ctx: map[string]any{"targetingKey": "u-free", "country": "FR", "plan": "free"},
			variant: ldVariant("checkout-redesign", checkoutSalt, nil, "u-free", []int{25000, 75000}, onOff)},

		{name: "semver rule", flag: "banner-color", ctx: map[string]any{"targetingKey": "user-vip", "appVersion": "2.2.0"}, variant: "Blue", value: "blue"},
		{name: "semver rule below", flag: "banner-color", ctx: map[string]any{"targetingKey": "user-vip", "appVersion": "2.1.0"}, variant: "Red"},
		{name: "attribute reference and anchored regex", flag: "banner-color", ctx: map[string]any{"targetingKey": "user-vip", "team": map[string]any{"name": "growth-eu"}}, variant: "Green"},
		{name: "numeric rule with kind clause", flag: "banner-color", ctx: map[string]any{"targetingKey": "user-vip", "age": 70}, variant: "Blue"},
		{name: "numeric rule below", flag: "banner-color", ctx: map[string]any{"targetingKey": "user-vip", "age": 40}, variant: "Red"},
		{name: "prerequisite met, fallthrough", flag: "banner-color", ctx: map[string]any{"targetingKey": "emp-2", "email": "e@example.com"}, variant: "Red", reason: ""},
		{name: "prerequisite failed serves the off variation", flag: "banner-color", ctx: map[string]any{"targetingKey": "user-blocked", "appVersion": "3.0.0"}, variant: "Red"},

		{name: "experiment without company buckets by key", flag: "pricing-experiment", ctx: map[string]any{"targetingKey": "k-1", "requests": 10},
			variant: ldVariant("pricing-experiment", pricingSalt, intp(61), "k-1", []int{34000, 33000, 33000}, []string{"control", "higher", "lower"})},
		{name: "rollout by company", flag: "pricing-experiment", ctx: map[string]any{"targetingKey": "k-2", "requests": 5000, "company": "acme"},
			variant: ldVariant("pricing-experiment", pricingSalt, nil, "acme", []int{50000, 50000}, []string{"control", "lower"})},
		{name: "rollout without the bucketBy attribute is bucket 0", flag: "pricing-experiment", ctx: map[string]any{"targetingKey": "k-3"}, variant: "control",
			value: map[string]any{"price": float64(9), "currency": "EUR"}},

		{name: "off flag serves its off variation", flag: "legacy-search", ctx: map[string]any{"targetingKey": "anyone"}, variant: "false", value: false},
		{name: "off flag without off variation", flag: "maintenance-banner", ctx: map[string]any{"targetingKey": "anyone"}, reason: evaluator.ReasonDisabled},
	}
	// A crowd for the rollouts, so each weighted variation is exercised.
	seen := map[string]map[string]int{}
	count := func(flag, v string) {
		if seen[flag] == nil {
			seen[flag] = map[string]int{}
		}
		seen[flag][v]++
	}
	for i := range 40 {
		key := fmt.Sprintf("crowd-%d", i)
		inRule := ldVariant("checkout-redesign", checkoutSalt, nil, key, []int{30000, 70000}, onOff)
		users = append(users,
			user{name: key + " fallthrough", flag: "checkout-redesign", ctx: map[string]any{"targetingKey": key},
				variant: ldVariant("checkout-redesign", checkoutSalt, nil, key, []int{25000, 75000}, onOff)},
			user{name: key + " rule rollout", flag: "checkout-redesign", ctx: map[string]any{"targetingKey": key, "country": "DE", "plan": "pro"}, variant: inRule},
			user{name: key + " experiment", flag: "pricing-experiment", ctx: map[string]any{"targetingKey": key, "requests": 1},
				variant: ldVariant("pricing-experiment", pricingSalt, intp(61), key, []int{34000, 33000, 33000}, []string{"control", "higher", "lower"})})
		count("checkout-redesign", inRule)
		count("pricing-experiment", users[len(users)-1].variant)
	}
	if len(seen["checkout-redesign"]) != 2 || len(seen["pricing-experiment"]) != 3 {
		t.Fatalf("the crowd does not reach every variation: %v", seen)
	}
	checkUsers(t, res.Document, users)

	if _, ok := res.Document.Flags["module.search"]; ok {
		t.Error("a reserved key was imported")
	}
	checkReport(t, res.Report, []reportKey{
		{"banner-color", "environments.production.rules[0].clauses[0]", SeverityChanged},
		{"banner-color", "environments.production.rules[2]", SeverityUnsupported},
		{"checkout-redesign", "environments.production.contextTargets[2]", SeverityUnsupported},
		{"checkout-redesign", "environments.production.rules[2]", SeverityUnsupported},
		{"module.search", "", SeverityUnsupported},
	})
}

func intp(i int) *int { return &i }

func TestLaunchDarklyEnvironments(t *testing.T) {
	content := readTestdata(t, "launchdarkly.json")
	_, err := Import(FormatLaunchDarkly, content, Options{})
	if err == nil || !strings.Contains(err.Error(), "production, staging") {
		t.Fatalf("without --environment: %v, want the environments listed", err)
	}
	res, err := Import(FormatLaunchDarkly, content, Options{Environment: "staging"})
	if err != nil {
		t.Fatal(err)
	}
	checkUsers(t, res.Document, []user{
		{name: "staging fallthrough", flag: "checkout-redesign", ctx: map[string]any{"targetingKey": "user-blocked"}, variant: "on"},
		{name: "staging off flag", flag: "banner-color", ctx: map[string]any{"targetingKey": "x"}, variant: "Red"},
		{name: "staging on flag", flag: "legacy-search", ctx: map[string]any{"targetingKey": "x"}, variant: "true"},
	})
	if f := res.Document.Flags["checkout-redesign"]; len(f.Targeting) != 0 || *f.DefaultVariant != "on" {
		t.Errorf("a flag with only a fixed fallthrough needs no targeting: %+v", f)
	}
}

func TestLaunchDarklySingleFlag(t *testing.T) {
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(readTestdata(t, "launchdarkly.json"), &list); err != nil {
		t.Fatal(err)
	}
	res, err := Import(FormatLaunchDarkly, list.Items[0], Options{Environment: "production"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Document.Flags) != 1 || res.Document.Flags["checkout-redesign"].Targeting == nil {
		t.Fatalf("got %v", res.Document.Flags)
	}
}

func TestLaunchDarklyPrerequisites(t *testing.T) {
	flag := func(key string, on bool, prereqs string) string {
		return fmt.Sprintf(`{"key": %q, "variations": [{"value": true}, {"value": false}],
			"environments": {"production": {"on": %t, "salt": "s", "fallthrough": {"variation": 0}, "offVariation": 1, "prerequisites": %s}}}`,
			key, on, prereqs)
	}
	for _, tc := range []struct {
		name    string
		items   []string
		want    string
		changed bool
		err     string
	}{
		{name: "prerequisite off fails", items: []string{flag("a", true, `[{"key": "b", "variation": 0}]`), flag("b", false, `[]`)}, want: "false"},
		{name: "prerequisite on and matching", items: []string{flag("a", true, `[{"key": "b", "variation": 0}]`), flag("b", true, `[]`)}, want: "true"},
		{name: "prerequisite serving another variation", items: []string{flag("a", true, `[{"key": "b", "variation": 1}]`), flag("b", true, `[]`)}, want: "false"},
		{name: "chained prerequisites", items: []string{flag("a", true, `[{"key": "b", "variation": 0}]`), flag("b", true, `[{"key": "c", "variation": 0}]`), flag("c", false, `[]`)}, want: "false"},
		{name: "missing prerequisite is reported", items: []string{flag("a", true, `[{"key": "elsewhere", "variation": 0}]`)}, want: "true", changed: true},
		{name: "exponential sharing", items: fanOut(), err: "more than"},
		{name: "cycle", items: []string{flag("a", true, `[{"key": "b", "variation": 0}]`), flag("b", true, `[{"key": "a", "variation": 0}]`)}, err: "circular prerequisite"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Import(FormatLaunchDarkly, []byte(`{"items": [`+strings.Join(tc.items, ",")+`]}`), Options{})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := compile(t, res.Document).Evaluate("a", map[string]any{"targetingKey": "u"})
			if got.Variant != tc.want {
				t.Errorf("got %q (%s), want %q", got.Variant, got.ErrorMessage, tc.want)
			}
			if (len(res.Report) > 0) != tc.changed {
				t.Errorf("report %v", res.Report)
			}
		})
	}
}

func TestLaunchDarklyClauseOperators(t *testing.T) {
	doc := func(op string, values string, negate bool) []byte {
		return []byte(fmt.Sprintf(`{"key": "f", "variations": [{"value": "hit"}, {"value": "miss"}],
			"environments": {"production": {"on": true, "salt": "s", "offVariation": 1, "fallthrough": {"variation": 1},
			"rules": [{"variation": 0, "clauses": [{"attribute": "a", "op": %q, "values": %s, "negate": %t}]}]}}}`, op, values, negate))
	}
	for _, tc := range []struct {
		op, values string
		negate     bool
		attr       any
		want       string
	}{
		{"in", `["x", "y"]`, false, "y", "hit"},
		{"in", `["x", "y"]`, true, "y", "miss"},
		{"in", `["x", "y"]`, true, nil, "miss"},
		{"in", `["x", "y"]`, true, "z", "hit"},
		{"startsWith", `["ab"]`, false, "abc", "hit"},
		{"endsWith", `["bc"]`, false, "abc", "hit"},
		{"contains", `["b"]`, false, "abc", "hit"},
		{"contains", `["q"]`, false, "abc", "miss"},
		{"matches", `["^abc$"]`, false, "abc", "hit"},
		{"matches", `["^abc$"]`, false, "abcd", "miss"},
		{"matches", `["bc"]`, false, "abcd", "hit"},
		{"lessThan", `[10]`, false, 5, "hit"},
		{"lessThan", `[10]`, false, nil, "miss"},
		{"lessThanOrEqual", `[10]`, false, 10, "hit"},
		{"greaterThan", `[10]`, false, 11, "hit"},
		{"greaterThanOrEqual", `[10]`, false, 9, "miss"},
		{"before", `["2024-01-01T00:00:00Z"]`, false, 1700000000000, "hit"},
		{"after", `[1700000000000]`, false, 1800000000000, "hit"},
		{"semVerEqual", `["1.2"]`, false, "1.2.0", "hit"},
		{"semVerLessThan", `["2.0.0"]`, false, "1.9.9", "hit"},
		{"semVerGreaterThan", `["2.0.0-rc.1"]`, false, "2.0.0", "hit"},
	} {
		name := fmt.Sprintf("%s %s negate=%t %v", tc.op, tc.values, tc.negate, tc.attr)
		res, err := Import(FormatLaunchDarkly, doc(tc.op, tc.values, tc.negate), Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ctx := map[string]any{"targetingKey": "u"}
		if tc.attr != nil {
			ctx["a"] = tc.attr
		}
		if got := compile(t, res.Document).Evaluate("f", ctx); got.Variant != tc.want {
			t.Errorf("%s: got %q (%s), want %q", name, got.Variant, got.ErrorMessage, tc.want)
		}
	}
}

// fanOut builds flags whose prerequisites each name the next flag many
// times: inlined naively, the first flag would hold 16^7 copies.
func fanOut() []string {
	var items []string
	for level := range 8 {
		var prereqs []string
		if level < 7 {
			for range 16 {
				prereqs = append(prereqs, fmt.Sprintf(`{"key": "f%d", "variation": 0}`, level+1))
			}
		}
		key := fmt.Sprintf("f%d", level)
		if level == 0 {
			key = "a"
		}
		items = append(items, fmt.Sprintf(`{"key": %q, "variations": [{"value": true}, {"value": false}],
			"environments": {"production": {"on": true, "salt": "s", "fallthrough": {"variation": 0}, "offVariation": 1,
			"rules": [{"variation": 0, "clauses": [{"attribute": "email", "op": "endsWith", "values": ["@example.com"]}]}],
			"prerequisites": [%s]}}}`, key, strings.Join(prereqs, ",")))
	}
	return items
}
