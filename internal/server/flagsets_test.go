package server

import (
	"context"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/store"
)

// changeBehindTheServer applies a change as another replica would: in the
// store, without this server knowing.
func (h *harness) changeBehindTheServer(t *testing.T, m switchyard.Mutation) {
	t.Helper()
	if _, _, err := h.store.Apply(context.Background(), store.Change{
		Attempt: store.Attempt{Actor: "replica-2", Role: "admin", Reason: "r"}, Mutation: m}); err != nil {
		t.Fatal(err)
	}
}

func TestLiveFlagSetReloadsAfterTTL(t *testing.T) {
	h := newHarness(t)
	h.changeBehindTheServer(t, switchyard.SetSystemFlag(switchyard.ExamMode, true))
	h.clock.advance(control.DefaultCacheTTL - 1)
	if got := h.evaluate(t, "EXAM_MODE", nil); got["value"] != false {
		t.Fatalf("within the TTL EXAM_MODE = %v, want the cached false", got)
	}
	h.clock.advance(1)
	got := h.evaluate(t, "EXAM_MODE", nil)
	if got["value"] != true || got["metadata"].(map[string]any)["revision"] != float64(2) {
		t.Fatalf("after the TTL EXAM_MODE = %v, want true at revision 2", got)
	}
}

func TestWritesRefreshAtOnce(t *testing.T) {
	h := newHarness(t, func(c *testConfig) { c.CacheTTL = 1 << 40 })
	h.admin(t, "POST", "/v1/admin/runtime/override", map[string]any{"module": "search", "version": "v0", "phrase": "OVERRIDE MODULE search TO v0", "reason": "r"})
	if got := h.evaluate(t, "module.search", nil); got["value"] != "v0" {
		t.Fatalf("right after the write module.search = %v, want v0", got)
	}
}

func TestFailedReloadKeepsLastKnownGood(t *testing.T) {
	h := newHarness(t)
	h.admin(t, "POST", "/v1/admin/runtime/flags", map[string]any{"flag": "FREEZE_UPDATES", "value": true, "phrase": "ENABLE FREEZE UPDATES", "reason": "r"})
	h.store.down.Store(true)
	h.clock.advance(control.DefaultCacheTTL)
	got := h.evaluate(t, "FREEZE_UPDATES", nil)
	if got["value"] != true || got["reason"] != "STATIC" || got["metadata"].(map[string]any)["revision"] != float64(2) {
		t.Fatalf("with the store down FREEZE_UPDATES = %v, want the last known true at revision 2", got)
	}
	if !strings.Contains(h.logs.String(), "serving the last known good") {
		t.Fatal("the failed reload was not logged")
	}

	h.store.down.Store(false)
	h.changeBehindTheServer(t, switchyard.SetSystemFlag(switchyard.FreezeUpdates, false))
	// The failed reload waits a TTL before the store is tried again.
	if got := h.evaluate(t, "FREEZE_UPDATES", nil); got["value"] != true {
		t.Fatalf("right after the failure FREEZE_UPDATES = %v, want the last known true", got)
	}
	h.clock.advance(control.DefaultCacheTTL)
	if got := h.evaluate(t, "FREEZE_UPDATES", nil); got["value"] != false {
		t.Fatalf("after recovery FREEZE_UPDATES = %v, want false", got)
	}
}

func TestConservativeFallbackUntilTheStoreAnswers(t *testing.T) {
	h := newStore(t)
	h.store.down.Store(true)
	h.start()
	tests := []struct {
		key   string
		value any
	}{
		{"FREEZE_UPDATES", true},
		{"runtime.profile", "fallback"},
		{"module.mastery", "v0"},
		{"module.neo4j.enabled", false},
	}
	for _, tt := range tests {
		got := h.evaluate(t, tt.key, nil)
		md := got["metadata"].(map[string]any)
		if got["value"] != tt.value || got["reason"] != "STALE" || md["fallback"] != "conservative" || md["revision"] != float64(0) {
			t.Fatalf("%s = %v, want %v, STALE, from the conservative fallback", tt.key, got, tt.value)
		}
	}
	if res := h.do(t, call{method: "GET", path: "/readyz"}); res.status != 503 {
		t.Fatalf("readyz = %d, want 503", res.status)
	}

	h.store.down.Store(false)
	h.clock.advance(control.DefaultCacheTTL)
	got := h.evaluate(t, "FREEZE_UPDATES", nil)
	if got["value"] != false || got["reason"] != "STATIC" || got["metadata"].(map[string]any)["revision"] != float64(1) {
		t.Fatalf("once the store answers FREEZE_UPDATES = %v, want false from revision 1", got)
	}
	res := h.do(t, call{method: "GET", path: "/readyz"})
	if body := res.json(t); res.status != 200 || body["served_revision"] != float64(1) {
		t.Fatalf("readyz = %d %s", res.status, res.body)
	}
}
