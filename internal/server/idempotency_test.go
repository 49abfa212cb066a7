package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/importer"
	"github.com/switchyard-dev/switchyard/store"
)

// Every change route takes an Idempotency-Key: the request sent again with
// it, even with an If-Match that is stale by then, applies nothing and is
// answered as the first was; the key with another request is refused with
// 422 and applies nothing either.
func TestIdempotencyKey(t *testing.T) {
	for _, tt := range mutations() {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if tt.setup != nil {
				tt.setup(t, h)
			}
			before := h.current(t).Number
			send := func(requestID string, body map[string]any) response {
				return h.do(t, call{method: tt.method, path: tt.path, body: mustJSON(t, body), token: adminToken,
					header: map[string]string{"Idempotency-Key": "key-" + strings.ReplaceAll(tt.name, " ", "-"),
						"If-Match": `"` + itoa(before) + `"`, "X-Request-Id": requestID}})
			}
			first := send("req-first", tt.body)
			if first.status != http.StatusOK {
				t.Fatalf("first = %d %s", first.status, first.body)
			}
			entries := len(h.audit(t))
			again := send("req-again", tt.body)
			if again.status != http.StatusOK || string(again.body) != string(first.body) ||
				again.header.Get("ETag") != first.header.Get("ETag") {
				t.Fatalf("sent again = %d %s (ETag %s), want the first answer %s (ETag %s)",
					again.status, again.body, again.header.Get("ETag"), first.body, first.header.Get("ETag"))
			}
			if cur := h.current(t).Number; cur != before+1 || len(h.audit(t)) != entries {
				t.Fatalf("after sending again: revision %d and %d audit entries, want %d and %d: nothing applied twice",
					cur, len(h.audit(t)), before+1, entries)
			}

			other := map[string]any{}
			for k, v := range tt.body {
				other[k] = v
			}
			other["reason"] = "another request"
			reused := send("req-other", other)
			if reused.status != http.StatusUnprocessableEntity || reused.errorCode(t) != "IDEMPOTENCY_KEY_REUSED" {
				t.Fatalf("the key with another request = %d %s, want 422 IDEMPOTENCY_KEY_REUSED", reused.status, reused.body)
			}
			if cur := h.current(t).Number; cur != before+1 {
				t.Fatalf("a reused key applied a change: revision %d", cur)
			}
			if e := h.audit(t)[0]; e.Outcome != store.OutcomeRejected || e.RequestID != "req-other" ||
				!strings.HasPrefix(e.Why, "IDEMPOTENCY_KEY_REUSED") {
				t.Fatalf("the refused key is audited as %+v", e)
			}
		})
	}
}

// An import sent again with its key is answered with the first import's
// result, report and imported keys included, and stores nothing twice.
func TestIdempotentImport(t *testing.T) {
	h := newHarness(t)
	body := mustJSON(t, map[string]any{"format": importer.FormatFlagd, "phrase": "IMPORT FLAGS", "reason": "r",
		"content": `{"flags": {"new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"}}}`})
	send := func() response {
		return h.do(t, call{method: "POST", path: "/v1/admin/import", body: body, token: adminToken,
			header: map[string]string{"Idempotency-Key": "import-1"}})
	}
	first, again := send(), send()
	if first.status != http.StatusOK || again.status != http.StatusOK || string(again.body) != string(first.body) {
		t.Fatalf("import = %d %s, sent again = %d %s; want the same answer", first.status, first.body, again.status, again.body)
	}
	if cur := h.current(t).Number; cur != 2 || len(h.audit(t)) != 1 {
		t.Fatalf("revision %d with %d audit entries, want 2 with 1", cur, len(h.audit(t)))
	}
}

// An Idempotency-Key is held to the request ID's bounds; a key out of them
// is refused, audited, and applies nothing.
func TestIdempotencyKeyBounds(t *testing.T) {
	for _, key := range []string{strings.Repeat("k", 129), "key with spaces", "ключ", "a/b"} {
		h := newHarness(t)
		res := h.do(t, call{method: "POST", path: "/v1/admin/runtime/flags", token: adminToken, breaksSpec: true,
			body:   `{"flag": "EXAM_MODE", "value": true, "phrase": "ENABLE EXAM MODE", "reason": "r"}`,
			header: map[string]string{"Idempotency-Key": key}})
		if res.status != http.StatusBadRequest || res.errorCode(t) != "INVALID_REQUEST" ||
			res.json(t)["error"].(map[string]any)["field"] != "Idempotency-Key" {
			t.Fatalf("key %q = %d %s, want 400 naming Idempotency-Key", key, res.status, res.body)
		}
		if h.current(t).Number != 1 || h.audit(t)[0].Outcome != store.OutcomeRejected {
			t.Fatalf("key %q: a change was applied, or the refusal not audited", key)
		}
	}
}

// A change the store could not apply answers 503 with Retry-After: sent
// again with the same key once the store is back, it applies once.
func TestNotAppliedRetryAfter(t *testing.T) {
	h := newHarness(t)
	change := call{method: "POST", path: "/v1/admin/runtime/flags", token: adminToken,
		body:   `{"flag": "EXAM_MODE", "value": true, "phrase": "ENABLE EXAM MODE", "reason": "r"}`,
		header: map[string]string{"Idempotency-Key": "exam-on"}}
	h.store.down.Store(true)
	res := h.do(t, change)
	if res.status != http.StatusServiceUnavailable || res.errorCode(t) != "UNAVAILABLE" || res.header.Get("Retry-After") == "" {
		t.Fatalf("change with the store down = %d %s (Retry-After %q), want 503 with Retry-After", res.status, res.body, res.header.Get("Retry-After"))
	}
	h.store.down.Store(false)
	for range 2 {
		if res := h.do(t, change); res.status != http.StatusOK || res.json(t)["audit_seq"] != float64(1) {
			t.Fatalf("sent again = %d %s, want 200 as audit entry 1", res.status, res.body)
		}
	}
	if h.current(t).Number != 2 {
		t.Fatalf("revision %d, want 2: applied once", h.current(t).Number)
	}
	// Each answer of the change is logged with its revision and key, so
	// the service log names the revision whichever answer got through.
	if n := strings.Count(h.logs.String(), `msg="runtime changed" action=set_flag target=EXAM_MODE`); n != 2 ||
		!strings.Contains(h.logs.String(), "revision=2 audit_seq=1") || !strings.Contains(h.logs.String(), "idempotency_key=exam-on") {
		t.Fatalf("service log has %d runtime changes, want the revision logged for both answers:\n%s", n, h.logs.String())
	}
}
