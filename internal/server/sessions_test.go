package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
)

func TestCreateSession(t *testing.T) {
	h := newHarness(t)
	first := h.do(t, call{method: "POST", path: "/v1/sessions", body: `{"session_id":"s-1","user_id":"u-1"}`})
	if first.status != http.StatusCreated {
		t.Fatalf("create = %d %s, want 201", first.status, first.body)
	}
	snap := first.json(t)
	if snap["session_id"] != "s-1" || snap["user_id"] != "u-1" || snap["revision"] != float64(1) ||
		snap["profile"] != "primary" || snap["exam_mode_at_start"] != false || snap["freeze_updates_at_start"] != false {
		t.Fatalf("snapshot = %v", snap)
	}
	if m := snap["modules"].(map[string]any)["mastery"].(map[string]any); m["version"] != "v1" || m["enabled"] != true {
		t.Fatalf("snapshot mastery = %v", m)
	}
	if snap["created_at"] != h.clock.now().Format(time.RFC3339) {
		t.Fatalf("created_at = %v, want %v", snap["created_at"], h.clock.now().Format(time.RFC3339))
	}

	// The runtime changes; the session's snapshot does not.
	h.admin(t, "POST", "/v1/admin/runtime/profile", map[string]any{"profile_name": "fallback", "phrase": "SET PROFILE FALLBACK", "reason": "incident"})
	h.clock.advance(time.Minute)
	again := h.do(t, call{method: "POST", path: "/v1/sessions", body: `{"session_id":"s-1","user_id":"someone-else"}`})
	if again.status != http.StatusOK || string(again.body) != string(first.body) {
		t.Fatalf("second create = %d %s, want 200 with the first snapshot %s", again.status, again.body, first.body)
	}
	read := h.do(t, call{method: "GET", path: "/v1/sessions/s-1"})
	if read.status != http.StatusOK || string(read.body) != string(first.body) {
		t.Fatalf("GET = %d %s, want the first snapshot", read.status, read.body)
	}

	fresh := h.do(t, call{method: "POST", path: "/v1/sessions", body: `{"session_id":"s-2"}`})
	if fresh.status != http.StatusCreated || fresh.json(t)["profile"] != "fallback" || fresh.json(t)["revision"] != float64(2) {
		t.Fatalf("new session after the switch = %d %s, want 201 on revision 2 with profile fallback", fresh.status, fresh.body)
	}
}

func TestCreateSessionRefused(t *testing.T) {
	h := newHarness(t, func(c *testConfig) { c.MaxBodyBytes = 512 })
	tests := []struct {
		name       string
		body       string
		breaksSpec bool
		message    string
	}{
		{"missing session_id", `{"user_id":"u"}`, true, "session_id must be 1 to 128 characters"},
		{"session_id too long", `{"session_id":"` + strings.Repeat("s", 129) + `"}`, true, "session_id must be 1 to 128 characters"},
		{"session_id with a space", `{"session_id":"a b"}`, false, "spaces"},
		{"unknown field", `{"session_id":"s","user":"u"}`, true, `unknown field "user"`},
		{"wrong type", `{"session_id":42}`, true, `field "session_id" must be a string`},
		{"malformed JSON", `{"session_id":`, true, "not valid JSON"},
		{"trailing data", `{"session_id":"s"} {"session_id":"t"}`, false, "unexpected data after the JSON object"},
		{"not an object", `["s"]`, true, "must be a JSON object"},
		{"user_id too long", `{"session_id":"s","user_id":"` + strings.Repeat("u", 257) + `"}`, true, "user_id: must be at most 256 characters"},
		{"revision without its ID", `{"session_id":"s","revision":1}`, false, "give both or neither"},
		{"revision ID without its number", `{"session_id":"s","revision_id":"x"}`, false, "give both or neither"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.do(t, call{method: "POST", path: "/v1/sessions", body: tt.body, breaksSpec: tt.breaksSpec})
			if res.status != http.StatusBadRequest || res.errorCode(t) != "INVALID_REQUEST" {
				t.Fatalf("create = %d %s, want 400 INVALID_REQUEST", res.status, res.body)
			}
			if msg := res.json(t)["error"].(map[string]any)["message"].(string); !strings.Contains(msg, tt.message) {
				t.Fatalf("message %q does not say %q", msg, tt.message)
			}
		})
	}
	oversized := h.do(t, call{method: "POST", path: "/v1/sessions", body: `{"session_id":"s","user_id":"` + strings.Repeat("u", 600) + `"}`, breaksSpec: true})
	if oversized.status != http.StatusRequestEntityTooLarge || oversized.errorCode(t) != "BODY_TOO_LARGE" ||
		!strings.Contains(string(oversized.body), "larger than the limit of 512 bytes") {
		t.Fatalf("oversized create = %d %s, want 413 BODY_TOO_LARGE", oversized.status, oversized.body)
	}
	if res := h.do(t, call{method: "GET", path: "/v1/sessions/s"}); res.status != http.StatusNotFound {
		t.Fatalf("a refused create stored a session: GET = %d %s", res.status, res.body)
	}
}

// A client that pinned a session itself, at first sight, to the revision
// it served registers that pin: the session is pinned to that revision,
// not the current one, unless it exists; a revision the store does not
// hold under that ID pins it to the current revision.
func TestCreateSessionAtARevision(t *testing.T) {
	h := newHarness(t)
	first := h.current(t)
	h.admin(t, "POST", "/v1/admin/runtime/profile", map[string]any{"profile_name": "fallback", "phrase": "SET PROFILE FALLBACK", "reason": "incident"})
	second := h.current(t)
	at := func(n int64, id string) string {
		return fmt.Sprintf(`{"session_id":"s-%d-%s","revision":%d,"revision_id":%q}`, n, id, n, id)
	}
	tests := []struct {
		name    string
		body    string
		want    *switchyard.Revision
		profile string
	}{
		{"the revision pinned", at(1, first.ID), first, "primary"},
		{"another history's revision 1", at(1, "0123456789abcdef0123456789abcdef"), second, "fallback"},
		{"a revision the store never had", at(9, first.ID), second, "fallback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.do(t, call{method: "POST", path: "/v1/sessions", body: tt.body})
			snap := res.json(t)
			if res.status != http.StatusCreated || snap["revision"] != float64(tt.want.Number) || snap["revision_id"] != tt.want.ID ||
				snap["profile"] != tt.profile {
				t.Fatalf("create = %d %s, want 201 pinned to revision %d (%s), profile %s", res.status, res.body, tt.want.Number, tt.want.ID, tt.profile)
			}
		})
	}
	// The first writer wins: a later pin to another revision is answered
	// with the stored one.
	again := h.do(t, call{method: "POST", path: "/v1/sessions", body: fmt.Sprintf(`{"session_id":"s-1-%s","revision":2,"revision_id":%q}`, first.ID, second.ID)})
	if again.status != http.StatusOK || again.json(t)["revision_id"] != first.ID {
		t.Fatalf("second create = %d %s, want 200 with the first pin, to revision 1", again.status, again.body)
	}
}

func TestGetSessionNotFound(t *testing.T) {
	h := newHarness(t)
	// A session that lived an hour, two hours ago.
	cur := h.current(t)
	old := evaluator.NewSnapshot("expired", "", cur, h.clock.now().Add(-2*time.Hour), time.Hour)
	if _, _, err := h.store.CreateSession(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"never-created", "expired"} {
		res := h.do(t, call{method: "GET", path: "/v1/sessions/" + id})
		if res.status != http.StatusNotFound || res.errorCode(t) != "NOT_FOUND" {
			t.Fatalf("GET %s = %d %s, want 404 NOT_FOUND", id, res.status, res.body)
		}
	}
}

func TestSessionExpiresFromCache(t *testing.T) {
	h := newHarness(t, func(c *testConfig) { c.SessionTTL = time.Hour })
	if res := h.do(t, call{method: "POST", path: "/v1/sessions", body: `{"session_id":"short"}`}); res.status != http.StatusCreated {
		t.Fatalf("create = %d %s", res.status, res.body)
	}
	if res := h.do(t, call{method: "GET", path: "/v1/sessions/short"}); res.status != http.StatusOK {
		t.Fatalf("GET = %d %s", res.status, res.body)
	}
	h.clock.advance(time.Hour)
	if res := h.do(t, call{method: "GET", path: "/v1/sessions/short"}); res.status != http.StatusNotFound {
		t.Fatalf("GET after the TTL = %d %s, want 404", res.status, res.body)
	}
}

func TestPinnedSessionOverOFREP(t *testing.T) {
	h := newHarness(t)
	if res := h.do(t, call{method: "POST", path: "/v1/sessions", body: `{"session_id":"before"}`}); res.status != http.StatusCreated {
		t.Fatalf("create = %d %s", res.status, res.body)
	}
	h.admin(t, "POST", "/v1/admin/runtime/profile", map[string]any{"profile_name": "fallback", "phrase": "SET PROFILE FALLBACK", "reason": "incident"})
	h.admin(t, "POST", "/v1/admin/system/exam-mode", map[string]any{"enabled": true, "phrase": "ENABLE EXAM MODE", "reason": "exam"})
	if res := h.do(t, call{method: "POST", path: "/v1/sessions", body: `{"session_id":"after"}`}); res.status != http.StatusCreated {
		t.Fatalf("create = %d %s", res.status, res.body)
	}

	tests := []struct {
		name     string
		session  string
		key      string
		value    any
		revision float64
		pinned   bool
	}{
		{"pinned before keeps v1", "before", "module.mastery", "v1", 1, true},
		{"pinned before keeps primary", "before", "runtime.profile", "primary", 1, true},
		{"pinned before keeps exam mode off", "before", "EXAM_MODE", false, 1, true},
		{"pinned before keeps elasticsearch on", "before", "module.elasticsearch.enabled", true, 1, true},
		{"pinned after sees v0", "after", "module.mastery", "v0", 3, true},
		{"pinned after sees exam mode", "after", "EXAM_MODE", true, 3, true},
		{"live sees v0", "", "module.mastery", "v0", 3, false},
		{"live sees exam mode", "", "EXAM_MODE", true, 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evalCtx := map[string]any{"targetingKey": "user-1"}
			if tt.session != "" {
				evalCtx["sessionId"] = tt.session
			}
			got := h.evaluate(t, tt.key, evalCtx)
			md := got["metadata"].(map[string]any)
			if got["value"] != tt.value || md["revision"] != tt.revision || md["pinned"] != tt.pinned {
				t.Fatalf("%s for %q = %v, want %v at revision %v pinned %v", tt.key, tt.session, got, tt.value, tt.revision, tt.pinned)
			}
		})
	}

	// Exam mode toggled off again mid-session changes nothing for either.
	h.admin(t, "POST", "/v1/admin/system/exam-mode", map[string]any{"enabled": false, "phrase": "DISABLE EXAM MODE", "reason": "exam over"})
	if got := h.evaluate(t, "EXAM_MODE", map[string]any{"sessionId": "after"}); got["value"] != true {
		t.Fatalf("session after: EXAM_MODE = %v, want its pinned true", got)
	}
	if got := h.evaluate(t, "EXAM_MODE", map[string]any{"sessionId": "before"}); got["value"] != false {
		t.Fatalf("session before: EXAM_MODE = %v, want its pinned false", got)
	}
}

func TestOFREPCreatesSessionAtFirstSight(t *testing.T) {
	h := newHarness(t)
	got := h.evaluate(t, "module.revision", map[string]any{"sessionId": "forgot-to-create"})
	if got["value"] != "v1" || got["metadata"].(map[string]any)["pinned"] != true {
		t.Fatalf("first evaluation = %v, want v1 pinned", got)
	}
	res := h.do(t, call{method: "GET", path: "/v1/sessions/forgot-to-create"})
	if res.status != http.StatusOK || res.json(t)["revision"] != float64(1) {
		t.Fatalf("GET the session = %d %s, want its snapshot at revision 1", res.status, res.body)
	}
	h.admin(t, "POST", "/v1/admin/runtime/override", map[string]any{
		"module": "revision", "version": "v0", "phrase": "OVERRIDE MODULE revision TO v0", "reason": "regression in v1"})
	if got := h.evaluate(t, "module.revision", map[string]any{"sessionId": "forgot-to-create"}); got["value"] != "v1" {
		t.Fatalf("after the override the session sees %v, want its pinned v1", got)
	}
	if res := h.do(t, call{method: "POST", path: "/v1/sessions", body: `{"session_id":"forgot-to-create"}`}); res.status != http.StatusOK {
		t.Fatalf("creating the pinned session = %d, want 200 (it exists)", res.status)
	}
}

func TestPinnedSessionOnUncachedRevision(t *testing.T) {
	// Another replica made revisions 2 and 3 and pinned a session to 2,
	// which this server never served: it reads revision 2 from the store.
	h := newHarness(t)
	apply := func(on bool) *switchyard.Revision {
		rev, _, err := h.store.Apply(context.Background(), store.Change{
			Attempt: store.Attempt{Actor: "replica-2", Role: "admin", Reason: "r"}, Mutation: switchyard.SetSystemFlag(switchyard.FreezeUpdates, on)})
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	second := apply(true)
	if _, _, err := h.store.CreateSession(context.Background(), evaluator.NewSnapshot("elsewhere", "", second, h.clock.now(), time.Hour)); err != nil {
		t.Fatal(err)
	}
	apply(false)
	h.clock.advance(control.DefaultCacheTTL)
	if got := h.evaluate(t, "FREEZE_UPDATES", nil); got["value"] != false || got["metadata"].(map[string]any)["revision"] != float64(3) {
		t.Fatalf("live evaluation = %v, want false at revision 3", got)
	}
	got := h.evaluate(t, "FREEZE_UPDATES", map[string]any{"sessionId": "elsewhere"})
	if got["value"] != true || got["metadata"].(map[string]any)["revision"] != float64(2) {
		t.Fatalf("pinned evaluation = %v, want true at revision 2", got)
	}
}

// With a bound of n sessions (demo mode's store), creating more keeps the
// n newest: the oldest are gone, and come back only as new sessions.
func TestSessionCapDropsTheOldest(t *testing.T) {
	const max, extra = 5, 3
	c := newClock()
	h := newStoreWith(t, c, memory.NewDemo(memory.WithClock(c.now), memory.WithMaxSessions(max)))
	h.start(func(cfg *testConfig) { cfg.MaxSessions = max })
	for i := range max + extra {
		if res := h.do(t, call{method: "POST", path: "/v1/sessions", body: fmt.Sprintf(`{"session_id":"s-%d"}`, i)}); res.status != http.StatusCreated {
			t.Fatalf("create s-%d = %d %s", i, res.status, res.body)
		}
	}
	for i := range max + extra {
		res := h.do(t, call{method: "GET", path: fmt.Sprintf("/v1/sessions/s-%d", i)})
		want := http.StatusOK
		if i < extra {
			want = http.StatusNotFound
		}
		if res.status != want {
			t.Errorf("GET s-%d = %d %s, want %d: the %d oldest gone, the %d newest kept", i, res.status, res.body, want, extra, max)
		}
	}
}

// Each client (an address, an IPv6 /64, a token; behind a trusted proxy,
// the address it forwards) may make a burst of new sessions, then a few a
// second. Past that, an explicit create answers 429 RATE_LIMITED with
// Retry-After, while an evaluation naming a new session is still served,
// unpinned; sessions that exist are served to everyone.
func TestNewSessionsLimitedPerClient(t *testing.T) {
	limited := func(c *testConfig) { c.SessionRate, c.SessionBurst = 0.5, 2 }
	h := newHarness(t, limited)
	proxied := newHarness(t, limited, func(c *testConfig) { c.TrustedProxies = []string{"10.0.0.1", "2001:db8:ff::/48"} })
	const school = "198.51.100.7:4000"
	create := func(h *harness, id, addr, token, forwarded string) response {
		t.Helper()
		c := call{method: "POST", path: "/v1/sessions", body: `{"session_id":"` + id + `"}`, remoteAddr: addr, token: token}
		if forwarded != "" {
			c.header = map[string]string{"X-Forwarded-For": forwarded}
		}
		return h.do(t, c)
	}
	steps := []struct {
		name                       string
		behindProxy                bool
		id, addr, token, forwarded string
		status                     int
	}{
		{"first of the burst", false, "s-1", school, "", "", 201},
		{"second of the burst", false, "s-2", school, "", "", 201},
		{"past the burst", false, "s-3", school, "", "", 429},
		{"an existing session past the burst", false, "s-1", school, "", "", 200},
		{"another address", false, "o-1", "198.51.100.8:4000", "", "", 201},
		{"a token from the same address", false, "t-1", school, viewerToken, "", 201},
		{"a forwarded address with no proxy trusted", false, "f-1", school, "", "203.0.113.9", 429},
		{"an IPv6 host", false, "v-1", "[2001:db8::1]:4000", "", "", 201},
		{"another host of its /64", false, "v-2", "[2001:db8::2]:4000", "", "", 201},
		{"a third host of that /64", false, "v-3", "[2001:db8::3]:4000", "", "", 429},
		{"a host of another /64", false, "v-4", "[2001:db8:0:1::1]:4000", "", "", 201},
		{"a forwarded address from the trusted proxy", true, "p-1", "10.0.0.1:80", "", "203.0.113.9", 201},
		{"the same forwarded address", true, "p-2", "10.0.0.1:80", "", "203.0.113.9", 201},
		{"the same forwarded address past its burst", true, "p-3", "10.0.0.1:80", "", "203.0.113.9", 429},
		{"another forwarded address", true, "p-4", "10.0.0.1:80", "", "203.0.113.10", 201},
		{"a forwarded address through a trusted IPv6 range", true, "p-5", "[2001:db8:ff::7]:80", "", "203.0.113.11", 201},
		{"a forwarded address from a peer not trusted", true, "p-6", "198.51.100.9:80", "", "203.0.113.12", 201},
		{"that peer again, whatever it forwards", true, "p-7", "198.51.100.9:80", "", "203.0.113.13", 201},
		{"that peer past its own burst", true, "p-8", "198.51.100.9:80", "", "203.0.113.14", 429},
	}
	for _, s := range steps {
		server := h
		if s.behindProxy {
			server = proxied
		}
		res := create(server, s.id, s.addr, s.token, s.forwarded)
		if res.status != s.status {
			t.Fatalf("%s: create %s = %d %s, want %d", s.name, s.id, res.status, res.body, s.status)
		}
		if s.status != http.StatusTooManyRequests {
			continue
		}
		if res.errorCode(t) != "RATE_LIMITED" || res.header.Get("Retry-After") != "2" ||
			res.json(t)["error"].(map[string]any)["retry_after_seconds"] != float64(2) {
			t.Fatalf("%s: %d %v %s, want RATE_LIMITED with Retry-After 2", s.name, res.status, res.header, res.body)
		}
	}

	// An evaluation is never refused: a new session past the burst is
	// served the live values, unpinned, and saying why; one that exists is
	// served its pin.
	h.admin(t, "POST", "/v1/admin/system/exam-mode", map[string]any{"enabled": true, "phrase": "ENABLE EXAM MODE", "reason": "exam"})
	evaluate := func(id string) map[string]any {
		res := h.do(t, call{method: "POST", path: "/ofrep/v1/evaluate/flags/EXAM_MODE", remoteAddr: school,
			body: `{"context":{"sessionId":"` + id + `"}}`})
		if res.status != http.StatusOK {
			t.Fatalf("evaluate %s = %d %s, want 200", id, res.status, res.body)
		}
		return res.json(t)
	}
	if r := evaluate("s-9"); r["value"] != true || r["reason"] != "STALE" ||
		r["metadata"].(map[string]any)["pinned"] != false || r["metadata"].(map[string]any)["pin"] != "rate_limited" {
		t.Fatalf("a new session past the burst = %v, want the live value, STALE, pinned false, pin rate_limited", r)
	}
	if res := h.do(t, call{method: "GET", path: "/v1/sessions/s-9"}); res.status != http.StatusNotFound {
		t.Fatalf("a session past the burst was stored: GET = %d %s", res.status, res.body)
	}
	if r := evaluate("s-1"); r["value"] != false || r["reason"] != "STATIC" || r["metadata"].(map[string]any)["pinned"] != true {
		t.Fatalf("a session pinned before = %v, want its pinned value", r)
	}

	h.clock.advance(2 * time.Second)
	if res := create(h, "s-3", school, "", ""); res.status != http.StatusCreated {
		t.Fatalf("create once the bucket refilled = %d %s", res.status, res.body)
	}
}
