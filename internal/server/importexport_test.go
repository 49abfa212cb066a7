package server

import (
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/importer"
	"github.com/switchyard-dev/switchyard/store"
)

// vendorUser is a documented evaluation of an imported flag: the OFREP
// context and what the source vendor serves for it, a variant (and value,
// when given) or, with reason DISABLED, the application's default.
type vendorUser struct {
	flag    string
	ctx     map[string]any
	variant string
	value   any
	reason  string
}

// vendorFile is one of the importer's testdata files and its documented
// users. The expected variants follow the importer's test tables; the
// rollout users' variants were computed outside Go from the vendors'
// documented algorithms (LaunchDarkly: SHA-1 of "<flag>.<salt>.<key>" or
// "<seed>.<key>"; Unleash: murmur3 of "<groupId>:<userId>", % 100 + 1 for
// rollouts, % total weight + 1 with seed 86028157 for variants; flagd:
// murmur3 of "<flag><targetingKey>" times the total weight >> 32).
type vendorFile struct {
	format, file, environment string
	imported                  []string
	users                     []vendorUser
}

func vendorFiles() []vendorFile {
	ctx := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	return []vendorFile{
		{
			format: importer.FormatLaunchDarkly, file: "launchdarkly.json", environment: "production",
			imported: []string{"banner-color", "checkout-redesign", "legacy-search", "maintenance-banner", "pricing-experiment"},
			users: []vendorUser{
				{flag: "checkout-redesign", ctx: ctx("targetingKey", "user-vip"), variant: "on", value: true},
				{flag: "checkout-redesign", ctx: ctx("targetingKey", "user-blocked", "email", "b@example.com"), variant: "off", value: false},
				{flag: "checkout-redesign", ctx: ctx("targetingKey", "emp-1", "email", "ann@example.com"), variant: "on"},
				{flag: "checkout-redesign", ctx: ctx("targetingKey", "crowd-0"), variant: "off"},
				{flag: "checkout-redesign", ctx: ctx("targetingKey", "crowd-1"), variant: "on"},
				{flag: "banner-color", ctx: ctx("targetingKey", "user-vip", "appVersion", "2.2.0"), variant: "Blue", value: "blue"},
				{flag: "banner-color", ctx: ctx("targetingKey", "user-vip", "team", ctx("name", "growth-eu")), variant: "Green"},
				{flag: "banner-color", ctx: ctx("targetingKey", "user-blocked", "appVersion", "3.0.0"), variant: "Red"},
				{flag: "pricing-experiment", ctx: ctx("targetingKey", "k-3"), variant: "control", value: map[string]any{"price": float64(9), "currency": "EUR"}},
				{flag: "pricing-experiment", ctx: ctx("targetingKey", "crowd-0", "requests", 1), variant: "higher"},
				{flag: "pricing-experiment", ctx: ctx("targetingKey", "crowd-2", "requests", 1), variant: "control"},
				{flag: "legacy-search", ctx: ctx("targetingKey", "anyone"), variant: "false", value: false},
				{flag: "maintenance-banner", ctx: ctx("targetingKey", "anyone"), reason: "DISABLED"},
			},
		},
		{
			format: importer.FormatUnleash, file: "unleash.json", environment: "production",
			users: []vendorUser{
				{flag: "new-onboarding", ctx: ctx("targetingKey", "bob", "appName", "ios"), variant: "on", value: true},
				{flag: "new-onboarding", ctx: ctx("targetingKey", "zed", "appName", "ios"), variant: "off", value: false},
				{flag: "new-onboarding", ctx: ctx("targetingKey", "crowd-0", "appName", "web"), variant: "off"},
				{flag: "new-onboarding", ctx: ctx("targetingKey", "crowd-2", "appName", "web"), variant: "on"},
				{flag: "search-ranking", ctx: ctx("targetingKey", "dana"), variant: "semantic", value: map[string]any{
					"name": "semantic", "enabled": true, "feature_enabled": true, "payload": map[string]any{"type": "json", "value": `{"model": "v2"}`}}},
				{flag: "search-ranking", ctx: ctx("targetingKey", "crowd-0"), variant: "semantic"},
				{flag: "search-ranking", ctx: ctx("targetingKey", "crowd-1"), variant: "classic"},
				{flag: "internal-tools", ctx: ctx("email", "ops@example.com", "remoteAddress", "10.0.0.2"), variant: "on"},
				{flag: "internal-tools", ctx: ctx("email", "ops@example.com", "remoteAddress", "10.0.0.3"), variant: "off"},
				{flag: "holiday-sale", ctx: ctx("targetingKey", "x"), variant: "off", value: false},
				{flag: "version-gate", ctx: ctx("appVersion", "2.1.0", "age", "20", "plan", "pro"), variant: "on"},
				{flag: "version-gate", ctx: ctx("appVersion", "2.1.0", "age", 17, "plan", "pro"), variant: "off"},
			},
		},
		{
			format: importer.FormatGoFeatureFlag, file: "gofeatureflag.yaml",
			users: []vendorUser{
				{flag: "new-header", ctx: ctx("targetingKey", "e1", "email", "a@example.com", "beta", true), variant: "enabled", value: true},
				{flag: "new-header", ctx: ctx("targetingKey", "user-1", "platform", "ios", "appVersion", "1.5.0"), variant: "disabled"},
				{flag: "new-header", ctx: ctx("targetingKey", "user-2", "platform", "android"), variant: "enabled"},
				{flag: "checkout-flow", ctx: ctx("targetingKey", "u", "country", "DE"), variant: "v1", value: "checkout-v1"},
				{flag: "recommendations", ctx: ctx("targetingKey", "u", "plan", "enterprise"), variant: "many", value: float64(20)},
				{flag: "recommendations", ctx: ctx("targetingKey", "u", "orders", 11, "country", "AT", "tier", "gold"), variant: "few"},
				{flag: "dark-mode", ctx: ctx("targetingKey", "u"), reason: "DISABLED"},
				{flag: "holiday-theme", ctx: ctx("targetingKey", "u"), variant: "plain"},
			},
		},
		{
			format: importer.FormatFlagd, file: "flagd.json",
			imported: []string{"color-scheme", "new-checkout", "rate-limit", "retired-banner", "static-config"},
			users: []vendorUser{
				{flag: "new-checkout", ctx: ctx("targetingKey", "u", "email", "a@example.com"), variant: "on", value: true},
				{flag: "new-checkout", ctx: ctx("targetingKey", "crowd-0"), variant: "off"},
				{flag: "new-checkout", ctx: ctx("targetingKey", "crowd-6"), variant: "on"},
				{flag: "color-scheme", ctx: ctx("appVersion", "3.1.0"), variant: "dark"},
				{flag: "color-scheme", ctx: ctx("locale", "ja-JP"), variant: "contrast", value: "high-contrast"},
				{flag: "color-scheme", ctx: ctx(), variant: "light"},
				{flag: "rate-limit", ctx: ctx("plan", "pro"), variant: "high", value: float64(100)},
				{flag: "retired-banner", ctx: ctx(), reason: "DISABLED"},
				{flag: "static-config", ctx: ctx(), variant: "default"},
			},
		},
	}
}

func readImporterTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "importer", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// importBody is the body of an import with the right phrase and a reason.
func importBody(t testing.TB, format, content, environment string, dryRun bool) string {
	t.Helper()
	body := map[string]any{"format": format, "content": content, "phrase": "IMPORT FLAGS", "reason": "moving to Switchyard"}
	if environment != "" {
		body["environment"] = environment
	}
	if dryRun {
		body["dry_run"] = true
	}
	return mustJSON(t, body)
}

// TestImportVendorFiles imports each vendor's testdata file over the API,
// evaluates the documented users over OFREP, then exports the revision and
// evaluates the same users on the export read back as flagd JSON.
func TestImportVendorFiles(t *testing.T) {
	for _, vf := range vendorFiles() {
		t.Run(vf.format, func(t *testing.T) { importVendorFile(t, newHarness(t), vf) })
	}
}

// TestImportVendorFilesOnPostgres imports every vendor's file, one after
// the other, into the production store, in a schema of its own in
// SWITCHYARD_TEST_DATABASE_URL: imported flags survive the store's
// encoding, and imports from several vendors live side by side.
func TestImportVendorFilesOnPostgres(t *testing.T) {
	h := newPostgresHarness(t)
	for _, vf := range vendorFiles() {
		t.Run(vf.format, func(t *testing.T) { importVendorFile(t, h, vf) })
	}
}

// importVendorFile imports vf through the API into h, checks the answer
// and the audit entry, evaluates vf's users over OFREP, and evaluates them
// again on the export parsed as flagd JSON.
func importVendorFile(t *testing.T, h *harness, vf vendorFile) {
	next := h.current(t).Number + 1
	etag := `"` + strconv.FormatInt(next, 10) + `"`
	content := readImporterTestdata(t, vf.file)
	res := h.do(t, call{method: "POST", path: "/v1/admin/import", token: adminToken, header: map[string]string{"If-Match": strconv.FormatInt(next-1, 10)},
		body: importBody(t, vf.format, content, vf.environment, false)})
	if res.status != http.StatusOK || res.header.Get("ETag") != etag {
		t.Fatalf("import = %d ETag %s %s", res.status, res.header.Get("ETag"), res.body)
	}
	out := res.json(t)
	var imported []string
	for _, k := range out["imported"].([]any) {
		imported = append(imported, k.(string))
	}
	report := out["report"].([]any)
	if vf.imported != nil && !slices.Equal(imported, vf.imported) {
		t.Errorf("imported %v, want %v", imported, vf.imported)
	}
	if (vf.format == importer.FormatFlagd) != (len(report) == 0) {
		t.Errorf("report %v: want notes for every vendor but flagd", report)
	}
	entry := h.audit(t)[0]
	if entry.Seq != int64(out["audit_seq"].(float64)) || entry.Action != "import_flags" || entry.Outcome != store.OutcomeApplied ||
		entry.Revision != next || entry.Phrase != "IMPORT FLAGS" || entry.Reason != "moving to Switchyard" {
		t.Errorf("audit entry %+v", entry)
	}

	served := map[int]map[string]any{}
	for i, u := range vf.users {
		got := h.evaluate(t, u.flag, u.ctx)
		served[i] = got
		checkVendorUser(t, "OFREP", u, got["variant"], got["value"], got["reason"])
	}

	exp := h.do(t, call{method: "GET", path: "/v1/admin/export?format=flagd", token: viewerToken})
	if exp.status != http.StatusOK || exp.header.Get("ETag") != etag {
		t.Fatalf("export = %d ETag %s %s", exp.status, exp.header.Get("ETag"), exp.body)
	}
	doc, err := evaluator.ParseDocument(exp.body)
	if err != nil {
		t.Fatalf("the export is not a flagd document: %v", err)
	}
	for _, k := range append(imported, "EXAM_MODE", "SYSTEM_MODE", "module.mastery") {
		if _, ok := doc.Flags[k]; !ok {
			t.Errorf("flag %s is not exported", k)
		}
	}
	rev := switchyard.InitialRevision(time.Unix(0, 0))
	rev.Flags, rev.Evaluators, rev.Metadata = doc.Flags, doc.Evaluators, doc.Metadata
	fs, err := evaluator.Compile(rev, "demo")
	if err != nil {
		t.Fatalf("compile the export: %v", err)
	}
	for i, u := range vf.users {
		r := fs.Evaluate(u.flag, u.ctx)
		checkVendorUser(t, "export", u, nonEmpty(r.Variant), r.Value, string(r.Reason))
		if r.Variant != "" && r.Variant != served[i]["variant"] {
			t.Errorf("export %s %v: variant %s, OFREP served %v", u.flag, u.ctx, r.Variant, served[i]["variant"])
		}
	}
}

// nonEmpty is v, or nil when it is empty, as OFREP omits an empty variant.
func nonEmpty(v string) any {
	if v == "" {
		return nil
	}
	return v
}

func checkVendorUser(t *testing.T, where string, u vendorUser, variant, value, reason any) {
	t.Helper()
	if u.reason != "" {
		if reason != u.reason || value != nil {
			t.Errorf("%s %s %v: got %v %v (%v), want %s and the application's default", where, u.flag, u.ctx, variant, value, reason, u.reason)
		}
		return
	}
	if variant != u.variant {
		t.Errorf("%s %s %v: variant %v (%v), want %s", where, u.flag, u.ctx, variant, reason, u.variant)
	}
	if u.value != nil && !reflect.DeepEqual(value, u.value) {
		t.Errorf("%s %s %v: value %#v, want %#v", where, u.flag, u.ctx, value, u.value)
	}
}

func TestImportDryRunWritesNothing(t *testing.T) {
	h := newHarness(t)
	before := h.audit(t)
	res := h.do(t, call{method: "POST", path: "/v1/admin/import", token: adminToken,
		body: importBody(t, importer.FormatLaunchDarkly, readImporterTestdata(t, "launchdarkly.json"), "production", true)})
	if res.status != http.StatusOK || res.header.Get("ETag") != "" {
		t.Fatalf("dry run = %d ETag %q %s", res.status, res.header.Get("ETag"), res.body)
	}
	out := res.json(t)
	flags := out["document"].(map[string]any)["flags"].(map[string]any)
	if out["dry_run"] != true || len(out["report"].([]any)) == 0 || flags["checkout-redesign"] == nil {
		t.Fatalf("dry run answer %s", res.body)
	}
	if cur := h.current(t); cur.Number != 1 || len(cur.Flags) != 0 {
		t.Fatalf("a dry run stored revision %d with %d flags", cur.Number, len(cur.Flags))
	}
	if after := h.audit(t); len(after) != len(before) {
		t.Fatalf("a dry run was audited: %d entries, want %d", len(after), len(before))
	}
	ev := h.do(t, call{method: "POST", path: "/ofrep/v1/evaluate/flags/checkout-redesign", body: `{"context": {"targetingKey": "u"}}`})
	if ev.status != http.StatusNotFound {
		t.Fatalf("a dry-run flag is served: %d %s", ev.status, ev.body)
	}
}

// TestImportRefusals: every refusal answers the API's error and stores
// nothing; a refused import is audited, a refused dry run is not.
func TestImportRefusals(t *testing.T) {
	ld := readImporterTestdata(t, "launchdarkly.json")
	badOp := `{"key": "bad-flag", "variations": [{"value": true}, {"value": false}], "environments": {"production": {"on": true,
		"fallthrough": {"variation": 0}, "rules": [{"variation": 0, "clauses": [{"attribute": "a", "op": "isOneOf", "values": ["x"]}]}]}}}`
	deep := `{"flags": {"deep-flag": {"state": "ENABLED", "variants": {"a": true}, "defaultVariant": "a", "targeting": ` +
		strings.Repeat(`{"and": [`, 70) + `true` + strings.Repeat(`]}`, 70) + `}}}`
	body := func(change func(m map[string]any)) string {
		m := map[string]any{"format": "launchdarkly", "content": ld, "environment": "production", "phrase": "IMPORT FLAGS", "reason": "r"}
		change(m)
		return mustJSON(t, m)
	}
	tests := []struct {
		name       string
		token      string
		body       string
		header     map[string]string
		breaksSpec bool
		status     int
		code       string
		fields     map[string]any
		audited    bool
	}{
		{name: "viewer", token: viewerToken, body: body(func(map[string]any) {}), status: 403, code: "FORBIDDEN", audited: true},
		{name: "viewer dry run", token: viewerToken, body: body(func(m map[string]any) { m["dry_run"] = true }), status: 403, code: "FORBIDDEN"},
		{name: "wrong phrase", body: body(func(m map[string]any) { m["phrase"] = "import flags" }), status: 400, code: "PHRASE_MISMATCH",
			fields: map[string]any{"expected_phrase": "IMPORT FLAGS"}, audited: true},
		{name: "wrong phrase in a dry run", body: body(func(m map[string]any) { m["phrase"] = "yes"; m["dry_run"] = true }), status: 400, code: "PHRASE_MISMATCH"},
		{name: "blank reason", body: body(func(m map[string]any) { m["reason"] = "  " }), status: 400, code: "REASON_REQUIRED", audited: true},
		{name: "several environments, none chosen", body: body(func(m map[string]any) { delete(m, "environment") }), status: 400, code: "INVALID_REQUEST", audited: true},
		{name: "malformed file", body: body(func(m map[string]any) { m["content"] = `{"items": [` }), status: 400, code: "INVALID_REQUEST", audited: true},
		{name: "unknown operator", body: body(func(m map[string]any) { m["content"] = badOp }), status: 400, code: "INVALID_REQUEST",
			fields: map[string]any{"flag": "bad-flag", "path": "environments.production.rules[0].clauses[0].op"}, audited: true},
		{name: "unknown operator in a dry run", body: body(func(m map[string]any) { m["content"] = badOp; m["dry_run"] = true }), status: 400, code: "INVALID_REQUEST",
			fields: map[string]any{"flag": "bad-flag", "path": "environments.production.rules[0].clauses[0].op"}},
		{name: "wrong type", body: body(func(m map[string]any) {
			m["format"], m["content"] = "flagd", `{"flags": {"typed": {"state": "ENABLED", "variants": {"a": true}, "defaultVariant": 3}}}`
		}), status: 400, code: "INVALID_REQUEST", fields: map[string]any{"flag": "typed"}, audited: true},
		{name: "deeply nested rule", body: body(func(m map[string]any) { m["format"], m["content"] = "flagd", deep }), status: 400, code: "INVALID_REQUEST", audited: true},
		{name: "unknown format", body: body(func(m map[string]any) { m["format"] = "split" }), breaksSpec: true, status: 400, code: "INVALID_REQUEST",
			fields: map[string]any{"format": "split"}, audited: true},
		{name: "unknown field", body: body(func(m map[string]any) { m["env"] = "production" }), breaksSpec: true, status: 400, code: "INVALID_REQUEST",
			fields: map[string]any{"field": "env"}, audited: true},
		{name: "stale If-Match", body: body(func(map[string]any) {}), header: map[string]string{"If-Match": `"7"`}, status: 412, code: "REVISION_CONFLICT",
			fields: map[string]any{"current_revision": float64(1)}, audited: true},
		{name: "file over the importer's limit", body: body(func(m map[string]any) { m["content"] = strings.Repeat(" ", importer.MaxSize+1) }),
			status: 400, code: "INVALID_REQUEST", audited: true},
	}
	h := newHarness(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.clock.pause()
			token := tt.token
			if token == "" {
				token = adminToken
			}
			before := h.audit(t)
			res := h.do(t, call{method: "POST", path: "/v1/admin/import", body: tt.body, token: token, header: tt.header, breaksSpec: tt.breaksSpec})
			if res.status != tt.status || res.errorCode(t) != tt.code {
				t.Fatalf("import = %d %.300s, want %d %s", res.status, res.body, tt.status, tt.code)
			}
			e := res.json(t)["error"].(map[string]any)
			if msg, _ := e["message"].(string); msg == "" {
				t.Fatalf("error without a message: %.300s", res.body)
			}
			for k, want := range tt.fields {
				if !reflect.DeepEqual(e[k], want) {
					t.Errorf("error field %s = %v, want %v (in %.300s)", k, e[k], want, res.body)
				}
			}
			if cur := h.current(t); cur.Number != 1 || len(cur.Flags) != 0 {
				t.Fatalf("a refused import made revision %d with %d flags", cur.Number, len(cur.Flags))
			}
			after := h.audit(t)
			grew := len(after) - len(before)
			switch {
			case tt.audited && grew != 1:
				t.Fatalf("audit grew by %d entries, want 1", grew)
			case !tt.audited && grew != 0:
				t.Fatalf("a refused dry run was audited: %+v", after[0])
			case tt.audited && (after[0].Outcome != store.OutcomeRejected || after[0].Action != "import_flags" ||
				!strings.HasPrefix(after[0].Why, tt.code+": ") || after[0].RequestID != res.header.Get(headerRequestID)):
				t.Fatalf("audit entry %+v, want a rejected import", after[0])
			}
		})
	}
}

// TestImportBodyLimit: the import route accepts a body far over the
// server's general limit, up to its own, and refuses one over it.
func TestImportBodyLimit(t *testing.T) {
	h := newHarness(t, func(c *testConfig) { c.MaxBodyBytes = 4096 })
	ld := readImporterTestdata(t, "launchdarkly.json")
	big := importBody(t, importer.FormatLaunchDarkly, ld+strings.Repeat("\n", 64<<10), "production", true)
	if res := h.do(t, call{method: "POST", path: "/v1/admin/import", token: adminToken, body: big}); res.status != http.StatusOK {
		t.Fatalf("a %d-byte import = %d %.300s", len(big), res.status, res.body)
	}
	// The evaluation routes keep the general limit.
	huge := `{"context": {"pad": "` + strings.Repeat("x", 8192) + `"}}`
	if res := h.do(t, call{method: "POST", path: "/ofrep/v1/evaluate/flags/EXAM_MODE", body: huge}); res.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("an oversized evaluation = %d %.300s", res.status, res.body)
	}
	// Past the import route's own limit the body is refused, and audited.
	before := h.audit(t)
	over := importBody(t, importer.FormatFlagd, strings.Repeat("x", importBodyBytes), "", false)
	res := h.do(t, call{method: "POST", path: "/v1/admin/import", token: adminToken, body: over})
	if res.status != http.StatusRequestEntityTooLarge || res.errorCode(t) != "BODY_TOO_LARGE" ||
		res.json(t)["error"].(map[string]any)["max_body_bytes"] != float64(importBodyBytes) {
		t.Fatalf("a %d-byte import = %d %.300s", len(over), res.status, res.body)
	}
	if after := h.audit(t); len(after) != len(before)+1 || after[0].Outcome != store.OutcomeRejected {
		t.Fatalf("the oversized import was not audited")
	}
}

func TestExport(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/v1/admin/export", "/v1/admin/export?format=flagd"} {
		for _, token := range []string{adminToken, viewerToken} {
			res := h.do(t, call{method: "GET", path: path, token: token})
			if res.status != http.StatusOK || res.header.Get("ETag") != `"1"` || !strings.HasPrefix(res.header.Get("Content-Type"), "application/json") {
				t.Fatalf("GET %s = %d %v %s", path, res.status, res.header, res.body)
			}
			doc, err := evaluator.ParseDocument(res.body)
			if err != nil {
				t.Fatalf("the export is not a flagd document: %v", err)
			}
			if doc.Schema != switchyard.FlagdSchema || doc.Flags["SYSTEM_MODE"].Variants["demo"] != "demo" {
				t.Fatalf("export %s", res.body)
			}
		}
	}
	res := h.do(t, call{method: "GET", path: "/v1/admin/export?format=yaml", token: viewerToken, breaksSpec: true})
	if res.status != http.StatusBadRequest || res.errorCode(t) != "INVALID_REQUEST" {
		t.Fatalf("format=yaml = %d %s", res.status, res.body)
	}
	if res := h.do(t, call{method: "GET", path: "/v1/admin/export"}); res.status != http.StatusUnauthorized {
		t.Fatalf("export without a token = %d", res.status)
	}
}

// TestImportDuringAdminFreeze: the freeze refuses an import, audited, like
// every change; a dry run, which changes nothing, still answers.
func TestImportDuringAdminFreeze(t *testing.T) {
	h := newHarness(t)
	h.admin(t, "POST", "/v1/admin/runtime/flags", map[string]any{"flag": "ADMIN_FREEZE", "value": true, "phrase": "ENABLE ADMIN FREEZE", "reason": "change freeze"})
	flagd := readImporterTestdata(t, "flagd.json")
	before := h.audit(t)
	res := h.do(t, call{method: "POST", path: "/v1/admin/import", token: adminToken, body: importBody(t, importer.FormatFlagd, flagd, "", false)})
	if res.status != http.StatusLocked || res.errorCode(t) != "ADMIN_FREEZE_ACTIVE" {
		t.Fatalf("import during the freeze = %d %s", res.status, res.body)
	}
	if after := h.audit(t); len(after) != len(before)+1 || after[0].Outcome != store.OutcomeRejected || h.current(t).Number != 2 {
		t.Fatalf("the refused import was not audited, or changed the revision")
	}
	res = h.do(t, call{method: "POST", path: "/v1/admin/import", token: adminToken, body: importBody(t, importer.FormatFlagd, flagd, "", true)})
	if res.status != http.StatusOK || res.json(t)["dry_run"] != true {
		t.Fatalf("dry run during the freeze = %d %s", res.status, res.body)
	}
}

// TestImportSkipInvalid: a flagd file with a broken flag is refused whole,
// unless skip_invalid asks to import the rest, which reports what it left
// out and why.
func TestImportSkipInvalid(t *testing.T) {
	h := newHarness(t)
	content := `{"flags": {"good": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
		"typed": {"state": "ENABLED", "variants": {"a": true}, "defaultVariant": 3},
		"rule": {"state": "ENABLED", "variants": {"a": true}, "defaultVariant": "a", "targeting": {"no_such_op": [1]}}}}`
	send := func(skip bool) response {
		return h.do(t, call{method: "POST", path: "/v1/admin/import", token: adminToken, body: mustJSON(t, map[string]any{
			"format": "flagd", "content": content, "skip_invalid": skip, "phrase": "IMPORT FLAGS", "reason": "from flagd"})})
	}
	if res := send(false); res.status != http.StatusBadRequest || res.errorCode(t) != "INVALID_REQUEST" || h.current(t).Number != 1 {
		t.Fatalf("a file with broken flags = %d %s, want 400 and nothing stored", res.status, res.body)
	}
	h.clock.pause()
	res := send(true)
	if res.status != http.StatusOK {
		t.Fatalf("skip_invalid = %d %s", res.status, res.body)
	}
	out := res.json(t)
	if imported := out["imported"].([]any); len(imported) != 1 || imported[0] != "good" {
		t.Fatalf("imported %v, want good alone", imported)
	}
	skipped := map[string]string{}
	for _, n := range out["report"].([]any) {
		note := n.(map[string]any)
		skipped[note["flag"].(string)] = note["message"].(string)
	}
	if !strings.HasPrefix(skipped["typed"], "not imported: ") || !strings.Contains(skipped["rule"], "no_such_op") {
		t.Fatalf("report %v, want both broken flags with why", skipped)
	}
	if got := h.evaluate(t, "good", nil); got["value"] != true {
		t.Fatalf("good = %v", got)
	}
}
