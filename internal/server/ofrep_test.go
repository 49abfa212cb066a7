package server

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/store"
)

// importFlags adds testdata/flags.json's general flags to the store, as an
// operator's import would, and returns the new revision number.
func (h *harness) importFlags(t testing.TB) int64 {
	t.Helper()
	data, err := os.ReadFile("testdata/flags.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc switchyard.Document
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	rev, _, err := h.store.Apply(context.Background(), store.Change{
		Attempt:  store.Attempt{Actor: "test", Role: "admin", Reason: "fixtures"},
		Mutation: switchyard.ImportFlags(doc),
	})
	if err != nil {
		t.Fatal(err)
	}
	return rev.Number
}

func TestOFREPEvaluateFlag(t *testing.T) {
	h := newHarness(t)
	rev := h.importFlags(t)
	// The import was made behind the server's back; move past the cache TTL
	// so the server reads it.
	h.clock.advance(control.DefaultCacheTTL)
	// Flag-set metadata is merged under every flag's own.
	live := map[string]any{"pinned": false, "revision": float64(rev), "flagSetId": "tests"}
	tests := []struct {
		key  string
		want map[string]any
	}{
		{"EXAM_MODE", map[string]any{"key": "EXAM_MODE", "value": false, "reason": "STATIC", "variant": "off", "metadata": live}},
		{"SYSTEM_MODE", map[string]any{"key": "SYSTEM_MODE", "value": "demo", "reason": "STATIC", "variant": "demo", "metadata": live}},
		{"runtime.profile", map[string]any{"key": "runtime.profile", "value": "primary", "reason": "STATIC", "variant": "primary", "metadata": live}},
		{"module.mastery", map[string]any{"key": "module.mastery", "value": "v1", "reason": "STATIC", "variant": "v1", "metadata": live}},
		{"module.neo4j.enabled", map[string]any{"key": "module.neo4j.enabled", "value": true, "reason": "STATIC", "variant": "on", "metadata": live}},
		{"new-checkout", map[string]any{"key": "new-checkout", "value": true, "reason": "STATIC", "variant": "on",
			"metadata": map[string]any{"pinned": false, "revision": float64(rev), "owner": "payments", "flagSetId": "tests"}}},
		{"banner-text", map[string]any{"key": "banner-text", "value": `Welcome <back> & "enjoy"`, "reason": "STATIC", "variant": "welcome",
			"metadata": map[string]any{"pinned": false, "revision": float64(rev), "flagSetId": "tests"}}},
		{"max-items", map[string]any{"key": "max-items", "value": 250.5, "reason": "STATIC", "variant": "large",
			"metadata": map[string]any{"pinned": false, "revision": float64(rev), "flagSetId": "tests"}}},
		{"theme", map[string]any{"key": "theme", "value": map[string]any{"bg": "#000", "fg": "#fff", "contrast": float64(7)},
			"reason": "STATIC", "variant": "dark", "metadata": map[string]any{"pinned": false, "revision": float64(rev), "flagSetId": "tests"}}},
		// A disabled flag and a flag without a default variant answer
		// without a value: the client uses its code default.
		{"legacy-export", map[string]any{"key": "legacy-export", "reason": "DISABLED",
			"metadata": map[string]any{"pinned": false, "revision": float64(rev), "flagSetId": "tests"}}},
		{"no-default", map[string]any{"key": "no-default", "reason": "DEFAULT",
			"metadata": map[string]any{"pinned": false, "revision": float64(rev), "flagSetId": "tests"}}},
		// A slash in a key travels escaped.
		{"team%2Fsearch-v2", map[string]any{"key": "team/search-v2", "value": true, "reason": "STATIC", "variant": "on",
			"metadata": map[string]any{"pinned": false, "revision": float64(rev), "flagSetId": "tests"}}},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			got := h.evaluate(t, tt.key, map[string]any{"targetingKey": "user-1"})
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("evaluate %s =\n%v\nwant\n%v", tt.key, got, tt.want)
			}
		})
	}
}

func TestOFREPEvaluateFlagErrors(t *testing.T) {
	h := newHarness(t, func(c *testConfig) { c.MaxBodyBytes = 256 })
	tests := []struct {
		name       string
		key        string
		body       string
		breaksSpec bool
		status     int
		code       string
		details    string
	}{
		{"unknown flag", "nope", `{"context":{}}`, false, http.StatusNotFound, "FLAG_NOT_FOUND", `flag "nope" not found`},
		{"malformed JSON", "EXAM_MODE", `{"context":`, true, http.StatusBadRequest, "PARSE_ERROR", "not valid JSON"},
		{"empty body", "EXAM_MODE", ``, true, http.StatusBadRequest, "PARSE_ERROR", "empty"},
		{"body not an object", "EXAM_MODE", `[1,2]`, true, http.StatusBadRequest, "PARSE_ERROR", "must be a JSON object"},
		{"context not an object", "EXAM_MODE", `{"context":"user-1"}`, true, http.StatusBadRequest, "INVALID_CONTEXT", "context must be an object"},
		{"context an array", "EXAM_MODE", `{"context":[]}`, true, http.StatusBadRequest, "INVALID_CONTEXT", "context must be an object"},
		{"session not a string", "EXAM_MODE", `{"context":{"sessionId":42}}`, true, http.StatusBadRequest, "INVALID_CONTEXT", "sessionId must be a string"},
		{"session with spaces", "EXAM_MODE", `{"context":{"sessionId":"a b"}}`, false, http.StatusBadRequest, "INVALID_CONTEXT", "spaces"},
		{"oversized body", "EXAM_MODE", `{"context":{"pad":"` + strings.Repeat("x", 300) + `"}}`, false, http.StatusRequestEntityTooLarge, "PARSE_ERROR", "limit of 256 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.do(t, call{method: "POST", path: "/ofrep/v1/evaluate/flags/" + tt.key, body: tt.body, breaksSpec: tt.breaksSpec})
			if res.status != tt.status {
				t.Fatalf("status = %d %s, want %d", res.status, res.body, tt.status)
			}
			got := res.json(t)
			if got["key"] != tt.key || got["errorCode"] != tt.code || !strings.Contains(got["errorDetails"].(string), tt.details) {
				t.Fatalf("body = %v, want key %q, errorCode %s and details containing %q", got, tt.key, tt.code, tt.details)
			}
		})
	}
	// The server keeps serving after every refusal.
	if got := h.evaluate(t, "EXAM_MODE", nil); got["value"] != false {
		t.Fatalf("after the refusals EXAM_MODE = %v", got)
	}
}

func TestOFREPDisabledModule(t *testing.T) {
	h := newHarness(t)
	h.admin(t, "POST", "/v1/admin/runtime/override", map[string]any{
		"module": "neo4j", "is_enabled": false, "phrase": "DISABLE MODULE neo4j", "reason": "graph store incident"})
	got := h.evaluate(t, "module.neo4j", nil)
	if _, has := got["value"]; has || got["reason"] != "DISABLED" {
		t.Fatalf("module.neo4j = %v, want reason DISABLED and no value", got)
	}
	if got := h.evaluate(t, "module.neo4j.enabled", nil); got["value"] != false {
		t.Fatalf("module.neo4j.enabled = %v, want false", got)
	}
}

func TestOFREPBulk(t *testing.T) {
	h := newHarness(t)
	bulk := func(t *testing.T, header map[string]string) response {
		t.Helper()
		return h.do(t, call{method: "POST", path: "/ofrep/v1/evaluate/flags", body: `{"context":{"targetingKey":"u"}}`, header: header})
	}
	first := bulk(t, nil)
	if first.status != http.StatusOK {
		t.Fatalf("bulk = %d %s", first.status, first.body)
	}
	body := first.json(t)
	flags := body["flags"].([]any)
	byKey := map[string]map[string]any{}
	for _, f := range flags {
		item := f.(map[string]any)
		byKey[item["key"].(string)] = item
	}
	cur := h.current(t)
	want := len(evaluator.RuntimeFlags(cur, "demo"))
	if len(flags) != want {
		t.Fatalf("bulk has %d flags, want %d", len(flags), want)
	}
	if byKey["EXAM_MODE"]["value"] != false || byKey["module.search"]["value"] != "v1" {
		t.Fatalf("bulk items = %v", byKey)
	}
	if md := body["metadata"].(map[string]any); md["revision"] != float64(1) || md["pinned"] != false {
		t.Fatalf("bulk metadata = %v", md)
	}
	etag := first.header.Get("ETag")
	if etag == "" {
		t.Fatal("bulk answer has no ETag")
	}

	if !strings.HasPrefix(etag, `W/"`) {
		t.Fatalf("bulk ETag %s, want a weak one", etag)
	}
	for _, inm := range []string{etag, strings.TrimPrefix(etag, "W/"), `"other", ` + etag, "*"} {
		if res := bulk(t, map[string]string{"If-None-Match": inm}); res.status != http.StatusNotModified || len(res.body) != 0 {
			t.Fatalf("If-None-Match %s = %d %q, want 304 without body", inm, res.status, res.body)
		}
	}
	if again := bulk(t, nil); again.header.Get("ETag") != etag {
		t.Fatalf("the same answer has ETag %s, then %s", etag, again.header.Get("ETag"))
	}
	// The ETag follows the answer: another user gets the same answer (no
	// flag targets them), a pinned session a different one.
	same := h.do(t, call{method: "POST", path: "/ofrep/v1/evaluate/flags", body: `{"context":{"targetingKey":"v"}}`,
		header: map[string]string{"If-None-Match": etag}})
	if same.status != http.StatusNotModified {
		t.Fatalf("another user with the same answer got %d, want 304", same.status)
	}
	pinned := h.do(t, call{method: "POST", path: "/ofrep/v1/evaluate/flags", body: `{"context":{"targetingKey":"u","sessionId":"s-bulk"}}`,
		header: map[string]string{"If-None-Match": etag}})
	if pinned.status != http.StatusOK || pinned.header.Get("ETag") == etag || pinned.json(t)["metadata"].(map[string]any)["pinned"] != true {
		t.Fatalf("a pinned session answered %d %s with ETag %s, want 200 pinned with a new ETag", pinned.status, pinned.body, pinned.header.Get("ETag"))
	}

	h.admin(t, "POST", "/v1/admin/system/exam-mode", map[string]any{"enabled": true, "phrase": "ENABLE EXAM MODE", "reason": "exam at 10"})
	changed := bulk(t, map[string]string{"If-None-Match": etag})
	if changed.status != http.StatusOK || changed.header.Get("ETag") == etag {
		t.Fatalf("after a change: %d with ETag %s, want 200 with a new ETag", changed.status, changed.header.Get("ETag"))
	}
	for _, f := range changed.json(t)["flags"].([]any) {
		if item := f.(map[string]any); item["key"] == "EXAM_MODE" && item["value"] != true {
			t.Fatalf("EXAM_MODE after the change = %v", item)
		}
	}
}

func TestOFREPBulkErrors(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name string
		body string
		code string
	}{
		{"malformed JSON", `{"context":{`, "PARSE_ERROR"},
		{"context not an object", `{"context":true}`, "INVALID_CONTEXT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.do(t, call{method: "POST", path: "/ofrep/v1/evaluate/flags", body: tt.body, breaksSpec: true})
			if res.status != http.StatusBadRequest || res.json(t)["errorCode"] != tt.code {
				t.Fatalf("bulk %s = %d %s, want 400 %s", tt.body, res.status, res.body, tt.code)
			}
			if _, has := res.json(t)["key"]; has {
				t.Fatalf("bulk failure %s names a key", res.body)
			}
		})
	}
}

func TestOFREPGeneralFlagsInBulk(t *testing.T) {
	h := newHarness(t)
	h.importFlags(t)
	h.clock.advance(control.DefaultCacheTTL)
	res := h.do(t, call{method: "POST", path: "/ofrep/v1/evaluate/flags", body: `{"context":{}}`})
	items := map[string]map[string]any{}
	for _, f := range res.json(t)["flags"].([]any) {
		item := f.(map[string]any)
		items[item["key"].(string)] = item
	}
	if items["max-items"]["value"] != 250.5 || items["team/search-v2"]["value"] != true {
		t.Fatalf("general flags in bulk = %v", items)
	}
	if _, has := items["legacy-export"]["value"]; has || items["legacy-export"]["reason"] != "DISABLED" {
		t.Fatalf("disabled flag in bulk = %v", items["legacy-export"])
	}
}
