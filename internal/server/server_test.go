package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard"
)

func TestRequestID(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		incoming string
		kept     bool
	}{
		{"trace-42:a.b_c", true},
		{"", false},
		{"has space", false},
		{strings.Repeat("x", 129), false},
		{"semi;colon", false},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		res := h.do(t, call{method: "GET", path: "/healthz", header: map[string]string{"X-Request-Id": tt.incoming}})
		id := res.header.Get(headerRequestID)
		if tt.kept != (id == tt.incoming) || !saneRequestID(id) || seen[id] {
			t.Fatalf("incoming %q: answered %q (kept %v)", tt.incoming, id, tt.kept)
		}
		seen[id] = true
	}
}

func TestHealth(t *testing.T) {
	h := newHarness(t)
	if res := h.do(t, call{method: "GET", path: "/healthz"}); res.status != http.StatusOK || res.json(t)["status"] != "ok" {
		t.Fatalf("healthz = %d %s", res.status, res.body)
	}
	ready := h.do(t, call{method: "GET", path: "/readyz"})
	if body := ready.json(t); ready.status != http.StatusOK || body["status"] != "ready" || body["revision"] != float64(1) {
		t.Fatalf("readyz = %d %s", ready.status, ready.body)
	}
	h.store.down.Store(true)
	degraded := h.do(t, call{method: "GET", path: "/readyz"})
	if body := degraded.json(t); degraded.status != http.StatusServiceUnavailable || body["status"] != "degraded" ||
		!strings.Contains(body["reason"].(string), "the store does not answer") {
		t.Fatalf("readyz with the store down = %d %s", degraded.status, degraded.body)
	}
	// Liveness does not depend on the store.
	if res := h.do(t, call{method: "GET", path: "/healthz"}); res.status != http.StatusOK {
		t.Fatalf("healthz with the store down = %d", res.status)
	}
}

func TestStoreDownForAdmin(t *testing.T) {
	h := newHarness(t)
	h.store.down.Store(true)
	res := h.do(t, call{method: "GET", path: "/v1/admin/runtime/status", token: viewerToken})
	if res.status != http.StatusServiceUnavailable || res.errorCode(t) != "UNAVAILABLE" {
		t.Fatalf("status with the store down = %d %s, want 503 UNAVAILABLE", res.status, res.body)
	}
	res = h.do(t, call{method: "POST", path: "/v1/sessions", body: `{"session_id":"s"}`})
	if res.status != http.StatusServiceUnavailable || res.errorCode(t) != "UNAVAILABLE" {
		t.Fatalf("create session with the store down = %d %s, want 503 UNAVAILABLE", res.status, res.body)
	}
	// An evaluation never fails because the store did: a new session is
	// pinned here, to the revision served, and its results say so.
	res = h.do(t, call{method: "POST", path: "/ofrep/v1/evaluate/flags/EXAM_MODE", body: `{"context":{"sessionId":"new"}}`})
	got := res.json(t)
	md, _ := got["metadata"].(map[string]any)
	if res.status != http.StatusOK || got["value"] != false || got["reason"] != "STALE" || md["pin"] != "local" ||
		md["pinned"] != true || md["revision"] != float64(1) {
		t.Fatalf("pinned evaluation with the store down = %d %s, want 200, STALE, pinned here to revision 1", res.status, res.body)
	}
}

func TestPanicIsAnswered(t *testing.T) {
	h := newHarness(t)
	h.store.panics.Store(true)
	res := h.do(t, call{method: "GET", path: "/v1/admin/runtime/status", token: adminToken})
	e := res.json(t)["error"].(map[string]any)
	if res.status != http.StatusInternalServerError || e["code"] != "INTERNAL" || e["request_id"] != res.header.Get(headerRequestID) {
		t.Fatalf("panicking handler = %d %s, want 500 INTERNAL with the request id", res.status, res.body)
	}
	if strings.Contains(string(res.body), "store bug") {
		t.Fatal("the panic value leaked into the answer")
	}
	if !strings.Contains(h.logs.String(), "store bug") {
		t.Fatal("the panic was not logged")
	}
	h.store.panics.Store(false)
	if res := h.do(t, call{method: "GET", path: "/v1/admin/runtime/status", token: adminToken}); res.status != http.StatusOK {
		t.Fatalf("after the panic: %d %s", res.status, res.body)
	}
}

func TestStatusFor(t *testing.T) {
	// Every code maps to a status, and only INTERNAL to 500.
	codes := []switchyard.Code{
		switchyard.CodeInvalidRequest, switchyard.CodeUnauthorized, switchyard.CodeForbidden, switchyard.CodePhraseMismatch,
		switchyard.CodeReasonRequired, switchyard.CodeUnknownFlag, switchyard.CodeUnknownProfile, switchyard.CodeUnknownModule,
		switchyard.CodeUnknownVersion, switchyard.CodeNotFound, switchyard.CodeRevisionConflict, switchyard.CodeAdminFreezeActive,
		switchyard.CodeUnavailable, switchyard.CodeIdempotencyKeyReused, switchyard.CodeOutcomeUnknown,
		switchyard.CodeLiveSwitchDisabled, switchyard.CodeMethodNotAllowed, switchyard.CodeBodyTooLarge, switchyard.CodeUnsupportedMediaType,
		switchyard.CodeRateLimited, switchyard.CodeSessionLimit,
	}
	want := []int{400, 401, 403, 400, 400, 400, 400, 400, 400, 404, 412, 423, 503, 422, 504, 403, 405, 413, 415, 429, 429}
	for i, c := range codes {
		if got := statusFor(c); got != want[i] {
			t.Errorf("statusFor(%s) = %d, want %d", c, got, want[i])
		}
	}
	if got := statusFor(switchyard.CodeInternal); got != 500 {
		t.Errorf("statusFor(INTERNAL) = %d", got)
	}
}
