package server

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/postgres"
	"github.com/switchyard-dev/switchyard/store/storetest"
)

// TestOperatorRunbook walks the incident runbook end to end: exam mode on,
// updates frozen, the fleet moved to the fallback profile, then each
// restored, checking after every step what applications read over OFREP.
func TestOperatorRunbook(t *testing.T) {
	runbook(t, newHarness(t))
}

// TestOperatorRunbookOnPostgres walks the runbook over the production
// store, in a schema of its own in SWITCHYARD_TEST_DATABASE_URL.
func TestOperatorRunbookOnPostgres(t *testing.T) {
	runbook(t, newPostgresHarness(t))
}

// newPostgresHarness returns a started harness over the production store,
// migrated in a schema of its own in SWITCHYARD_TEST_DATABASE_URL.
func newPostgresHarness(t *testing.T) *harness {
	t.Helper()
	url, _ := storetest.PostgresSchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := newClock()
	opts := []postgres.Option{postgres.WithClock(c.now), postgres.WithLogger(slog.New(slog.DiscardHandler))}
	if _, err := postgres.Migrate(ctx, url, opts...); err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(ctx, url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	h := newStoreWith(t, c, st)
	h.start()
	return h
}

// runbook is the runbook against the harness h, whatever its store.
func runbook(t *testing.T, h *harness) {
	if res := h.do(t, call{method: "POST", path: "/v1/sessions", body: `{"session_id":"exam-1","user_id":"student-7"}`}); res.status != http.StatusCreated {
		t.Fatalf("create session = %d %s", res.status, res.body)
	}
	steps := []struct {
		name   string
		method string
		path   string
		body   map[string]any
		// want is what applications then read, live.
		want map[string]any
	}{
		{"exam mode on", "POST", "/v1/admin/system/exam-mode",
			map[string]any{"enabled": true, "phrase": "ENABLE EXAM MODE", "reason": "final exam 09:00-12:00"},
			map[string]any{"EXAM_MODE": true, "FREEZE_UPDATES": false, "runtime.profile": "primary", "module.mastery": "v1", "module.elasticsearch.enabled": true}},
		{"freeze on", "POST", "/v1/admin/runtime/flags",
			map[string]any{"flag": "FREEZE_UPDATES", "value": true, "phrase": "ENABLE FREEZE UPDATES", "reason": "grading pipeline degraded"},
			map[string]any{"EXAM_MODE": true, "FREEZE_UPDATES": true, "runtime.profile": "primary", "module.mastery": "v1"}},
		{"fallback profile", "POST", "/v1/admin/runtime/profile",
			map[string]any{"profile_name": "fallback", "phrase": "SET PROFILE FALLBACK", "reason": "v1 algorithms misbehaving"},
			map[string]any{"EXAM_MODE": true, "FREEZE_UPDATES": true, "runtime.profile": "fallback", "module.mastery": "v0", "module.elasticsearch.enabled": false}},
		{"primary profile", "POST", "/v1/admin/runtime/profile",
			map[string]any{"profile_name": "primary", "phrase": "SET PROFILE PRIMARY", "reason": "v1 fixed"},
			map[string]any{"runtime.profile": "primary", "module.mastery": "v1", "module.elasticsearch.enabled": true}},
		{"freeze off", "POST", "/v1/admin/runtime/flags",
			map[string]any{"flag": "FREEZE_UPDATES", "value": false, "phrase": "DISABLE FREEZE UPDATES", "reason": "pipeline recovered"},
			map[string]any{"FREEZE_UPDATES": false, "EXAM_MODE": true}},
		{"exam mode off", "POST", "/v1/admin/system/exam-mode",
			map[string]any{"enabled": false, "phrase": "DISABLE EXAM MODE", "reason": "exam over"},
			map[string]any{"EXAM_MODE": false, "FREEZE_UPDATES": false, "runtime.profile": "primary", "module.mastery": "v1"}},
	}
	for i, s := range steps {
		res := h.admin(t, s.method, s.path, s.body)
		if res["status"].(map[string]any)["revision"] != float64(i+2) {
			t.Fatalf("%s: revision %v, want %d", s.name, res["status"].(map[string]any)["revision"], i+2)
		}
		for key, want := range s.want {
			if got := h.evaluate(t, key, map[string]any{"targetingKey": "student-7"}); got["value"] != want {
				t.Fatalf("%s: %s = %v, want %v", s.name, key, got["value"], want)
			}
		}
		// The session that started before the incident never moved.
		if got := h.evaluate(t, "module.elasticsearch.enabled", map[string]any{"sessionId": "exam-1"}); got["value"] != true {
			t.Fatalf("%s: the pinned session reads %v", s.name, got)
		}
	}

	entries := h.audit(t)
	if len(entries) != len(steps) {
		t.Fatalf("audit has %d entries, want %d", len(entries), len(steps))
	}
	for i, s := range steps {
		e := entries[len(entries)-1-i]
		if e.Outcome != store.OutcomeApplied || e.Phrase != s.body["phrase"] || e.Reason != s.body["reason"] {
			t.Fatalf("audit entry %d = %+v, want %s applied", i+1, e, s.name)
		}
	}
	res := h.do(t, call{method: "GET", path: "/v1/admin/audit/verify", token: viewerToken})
	if v := res.json(t); v["ok"] != true || v["entries"] != float64(len(steps)) {
		t.Fatalf("verify = %v", v)
	}
}
