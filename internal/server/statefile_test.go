package server

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
)

// outage is a store whose writes fail like its reads when down is set: an
// unreachable database refuses everything with UNAVAILABLE.
type outage struct {
	store.Store
	down *atomic.Bool
}

func (o *outage) Apply(ctx context.Context, c store.Change) (*switchyard.Revision, store.AuditEntry, error) {
	if o.down.Load() {
		return nil, store.AuditEntry{}, switchyard.Errorf(switchyard.CodeUnavailable, "the store is down")
	}
	return o.Store.Apply(ctx, c)
}

func (o *outage) Reject(ctx context.Context, a store.Attempt, why error) (store.AuditEntry, error) {
	if o.down.Load() {
		return store.AuditEntry{}, switchyard.Errorf(switchyard.CodeUnavailable, "the store is down")
	}
	return o.Store.Reject(ctx, a, why)
}

// newOutage is a harness over a fresh demo store that is down until told
// otherwise, reads and writes alike.
func newOutage(t *testing.T) *harness {
	t.Helper()
	c := newClock()
	out := &outage{Store: memory.NewDemo(memory.WithClock(c.now))}
	h := newStoreWith(t, c, out)
	out.down = &h.store.down
	h.store.down.Store(true)
	return h
}

// A replica restarted while the store is down serves the revision an
// earlier process last installed, says so, refuses writes, and returns to
// the store by itself once it answers.
func TestStateFileServedWhileTheStoreIsDown(t *testing.T) {
	dir := t.TempDir()
	withDir := func(c *testConfig) { c.StateDir = dir }

	before := newHarness(t, withDir)
	before.admin(t, "POST", "/v1/admin/runtime/flags",
		map[string]any{"flag": "EXAM_MODE", "value": true, "phrase": "ENABLE EXAM MODE", "reason": "exam at 10:00"})
	waitForStateFile(t, dir, 2)

	h := newOutage(t)
	h.start(withDir)
	got := h.evaluate(t, "EXAM_MODE", nil)
	md := got["metadata"].(map[string]any)
	if got["value"] != true || got["reason"] != "STALE" || md["stale"] != true || md["fallback"] != nil || md["revision"] != float64(2) {
		t.Fatalf("EXAM_MODE with the store down = %v, want true, STALE, stale, from revision 2 of the file", got)
	}
	res := h.do(t, call{method: "GET", path: "/readyz"})
	if body := res.json(t); res.status != http.StatusServiceUnavailable || body["status"] != "degraded" ||
		!strings.Contains(body["reason"].(string), "last-known-good revision 2 from the state file") {
		t.Fatalf("readyz = %d %s, want degraded naming the state file", res.status, res.body)
	}
	res = h.do(t, call{method: "GET", path: "/v1/admin/runtime/status", token: viewerToken})
	if res.status != http.StatusServiceUnavailable || !strings.Contains(string(res.body), "last-known-good revision 2") {
		t.Fatalf("status = %d %s, want 503 naming what is served", res.status, res.body)
	}
	res = h.do(t, call{method: "POST", path: "/v1/admin/runtime/flags", token: adminToken,
		body: `{"flag":"FREEZE_UPDATES","value":true,"phrase":"ENABLE FREEZE UPDATES","reason":"r"}`})
	if res.status != http.StatusServiceUnavailable || res.errorCode(t) != "UNAVAILABLE" {
		t.Fatalf("a write with the store down = %d %s, want 503 UNAVAILABLE", res.status, res.body)
	}

	h.store.down.Store(false)
	if n := h.current(t).Number; n != 1 || len(h.audit(t)) != 0 {
		t.Fatalf("after the refused write the store is at revision %d with %d audit entries, want 1 and none", n, len(h.audit(t)))
	}
	// The stand-in is replaced at the next TTL, without a restart.
	h.clock.advance(control.DefaultCacheTTL)
	got = h.evaluate(t, "EXAM_MODE", nil)
	if got["value"] != false || got["reason"] != "STATIC" || got["metadata"].(map[string]any)["revision"] != float64(1) {
		t.Fatalf("once the store answers EXAM_MODE = %v, want false from the store's revision 1", got)
	}
	if res := h.do(t, call{method: "GET", path: "/readyz"}); res.status != http.StatusOK {
		t.Fatalf("readyz after recovery = %d %s", res.status, res.body)
	}
	// The file follows the store again.
	waitForStateFile(t, dir, 1)
}

// waitForStateFile waits until the state file in dir holds revision n:
// it is written off the path of the change that installed the revision.
func waitForStateFile(t *testing.T, dir string, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rev, err := control.ReadStateFile(dir, "demo", store.Identity{})
		if err == nil && rev.Number == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("state file = %v, %v; want revision %d", rev, err, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// Without a usable file a start with the store down serves the conservative
// fallback, and /readyz says so.
func TestConservativeFallbackWithoutAStateFile(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string)
	}{
		{name: "no file", prepare: func(*testing.T, string) {}},
		{name: "corrupt file", prepare: func(t *testing.T, dir string) {
			if err := os.WriteFile(control.StateFilePath(dir, "demo"), []byte("not json"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.prepare(t, dir)
			h := newOutage(t)
			h.start(func(c *testConfig) { c.StateDir = dir })
			got := h.evaluate(t, "FREEZE_UPDATES", nil)
			if md := got["metadata"].(map[string]any); got["value"] != true || got["reason"] != "STALE" || md["fallback"] != "conservative" {
				t.Fatalf("FREEZE_UPDATES = %v, want true, STALE, fallback conservative", got)
			}
			res := h.do(t, call{method: "GET", path: "/readyz", token: viewerToken})
			if res.status != http.StatusServiceUnavailable || !strings.Contains(string(res.body), "conservative fallback") {
				t.Fatalf("readyz = %d %s, want degraded naming the conservative fallback", res.status, res.body)
			}
		})
	}
}

// degradedStore is a store that answers but reports itself degraded, as
// store/rediscache does with Redis down.
type degradedStore struct {
	store.Store
	reason string
}

func (d degradedStore) Degraded() (string, bool) { return d.reason, d.reason != "" }

// A store that answers but says it is degraded keeps the replica ready (it
// serves the right values) while /readyz (to a caller with a token) and
// the admin status name the reason.
func TestDegradedStoreIsReported(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		ready  int
	}{
		{name: "healthy", ready: http.StatusOK},
		{name: "Redis down", reason: "Redis does not answer", ready: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newStore(t)
			h.handler = newHandler(slog.New(slog.NewTextHandler(h.logs, nil)),
				testConfig{Config: control.Config{Mode: "demo"}, Tokens: []Token{{Operator: switchyard.Operator{Name: viewerName, Role: switchyard.RoleViewer}, Secret: viewerToken}}},
				degradedStore{Store: h.store, reason: tt.reason}, h.clock.now)
			res := h.do(t, call{method: "GET", path: "/readyz", token: viewerToken})
			wantStatus := "ready"
			if tt.reason != "" {
				wantStatus = "degraded"
			}
			if res.status != tt.ready || res.json(t)["status"] != wantStatus || (tt.reason != "" && res.json(t)["reason"] != tt.reason) {
				t.Fatalf("readyz = %d %s, want %d naming %q", res.status, res.body, tt.ready, tt.reason)
			}
			res = h.do(t, call{method: "GET", path: "/v1/admin/runtime/status", token: viewerToken})
			if got, _ := res.json(t)["degraded"].(string); res.status != http.StatusOK || got != tt.reason {
				t.Fatalf("status = %d, degraded %q; want 200 and %q", res.status, got, tt.reason)
			}
		})
	}
}

// unreachableStore fails every read as a database that refuses the
// connection does, with an error naming its host, user and database.
type unreachableStore struct {
	store.Store
	err error
}

func (u unreachableStore) Current(context.Context) (*switchyard.Revision, error) { return nil, u.err }

// /readyz tells an anonymous caller why it is degraded in general words,
// and a caller with a valid token of any role what the stores answered,
// which names hosts, users and databases.
func TestReadinessDetailNeedsAToken(t *testing.T) {
	dbDown := switchyard.Errorf(switchyard.CodeUnavailable, "failed to connect to `user=switchyard database=prod`: 10.0.0.5:5432: connection refused")
	tests := []struct {
		name   string
		store  func(store.Store) store.Store
		status int
		// general is what an anonymous answer says; secret is only in an
		// authenticated one.
		general, secret string
	}{
		{name: "database down", status: http.StatusServiceUnavailable,
			store:   func(st store.Store) store.Store { return unreachableStore{Store: st, err: dbDown} },
			general: "the store does not answer; serving the conservative fallback", secret: "user=switchyard database=prod`: 10.0.0.5:5432"},
		{name: "Redis down", status: http.StatusOK,
			store: func(st store.Store) store.Store {
				return degradedStore{Store: st, reason: "Redis does not answer (dial tcp cache.internal:6379: connection refused)"}
			},
			general: "part of the store does not answer", secret: "cache.internal:6379"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newStore(t)
			h.handler = newHandler(slog.New(slog.NewTextHandler(h.logs, nil)),
				testConfig{Config: control.Config{Mode: "demo"}, Tokens: []Token{{Operator: switchyard.Operator{Name: "viewer", Role: switchyard.RoleViewer}, Secret: viewerToken}}},
				tt.store(h.store), h.clock.now)
			for _, token := range []string{"", "not-a-token", viewerToken} {
				res := h.do(t, call{method: "GET", path: "/readyz", token: token})
				reason, _ := res.json(t)["reason"].(string)
				want := tt.general
				if token == viewerToken {
					want = tt.secret
				}
				if res.status != tt.status || !strings.Contains(reason, want) || strings.Contains(reason, tt.secret) != (token == viewerToken) {
					t.Errorf("readyz with token %q = %d %s, want %d saying %q, and %q only with a valid token",
						token, res.status, res.body, tt.status, want, tt.secret)
				}
			}
		})
	}
}
