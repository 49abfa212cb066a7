package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
)

// everyMode runs fn against a demo server and a production one, whose
// store is Postgres, so a test shows both answer and record alike.
func everyMode(t *testing.T, fn func(t *testing.T, h *harness)) {
	t.Run("demo", func(t *testing.T) { fn(t, newHarness(t)) })
	t.Run("production", func(t *testing.T) { fn(t, newPostgresHarness(t)) })
}

// A viewer sending refused changes with a megabyte of phrase each makes a
// bounded number of bounded rows: the first RefusalBurst refusals are
// recorded with the phrase cut, the rest answered 429 with Retry-After,
// counted, and neither recorded nor logged one by one. A page of the log
// then weighs kilobytes, not the megabytes sent.
func TestRefusedFloodIsBounded(t *testing.T) {
	everyMode(t, func(t *testing.T, h *harness) {
		phrase := strings.Repeat("A", 1<<20-100)
		body := `{"flag":"EXAM_MODE","value":true,"phrase":"` + phrase + `","reason":"r"}`
		for i := range 2 * control.RefusalBurst {
			res := h.do(t, call{method: "POST", path: "/v1/admin/runtime/flags", token: viewerToken, body: body, breaksSpec: true})
			switch {
			case i < control.RefusalBurst && res.status == http.StatusForbidden:
			case i >= control.RefusalBurst && res.status == http.StatusTooManyRequests && res.errorCode(t) == "RATE_LIMITED" &&
				res.header.Get("Retry-After") == "30":
			default:
				t.Fatalf("attempt %d = %d %.300s (Retry-After %q)", i+1, res.status, res.body, res.header.Get("Retry-After"))
			}
		}
		entries := h.audit(t)
		if len(entries) != control.RefusalBurst {
			t.Fatalf("the flood left %d audit entries, want %d", len(entries), control.RefusalBurst)
		}
		for _, e := range entries {
			if e.Phrase != switchyard.AuditText(phrase, switchyard.MaxPhraseLength) ||
				!strings.HasSuffix(e.Phrase, "[cut: "+strconv.Itoa(len(phrase))+" bytes]") || e.Size() > 2<<10 {
				t.Fatalf("recorded phrase %q (entry of %d bytes), want it cut with its size", e.Phrase, e.Size())
			}
		}
		page := h.do(t, call{method: "GET", path: "/v1/admin/audit?limit=50", token: viewerToken})
		if page.status != http.StatusOK || len(page.body) > 32<<10 {
			t.Fatalf("a page of the log = %d, %d bytes", page.status, len(page.body))
		}
		if n := strings.Count(h.logs.String(), "rate-limited"); n != 1 {
			t.Fatalf("the log says %d times that requests are rate-limited, want once:\n%s", n, h.logs)
		}
		status := h.do(t, call{method: "GET", path: "/v1/admin/runtime/status", token: adminToken})
		if got := status.json(t)["rate_limited"]; got != float64(control.RefusalBurst) {
			t.Fatalf("status rate_limited = %v, want %d", got, control.RefusalBurst)
		}
		h.admin(t, "POST", "/v1/admin/system/exam-mode", map[string]any{"enabled": true, "phrase": "ENABLE EXAM MODE", "reason": "an admin is not held back"})
	})
}

// Requests without a valid token are logged, not audited; past a client
// address's allowance they are answered 429 and not logged either. A
// valid token from that address is still served.
func TestUnauthenticatedFloodIsBounded(t *testing.T) {
	h := newHarness(t)
	for i := range 2 * control.RefusalBurst {
		res := h.do(t, call{method: "GET", path: "/v1/admin/audit", header: map[string]string{"Authorization": "Bearer guess-" + strconv.Itoa(i)}})
		switch {
		case i < control.RefusalBurst && res.status == http.StatusUnauthorized:
		case i >= control.RefusalBurst && res.status == http.StatusTooManyRequests && res.header.Get("Retry-After") == "30":
		default:
			t.Fatalf("attempt %d = %d %s", i+1, res.status, res.body)
		}
	}
	if n := strings.Count(h.logs.String(), "refused credentials"); n != control.RefusalBurst {
		t.Fatalf("%d refused credentials logged, want %d", n, control.RefusalBurst)
	}
	if res := h.do(t, call{method: "GET", path: "/v1/admin/audit", token: viewerToken}); res.status != http.StatusOK {
		t.Fatalf("a valid token from the same address = %d %s", res.status, res.body)
	}
}

// A page of the audit log stops before the entry that would take it past
// store.AuditPageBytes and says so; following next_before reads every
// entry. Rows written before text was bounded are what makes pages heavy.
func TestAuditPagesAreBoundedInBytes(t *testing.T) {
	h := newHarness(t)
	const rows = 20
	for range rows {
		h.clock.pause()
		h.do(t, call{method: "POST", path: "/v1/admin/runtime/profile", token: viewerToken,
			body: `{"profile_name":"fallback","phrase":"SET PROFILE FALLBACK","reason":"r"}`})
	}
	for seq := int64(1); seq <= rows; seq++ {
		h.store.Store.(*memory.Store).Tamper(seq, func(e *store.AuditEntry) { e.Phrase = strings.Repeat("A", 300<<10) })
	}
	var seqs []int64
	query := "?limit=50"
	for {
		res := h.do(t, call{method: "GET", path: "/v1/admin/audit" + query, token: viewerToken})
		if res.status != http.StatusOK || len(res.body) > store.AuditPageBytes+16<<10 {
			t.Fatalf("GET audit%s = %d, %d bytes", query, res.status, len(res.body))
		}
		var page auditPage
		if err := json.Unmarshal(res.body, &page); err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Entries {
			seqs = append(seqs, e.Seq)
		}
		if page.Truncated != (page.NextBefore != 0) {
			t.Fatalf("page of %d entries: truncated %v, next_before %d", len(page.Entries), page.Truncated, page.NextBefore)
		}
		if page.NextBefore == 0 {
			break
		}
		query = "?limit=50&before=" + strconv.FormatInt(page.NextBefore, 10)
	}
	if len(seqs) != rows || seqs[0] != rows || seqs[rows-1] != 1 {
		t.Fatalf("pages held %v, want %d down to 1", seqs, rows)
	}
}

// Text no store keeps alike (a NUL, invalid UTF-8) is refused before any
// store sees it, the same way in every mode, and the refusal is recorded
// with the text escaped: nobody can keep a refusal out of the log.
func TestTextRefusedAlikeInEveryMode(t *testing.T) {
	tests := []struct {
		name   string
		req    call
		status int
		code   string
		field  string
		// recorded is the audited field, as it must be kept; nil when
		// the request is not a change.
		recorded func(store.AuditEntry) (got, want string)
	}{
		{"a viewer's phrase with a NUL", call{method: "POST", path: "/v1/admin/runtime/flags", token: viewerToken,
			body: `{"flag":"EXAM_MODE","value":true,"phrase":"ENABLE\u0000EXAM MODE","reason":"r"}`},
			403, "FORBIDDEN", "", func(e store.AuditEntry) (string, string) { return e.Phrase, `"ENABLE\x00EXAM MODE"` }},
		{"an admin's reason with a NUL", call{method: "POST", path: "/v1/admin/runtime/profile", token: adminToken,
			body: `{"profile_name":"fallback","phrase":"SET PROFILE FALLBACK","reason":"incident\u0000"}`},
			400, "INVALID_TEXT", "reason", func(e store.AuditEntry) (string, string) { return e.Reason, `"incident\x00"` }},
		{"a module with a NUL", call{method: "POST", path: "/v1/admin/runtime/override", token: adminToken,
			body: `{"module":"mastery\u0000","version":"v0","phrase":"OVERRIDE MODULE mastery TO v0","reason":"r"}`},
			400, "INVALID_TEXT", "target", func(e store.AuditEntry) (string, string) { return e.Target, `"module:mastery\x00"` }},
		{"a module not UTF-8 in the path", call{method: "DELETE", path: "/v1/admin/runtime/override/m%FF", token: adminToken,
			body: `{"phrase":"CLEAR OVERRIDE m","reason":"r"}`},
			400, "INVALID_TEXT", "target", func(e store.AuditEntry) (string, string) { return e.Target, `"module:m\xff"` }},
		{"a user ID with a NUL", call{method: "POST", path: "/v1/sessions", body: `{"session_id":"s-1","user_id":"u\u0000"}`},
			400, "INVALID_TEXT", "user_id", nil},
		{"a session ID not UTF-8", call{method: "GET", path: "/v1/sessions/s%FF"},
			400, "INVALID_REQUEST", "", nil},
	}
	everyMode(t, func(t *testing.T, h *harness) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := len(h.audit(t))
				res := h.do(t, tt.req)
				if res.status != tt.status || res.errorCode(t) != tt.code {
					t.Fatalf("%s %s = %d %s, want %d %s", tt.req.method, tt.req.path, res.status, res.body, tt.status, tt.code)
				}
				if field := res.json(t)["error"].(map[string]any)["field"]; tt.field != "" && field != tt.field {
					t.Fatalf("error names the field %v, want %s", field, tt.field)
				}
				entries := h.audit(t)
				if tt.recorded == nil {
					if len(entries) != before {
						t.Fatalf("the audit log grew by %d entries, want none", len(entries)-before)
					}
					return
				}
				if len(entries) != before+1 || entries[0].Outcome != store.OutcomeRejected {
					t.Fatalf("the audit log grew by %d entries, want the refusal", len(entries)-before)
				}
				if got, want := tt.recorded(entries[0]); got != want {
					t.Fatalf("recorded %q, want %q", got, want)
				}
			})
		}
		if cur := h.current(t); cur.Number != 1 {
			t.Fatalf("a refused change made revision %d", cur.Number)
		}
		res := h.do(t, call{method: "GET", path: "/v1/admin/audit/verify", token: viewerToken})
		if v := res.json(t); v["ok"] != true {
			t.Fatalf("verify = %v", v)
		}
	})
}

// serveCancelled sends a request, with token when it is set, whose client
// goes away before it is answered: once the store is reached, or before
// the request is sent when reached is nil.
func serveCancelled(h *harness, method, path, token, body string, reached <-chan struct{}) *httptest.ResponseRecorder {
	ctx, cancel := context.WithCancel(context.Background())
	rec := httptest.NewRecorder()
	req := httptest.NewRequestWithContext(ctx, method, "http://switchyard.test"+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if reached == nil {
		cancel()
		h.handler.ServeHTTP(rec, req)
		return rec
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.handler.ServeHTTP(rec, req)
	}()
	<-reached
	cancel()
	<-done
	return rec
}

// A client that goes away is not a store failure: it is answered 499 and
// logged at debug level, never at ERROR as UNAVAILABLE, and it does not
// make the service think the store is down. A refusal still reaches the
// audit log when its client has left.
func TestCancelledRequestsAreNotFailures(t *testing.T) {
	t.Run("a store that never answers", func(t *testing.T) {
		h := newHarness(t)
		h.store.hang.Store(true)
		rec := serveCancelled(h, "POST", "/v1/sessions", "", `{"session_id":"s-gone"}`, h.store.hung)
		if rec.Code != statusClientClosedRequest {
			t.Fatalf("create session = %d %s, want 499", rec.Code, rec.Body)
		}
		if logs := h.logs.String(); strings.Contains(logs, "level=ERROR") || strings.Contains(logs, "level=WARN") {
			t.Fatalf("a client going away was logged as a failure:\n%s", logs)
		}
	})
	t.Run("production", func(t *testing.T) {
		h := newPostgresHarness(t)
		if rec := serveCancelled(h, "POST", "/v1/sessions", "", `{"session_id":"s-gone"}`, nil); rec.Code != statusClientClosedRequest {
			t.Fatalf("create session = %d %s, want 499", rec.Code, rec.Body)
		}
		serveCancelled(h, "POST", "/ofrep/v1/evaluate/flags/EXAM_MODE", "", `{"context":{"sessionId":"s-gone-too"}}`, nil)
		if logs := h.logs.String(); strings.Contains(logs, "level=ERROR") || strings.Contains(logs, "level=WARN") {
			t.Fatalf("a client going away was logged as a failure:\n%s", logs)
		}
		// The store was not taken for down: the next session is pinned in it.
		r := h.evaluate(t, "EXAM_MODE", map[string]any{"sessionId": "s-next"})
		if md := r["metadata"].(map[string]any); md["pinned"] != true || md["pin"] != nil {
			t.Fatalf("the next session's evaluation = %v, want it pinned in the store", r)
		}
		rec := serveCancelled(h, "POST", "/v1/admin/runtime/flags", viewerToken,
			`{"flag":"EXAM_MODE","value":true,"phrase":"ENABLE EXAM MODE","reason":"r"}`, nil)
		if rec.Code != statusClientClosedRequest {
			t.Fatalf("a refused change = %d %s, want 499", rec.Code, rec.Body)
		}
		if entries := h.audit(t); len(entries) != 1 || entries[0].Outcome != store.OutcomeRejected || entries[0].Role != "viewer" {
			t.Fatalf("audit = %+v, want the viewer's refusal", entries)
		}
	})
}
