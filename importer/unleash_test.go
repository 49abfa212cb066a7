package importer

import (
	"fmt"
	"strings"
	"testing"
)

// unleashIn is flexibleRollout's documented check.
func unleashIn(value, group string, pct uint32) bool {
	return pct > 0 && unleashHash(value, group, 100, 0) <= pct
}

// expectUnleashVariant is the client specification's variant selection for the
// given identifier (overrides aside).
func expectUnleashVariant(value, group string, weights []uint32, names []string) string {
	var total uint32
	for _, w := range weights {
		total += w
	}
	target := unleashHash(value, group, total, 86028157)
	var acc uint32
	for i, w := range weights {
		if w == 0 {
			continue
		}
		if acc += w; acc >= target {
			return names[i]
		}
	}
	return ""
}

func onIf(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func TestUnleashImport(t *testing.T) {
	res, err := Import(FormatUnleash, readTestdata(t, "unleash.json"), Options{Environment: "production"})
	if err != nil {
		t.Fatal(err)
	}
	disabled := map[string]any{"name": "disabled", "enabled": false, "feature_enabled": false}
	users := []user{
		{name: "userWithId", flag: "new-onboarding", ctx: map[string]any{"targetingKey": "bob", "appName": "ios"}, variant: "on", value: true},
		{name: "constraint fails, not listed", flag: "new-onboarding", ctx: map[string]any{"targetingKey": "zed", "appName": "ios"}, variant: "off", value: false},
		{name: "no identifier at all", flag: "new-onboarding", ctx: map[string]any{"appName": "web"}, variant: "off"},
		{name: "segment matches, rollout 100 by userId", flag: "beta-dashboard", ctx: map[string]any{"targetingKey": "u1", "country": "DE", "email": "a+beta@x.io"}, variant: "on"},
		{name: "segment does not match", flag: "beta-dashboard", ctx: map[string]any{"targetingKey": "u1", "country": "US", "email": "a+beta@x.io"}, variant: "off"},
		{name: "userId stickiness without userId", flag: "beta-dashboard", ctx: map[string]any{"sessionId": "s", "country": "DE", "email": "a+beta@x.io"}, variant: "off"},
		{name: "variant override", flag: "search-ranking", ctx: map[string]any{"targetingKey": "dana"}, variant: "semantic",
			value: map[string]any{"name": "semantic", "enabled": true, "feature_enabled": true, "payload": map[string]any{"type": "json", "value": `{"model": "v2"}`}}},
		{name: "exact address and email", flag: "internal-tools", ctx: map[string]any{"email": "ops@example.com", "remoteAddress": "10.0.0.2"}, variant: "on"},
		{name: "address outside the list", flag: "internal-tools", ctx: map[string]any{"email": "ops@example.com", "remoteAddress": "10.0.0.3"}, variant: "off"},
		{name: "disabled in the environment", flag: "holiday-sale", ctx: map[string]any{"targetingKey": "x"}, variant: "off", value: false},
		{name: "strategy constraint excludes the US", flag: "pricing-page", ctx: map[string]any{"targetingKey": "u", "country": "US"}, variant: "disabled", value: disabled},
		{name: "all constraints hold", flag: "version-gate", ctx: map[string]any{"appVersion": "2.1.0", "age": "20", "plan": "pro"}, variant: "on"},
		{name: "number below", flag: "version-gate", ctx: map[string]any{"appVersion": "2.1.0", "age": 17, "plan": "pro"}, variant: "off"},
		{name: "number missing", flag: "version-gate", ctx: map[string]any{"appVersion": "2.1.0", "plan": "pro"}, variant: "off"},
		{name: "inverted starts-with", flag: "version-gate", ctx: map[string]any{"appVersion": "2.1.0", "age": 30, "plan": "enterprise"}, variant: "off"},
		{name: "inverted starts-with, missing value", flag: "version-gate", ctx: map[string]any{"appVersion": "2.1.0", "age": 30}, variant: "on"},
		{name: "old version", flag: "version-gate", ctx: map[string]any{"appVersion": "1.9.0", "age": 30}, variant: "off"},
		{name: "second strategy", flag: "partner-portal", ctx: map[string]any{"targetingKey": "partner-1"}, variant: "on"},
		{name: "segment without constraints never matches", flag: "partner-portal", ctx: map[string]any{"targetingKey": "partner-2"}, variant: "off"},
	}
	reached := map[string]map[string]bool{}
	reach := func(flag, v string) {
		if reached[flag] == nil {
			reached[flag] = map[string]bool{}
		}
		reached[flag][v] = true
	}
	for i := range 40 {
		key := fmt.Sprintf("crowd-%d", i)
		onboarding := onIf(unleashIn(key, "new-onboarding", 40))
		bySession := onIf(unleashIn("session-"+key, "new-onboarding", 40))
		ranking := expectUnleashVariant(key, "search-ranking", []uint32{500, 500}, []string{"classic", "semantic"})
		var pricing string
		if unleashIn(key, "pricing", 50) {
			pricing = expectUnleashVariant(key, "pricing", []uint32{300, 700}, []string{"red", "blue"})
		} else {
			pricing = "disabled"
		}
		legacy := onIf(unleashIn(key, "kill-legacy-api", 25))
		users = append(users,
			user{name: key, flag: "new-onboarding", ctx: map[string]any{"targetingKey": key, "appName": "web"}, variant: onboarding},
			user{name: key + " by session", flag: "new-onboarding", ctx: map[string]any{"sessionId": "session-" + key, "appName": "mobile-web"}, variant: bySession},
			user{name: key, flag: "search-ranking", ctx: map[string]any{"targetingKey": key}, variant: ranking},
			user{name: key + " by session", flag: "search-ranking", ctx: map[string]any{"sessionId": key},
				variant: expectUnleashVariant(key, "search-ranking", []uint32{500, 500}, []string{"classic", "semantic"})},
			user{name: key, flag: "pricing-page", ctx: map[string]any{"targetingKey": key, "country": "DE"}, variant: pricing},
			user{name: key, flag: "kill-legacy-api", ctx: map[string]any{"targetingKey": key}, variant: legacy},
		)
		reach("new-onboarding", onboarding)
		reach("search-ranking", ranking)
		reach("pricing-page", pricing)
		reach("kill-legacy-api", legacy)
	}
	for flag, want := range map[string]int{"new-onboarding": 2, "search-ranking": 2, "pricing-page": 3, "kill-legacy-api": 2} {
		if len(reached[flag]) != want {
			t.Fatalf("the crowd reaches %v of %s, want %d outcomes", reached[flag], flag, want)
		}
	}
	checkUsers(t, res.Document, users)

	if _, ok := res.Document.Flags["old-experiment"]; ok {
		t.Error("an archived feature was imported")
	}
	checkReport(t, res.Report, []reportKey{
		{"beta-dashboard", "features[1]", SeverityUnsupported},
		{"internal-tools", "featureStrategies[5].constraints[0]", SeverityChanged},
		{"internal-tools", "featureStrategies[5].parameters.IPs", SeverityUnsupported},
		{"kill-legacy-api", "featureStrategies[11]", SeverityUnsupported},
		{"new-onboarding", "featureStrategies[0]", SeverityChanged},
		{"old-experiment", "features[9]", SeverityUnsupported},
		{"partner-portal", "featureStrategies[9]", SeverityUnsupported},
		{"pricing-page", "features[5].variants", SeverityChanged},
		{"pricing-page", "featureStrategies[7].variants", SeverityChanged},
		{"search-ranking", "features[2].variants", SeverityChanged},
		{"search-ranking", "features[2].variants", SeverityChanged},
	})
}

func TestUnleashEnvironments(t *testing.T) {
	content := readTestdata(t, "unleash.json")
	if _, err := Import(FormatUnleash, content, Options{}); err == nil || !strings.Contains(err.Error(), "development, production") {
		t.Fatalf("without --environment: %v", err)
	}
	res, err := Import(FormatUnleash, content, Options{Environment: "development"})
	if err != nil {
		t.Fatal(err)
	}
	checkUsers(t, res.Document, []user{
		{name: "100% in development", flag: "new-onboarding", ctx: map[string]any{"targetingKey": "zed"}, variant: "on"},
		{name: "not enabled in development", flag: "beta-dashboard", ctx: map[string]any{"targetingKey": "zed"}, variant: "off"},
	})
	if _, err := Import(FormatUnleash, content, Options{Environment: "qa"}); err == nil {
		t.Fatal("an unknown environment was accepted")
	}
}

// TestUnleashClientPayload reads the client API shape: strategies,
// variants and segments with constraints inline.
func TestUnleashClientPayload(t *testing.T) {
	payload := `{"version": 2, "features": [
	  {"name": "f", "enabled": true, "strategies": [
	    {"name": "flexibleRollout", "parameters": {"rollout": "30", "stickiness": "tenant", "groupId": "g"}, "constraints": [], "segments": [7]}
	  ], "variants": []},
	  {"name": "off", "enabled": false, "strategies": [{"name": "default", "parameters": {}}]}
	], "segments": [{"id": 7, "name": "eu", "constraints": [{"contextName": "region", "operator": "IN", "values": ["eu"]}]}]}`
	res, err := Import(FormatUnleash, []byte(payload), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var users []user
	for i := range 20 {
		tenant := fmt.Sprintf("tenant-%d", i)
		users = append(users, user{name: tenant, flag: "f", ctx: map[string]any{"tenant": tenant, "region": "eu"}, variant: onIf(unleashIn(tenant, "g", 30))})
	}
	users = append(users,
		user{name: "outside the segment", flag: "f", ctx: map[string]any{"tenant": "tenant-1", "region": "us"}, variant: "off"},
		user{name: "custom stickiness missing", flag: "f", ctx: map[string]any{"targetingKey": "u", "region": "eu"}, variant: "off"},
		user{name: "disabled feature", flag: "off", ctx: map[string]any{"targetingKey": "u"}, variant: "off"})
	checkUsers(t, res.Document, users)
}
