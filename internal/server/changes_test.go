package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/store"
)

// The second admin's token: the four-eyes approver.
const (
	bobToken = "bob-admin-token-for-tests"
	bobName  = "bob"
)

// fourEyes is a harness whose policy asks another admin to approve every
// change of a system flag or the profile, with bob as that admin.
func fourEyes(t *testing.T) *harness {
	t.Helper()
	return newHarness(t, func(c *testConfig) {
		c.Approvals = control.Policy{"set_flag": {Approvals: 1}, "set_profile": {Approvals: 1}}
		c.Tokens = append(c.Tokens, Token{Operator: switchyard.Operator{Name: bobName, Role: switchyard.RoleAdmin}, Secret: bobToken})
	})
}

// waitChange polls GET /v1/admin/changes/{id} until ok says so, bounded by
// a deadline: the scheduler runs on its own ticker.
func (h *harness) waitChange(t *testing.T, id string, what string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v := h.do(t, call{method: "GET", path: "/v1/admin/changes/" + id, token: viewerToken}).json(t)
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never happened: %v", what, v)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The runbook's scheduled exam over HTTP: exam mode and frozen updates
// from 10:00 to 13:00, proposed by alice, approved by bob; each applies at
// 10:00 and is reverted at 13:00, applications read it over OFREP, and
// the audit chain verifies.
func TestScheduledExamOverHTTP(t *testing.T) {
	h := fourEyes(t)
	start, end := h.clock.now().Add(time.Hour).Format(time.RFC3339), h.clock.now().Add(4*time.Hour).Format(time.RFC3339)
	ids := []string{}
	for _, p := range []map[string]any{
		{"flag": "EXAM_MODE", "value": true, "phrase": "ENABLE EXAM MODE"},
		{"flag": "FREEZE_UPDATES", "value": true, "phrase": "ENABLE FREEZE UPDATES"},
	} {
		p["action"], p["reason"], p["apply_at"], p["revert_at"] = "set_flag", "final exams 10:00-13:00", start, end
		res := h.do(t, call{method: "POST", path: "/v1/admin/changes", body: mustJSON(t, p), token: adminToken})
		v := res.json(t)
		if res.status != http.StatusCreated || v["state"] != "proposed" || res.header.Get("Location") != "/v1/admin/changes/"+itoa(int64(v["id"].(float64))) {
			t.Fatalf("propose = %d %s", res.status, res.body)
		}
		ids = append(ids, itoa(int64(v["id"].(float64))))
	}
	for _, id := range ids {
		v := h.do(t, call{method: "GET", path: "/v1/admin/changes/" + id, token: viewerToken}).json(t)
		if changed := v["diff"].(map[string]any)["changed"].([]any); len(changed) != 1 {
			t.Fatalf("diff of %s = %v", id, v["diff"])
		}
		phrase := map[string]string{"1": "ENABLE EXAM MODE", "2": "ENABLE FREEZE UPDATES"}[id]
		res := h.do(t, call{method: "POST", path: "/v1/admin/changes/" + id + "/approve", token: bobToken,
			body: mustJSON(t, map[string]any{"phrase": phrase, "reason": "second operator"})})
		if res.status != http.StatusOK || res.json(t)["state"] != "approved" {
			t.Fatalf("approve %s = %d %s", id, res.status, res.body)
		}
	}
	st := h.do(t, call{method: "GET", path: "/v1/admin/runtime/status", token: viewerToken}).json(t)
	if scheduled := st["scheduled"].([]any); len(scheduled) != 2 || scheduled[0].(map[string]any)["step"] != "apply" {
		t.Fatalf("status lists %v as scheduled", st["scheduled"])
	}
	if got := h.evaluate(t, "EXAM_MODE", nil); got["value"] != false {
		t.Fatalf("EXAM_MODE before 10:00 = %v", got["value"])
	}

	h.clock.advance(time.Hour)
	for _, id := range ids {
		h.waitChange(t, id, "apply", func(v map[string]any) bool { return v["state"] == "applied" })
	}
	for _, key := range []string{"EXAM_MODE", "FREEZE_UPDATES"} {
		if got := h.evaluate(t, key, nil); got["value"] != true {
			t.Fatalf("%s at 10:00 = %v", key, got["value"])
		}
	}
	h.clock.advance(3 * time.Hour)
	for _, id := range ids {
		h.waitChange(t, id, "revert", func(v map[string]any) bool { return v["revert"] == "reverted" })
	}
	for _, key := range []string{"EXAM_MODE", "FREEZE_UPDATES"} {
		if got := h.evaluate(t, key, nil); got["value"] != false {
			t.Fatalf("%s at 13:00 = %v", key, got["value"])
		}
	}
	list := h.do(t, call{method: "GET", path: "/v1/admin/changes?state=applied", token: viewerToken}).json(t)
	if n := len(list["changes"].([]any)); n != 2 {
		t.Fatalf("%d applied requests listed, want 2", n)
	}
	if v := h.do(t, call{method: "GET", path: "/v1/admin/audit/verify", token: viewerToken}).json(t); v["ok"] != true || v["entries"] != float64(12) {
		t.Fatalf("verify = %v, want ok with 12 entries (2 proposals, 2 approvals, 2 changes and 2 steps to apply, 2 and 2 to revert)", v)
	}
}

// What an operator is refused, with the status and code each answers:
// a direct write the policy asks approval for, self-approval, approval by
// a viewer, a transition the state does not allow, an unknown request.
func TestChangeRequestRefusals(t *testing.T) {
	h := fourEyes(t)
	propose := mustJSON(t, map[string]any{"action": "set_profile", "profile_name": "fallback",
		"phrase": "SET PROFILE FALLBACK", "reason": "v1 misbehaving"})
	if res := h.do(t, call{method: "POST", path: "/v1/admin/changes", body: propose, token: adminToken}); res.status != http.StatusCreated {
		t.Fatalf("propose = %d %s", res.status, res.body)
	}
	approve := mustJSON(t, map[string]any{"phrase": "SET PROFILE FALLBACK", "reason": "ok"})
	tests := []struct {
		name   string
		c      call
		status int
		code   string
	}{
		{"direct write", call{method: "POST", path: "/v1/admin/runtime/profile", token: adminToken,
			body: mustJSON(t, map[string]any{"profile_name": "fallback", "phrase": "SET PROFILE FALLBACK", "reason": "now"})},
			http.StatusForbidden, "APPROVAL_REQUIRED"},
		{"self-approval", call{method: "POST", path: "/v1/admin/changes/1/approve", token: adminToken, body: approve},
			http.StatusForbidden, "FORBIDDEN"},
		{"approval by a viewer", call{method: "POST", path: "/v1/admin/changes/1/approve", token: viewerToken, body: approve},
			http.StatusForbidden, "FORBIDDEN"},
		{"approval with another phrase", call{method: "POST", path: "/v1/admin/changes/1/approve", token: bobToken,
			body: mustJSON(t, map[string]any{"phrase": "SET PROFILE PRIMARY", "reason": "ok"})},
			http.StatusBadRequest, "PHRASE_MISMATCH"},
		{"rejection with a phrase", call{method: "POST", path: "/v1/admin/changes/1/reject", token: bobToken, body: approve, breaksSpec: true},
			http.StatusBadRequest, "INVALID_REQUEST"},
		{"unknown request", call{method: "POST", path: "/v1/admin/changes/7/approve", token: bobToken, body: approve},
			http.StatusNotFound, "NOT_FOUND"},
		{"not a request", call{method: "GET", path: "/v1/admin/changes/seven", token: viewerToken},
			http.StatusNotFound, "NOT_FOUND"},
		{"unknown state", call{method: "GET", path: "/v1/admin/changes?state=done", token: viewerToken, breaksSpec: true},
			http.StatusBadRequest, "INVALID_REQUEST"},
		{"bad time", call{method: "POST", path: "/v1/admin/changes", token: adminToken, breaksSpec: true,
			body: mustJSON(t, map[string]any{"action": "set_profile", "profile_name": "fallback", "phrase": "SET PROFILE FALLBACK",
				"reason": "later", "apply_at": "tomorrow 9am"})},
			http.StatusBadRequest, "INVALID_REQUEST"},
		{"cancelled", call{method: "POST", path: "/v1/admin/changes/1/cancel", token: adminToken,
			body: mustJSON(t, map[string]any{"reason": "wrong day"})}, http.StatusOK, ""},
		{"approved once cancelled", call{method: "POST", path: "/v1/admin/changes/1/approve", token: bobToken, body: approve},
			http.StatusConflict, "CHANGE_REQUEST_STATE"},
	}
	for _, tt := range tests {
		h.clock.pause()
		res := h.do(t, tt.c)
		if res.status != tt.status || tt.code != "" && res.errorCode(t) != tt.code {
			t.Fatalf("%s = %d %s, want %d %s", tt.name, res.status, res.body, tt.status, tt.code)
		}
	}
	if cur := h.current(t); cur.ActiveProfile != switchyard.ProfilePrimary {
		t.Fatalf("profile = %s after refusals", cur.ActiveProfile)
	}
	var refused []string
	for _, e := range h.audit(t) {
		if e.Outcome == store.OutcomeRejected {
			refused = append(refused, e.Action)
		}
	}
	if got := strings.Join(refused, " "); got != "approve_change propose_change approve_change reject_change approve_change approve_change approve_change set_profile" {
		t.Fatalf("refusals audited, newest first: %s", got)
	}
}
