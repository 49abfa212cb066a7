package server

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
)

// testBackends opens real stores for a live switch: fresh demo fixtures, or
// one memory store standing for production, whose revision 2 has EXAM_MODE
// on so a test can tell the two apart. Postgres and Redis behind the same
// interface are tested in cmd/switchyard.
type testBackends struct {
	clock      *clock
	production *unrecordable

	mu      sync.Mutex
	reqs    []control.Requirement
	openErr error
	opened  []string
	// released hears the mode of every store released.
	released chan string
}

func newTestBackends(t *testing.T, c *clock, reqs ...control.Requirement) *testBackends {
	t.Helper()
	prod := memory.NewDemo(memory.WithClock(c.now))
	if _, _, err := prod.Apply(context.Background(), store.Change{
		Attempt:  store.Attempt{Actor: "admin:setup", Reason: "production's own state"},
		Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true),
	}); err != nil {
		t.Fatal(err)
	}
	return &testBackends{clock: c, production: &unrecordable{Store: prod}, reqs: reqs, released: make(chan string, 16)}
}

// unrecordable is a store whose Record fails while down is set, as
// Postgres' does when it stops answering, and records but answers
// OUTCOME_UNKNOWN while lost is set, as Postgres does when the answer to
// its COMMIT is lost and it cannot ask again.
type unrecordable struct {
	*memory.Store
	down, lost atomic.Bool
}

func (u *unrecordable) Record(ctx context.Context, a store.Attempt, before, after any) (store.AuditEntry, error) {
	if u.down.Load() {
		return store.AuditEntry{}, switchyard.Errorf(switchyard.CodeUnavailable, "the database does not answer")
	}
	e, err := u.Store.Record(ctx, a, before, after)
	if err == nil && u.lost.Load() {
		return store.AuditEntry{}, switchyard.Errorf(switchyard.CodeOutcomeUnknown, "the answer to the commit was lost")
	}
	return e, err
}

func (b *testBackends) Requirements(context.Context) []control.Requirement {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.reqs)
}

func (b *testBackends) Open(_ context.Context, mode string) (store.Store, func(), error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.openErr != nil {
		return nil, nil, b.openErr
	}
	b.opened = append(b.opened, mode)
	var st store.Store = b.production
	if mode == switchyard.ModeDemo {
		st = memory.NewDemo(memory.WithClock(b.clock.now))
	}
	return st, func() { b.released <- mode }, nil
}

// waitReleased returns the mode of the next store released, failing the
// test if none is released within a generous bound.
func (b *testBackends) waitReleased(t *testing.T) string {
	t.Helper()
	select {
	case mode := <-b.released:
		return mode
	case <-time.After(10 * time.Second):
		t.Fatal("no store was released")
		return ""
	}
}

func (b *testBackends) openedModes() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.opened)
}

// The requirements of the tests: all met, or Redis missing.
var (
	metRequirements = []control.Requirement{
		{Name: "database", Why: "the truth", Met: true},
		{Name: "redis", Why: "the shared cache", Met: true},
	}
	redisMissing = []control.Requirement{
		{Name: "database", Why: "the truth", Met: true},
		{Name: "redis", Why: "the shared cache", Detail: "does not answer"},
	}
)

// newSwitchable is a harness in demo mode, allowed to switch live, that
// can switch to the production store of be; the demo store's release is
// reported as "start".
func newSwitchable(t *testing.T, reqs ...control.Requirement) (*harness, *testBackends) {
	t.Helper()
	h := newStore(t)
	be := newTestBackends(t, h.clock, reqs...)
	h.start(func(c *testConfig) {
		c.Backends = be
		c.AllowLiveSwitch = true
		c.ModeSource = "default: no database URL is set"
		c.ReleaseStore = func() { be.released <- "start" }
	})
	return h, be
}

// toggle asks for a switch to target with the right phrase.
func toggle(t testing.TB, target string, force bool) call {
	t.Helper()
	return call{method: "POST", path: "/system-mode/toggle", token: adminToken, body: mustJSON(t, map[string]any{
		"target_mode": target, "force": force, "phrase": "SWITCH TO " + strings.ToUpper(target) + " MODE", "reason": "go live",
	})}
}

// systemMode evaluates SYSTEM_MODE.
func systemMode(t *testing.T, h *harness) string {
	t.Helper()
	return h.evaluate(t, switchyard.SystemModeKey, nil)["value"].(string)
}

// The current mode says who set it and how, and lists production's whole
// checklist, to viewers and admins, on both paths.
func TestSystemModeCurrent(t *testing.T) {
	h, _ := newSwitchable(t, redisMissing...)
	for _, path := range []string{"/system-mode/current", "/v1/admin/system-mode/current"} {
		res := h.do(t, call{method: "GET", path: path, token: viewerToken})
		body := res.json(t)
		reqs, _ := body["production_requirements"].([]any)
		missing, _ := body["missing_production_requirements"].([]any)
		if res.status != http.StatusOK || body["mode"] != switchyard.ModeDemo || body["set_by"] != "startup" ||
			body["reason"] != "default: no database URL is set" || body["production_ready"] != false ||
			body["allow_live_switch"] != true || body["switchable"] != true || body["restart_required"] != false || len(reqs) != 2 || len(missing) != 1 ||
			missing[0].(map[string]any)["name"] != "redis" {
			t.Fatalf("GET %s = %d %s", path, res.status, res.body)
		}
		if redis := reqs[1].(map[string]any); redis["name"] != "redis" || redis["met"] != false || redis["detail"] != "does not answer" {
			t.Fatalf("the redis requirement = %v", redis)
		}
		if res := h.do(t, call{method: "GET", path: path}); res.status != http.StatusUnauthorized {
			t.Fatalf("GET %s without a token = %d, want 401", path, res.status)
		}
	}
	// A server built without backends says it cannot switch.
	plain := newHarness(t)
	body := plain.do(t, call{method: "GET", path: "/system-mode/current", token: viewerToken}).json(t)
	if body["switchable"] != false || body["production_ready"] != false {
		t.Fatalf("without backends: %v", body)
	}
}

// Refused toggles change nothing, are audited as rejected, and say why.
func TestToggleRefused(t *testing.T) {
	tests := []struct {
		name  string
		reqs  []control.Requirement
		call  call
		code  string
		check func(t *testing.T, err map[string]any)
	}{
		{name: "viewer", reqs: metRequirements, code: "FORBIDDEN",
			call: call{method: "POST", path: "/system-mode/toggle", token: viewerToken,
				body: `{"target_mode":"production","phrase":"SWITCH TO PRODUCTION MODE","reason":"r"}`}},
		{name: "wrong phrase", reqs: metRequirements, code: "PHRASE_MISMATCH",
			call: call{method: "POST", path: "/system-mode/toggle", token: adminToken,
				body: `{"target_mode":"production","phrase":"switch to production","reason":"r"}`},
			check: func(t *testing.T, e map[string]any) {
				if e["expected_phrase"] != "SWITCH TO PRODUCTION MODE" {
					t.Fatalf("expected_phrase = %v", e["expected_phrase"])
				}
			}},
		{name: "no reason", reqs: metRequirements, code: "REASON_REQUIRED",
			call: call{method: "POST", path: "/system-mode/toggle", token: adminToken, breaksSpec: true,
				body: `{"target_mode":"production","phrase":"SWITCH TO PRODUCTION MODE","reason":""}`}},
		{name: "unknown mode", reqs: metRequirements, code: "INVALID_REQUEST",
			call: call{method: "POST", path: "/v1/admin/system-mode/toggle", token: adminToken, breaksSpec: true,
				body: `{"target_mode":"turbo","phrase":"SWITCH TO TURBO MODE","reason":"r"}`}},
		{name: "already in the mode", reqs: metRequirements, code: "INVALID_REQUEST",
			call: call{method: "POST", path: "/system-mode/toggle", token: adminToken,
				body: `{"target_mode":"demo","phrase":"SWITCH TO DEMO MODE","reason":"r"}`}},
		{name: "requirements missing", reqs: redisMissing, code: "PRODUCTION_REQUIREMENTS_MISSING",
			call: toggle(t, switchyard.ModeProduction, false),
			check: func(t *testing.T, e map[string]any) {
				missing, _ := e["missing_production_requirements"].([]any)
				if len(missing) != 1 || missing[0].(map[string]any)["name"] != "redis" || !strings.Contains(e["message"].(string), "redis") {
					t.Fatalf("refusal = %v, want redis listed", e)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, be := newSwitchable(t, tt.reqs...)
			res := h.do(t, tt.call)
			if res.status/100 != 4 || res.errorCode(t) != tt.code {
				t.Fatalf("toggle = %d %s, want %s", res.status, res.body, tt.code)
			}
			if tt.check != nil {
				tt.check(t, res.json(t)["error"].(map[string]any))
			}
			if got := systemMode(t, h); got != switchyard.ModeDemo || len(be.openedModes()) != 0 {
				t.Fatalf("after a refusal SYSTEM_MODE = %s and stores opened %v; want demo and none", got, be.openedModes())
			}
			entries := h.audit(t)
			if len(entries) != 1 || entries[0].Outcome != store.OutcomeRejected || entries[0].Action != "set_system_mode" ||
				!strings.HasPrefix(entries[0].Why, tt.code) {
				t.Fatalf("audit = %+v, want one rejected set_system_mode entry", entries)
			}
		})
	}
}

// A forced switch with requirements missing records the desired mode and
// says a restart is required; the process keeps serving demo.
func TestToggleForcedRecordsTheDesiredMode(t *testing.T) {
	h, be := newSwitchable(t, redisMissing...)
	res := h.do(t, toggle(t, switchyard.ModeProduction, true))
	body := res.json(t)
	missing, _ := body["missing"].([]any)
	posture, _ := body["posture"].(map[string]any)
	if res.status != http.StatusOK || body["switched"] != false || body["restart_required"] != true || len(missing) != 1 ||
		posture["mode"] != switchyard.ModeDemo || posture["desired_mode"] != switchyard.ModeProduction || posture["restart_required"] != true {
		t.Fatalf("forced toggle = %d %s", res.status, res.body)
	}
	if got := systemMode(t, h); got != switchyard.ModeDemo || len(be.openedModes()) != 0 {
		t.Fatalf("after a forced toggle SYSTEM_MODE = %s, stores opened %v; want demo, none", got, be.openedModes())
	}
	entries := h.audit(t)
	if len(entries) != 1 || entries[0].Outcome != store.OutcomeApplied || int64(body["audit_seq"].(float64)) != entries[0].Seq ||
		!strings.Contains(string(entries[0].After), `"desired_mode":"production"`) {
		t.Fatalf("audit = %+v, want the recorded desired mode", entries)
	}
	current := h.do(t, call{method: "GET", path: "/system-mode/current", token: viewerToken}).json(t)
	if current["desired_mode"] != switchyard.ModeProduction || current["restart_required"] != true || current["mode"] != switchyard.ModeDemo {
		t.Fatalf("current after a forced toggle = %v", current)
	}
}

// With requirements met the switch is live: production's store serves at
// once, the switch is in production's audit log, the demo store is
// released; switching back starts demo from the fixtures again and
// releases production's store.
func TestToggleLive(t *testing.T) {
	h, be := newSwitchable(t, metRequirements...)
	h.admin(t, "POST", "/v1/admin/runtime/profile",
		map[string]any{"profile_name": "fallback", "phrase": "SET PROFILE FALLBACK", "reason": "a demo change"})

	res := h.do(t, toggle(t, switchyard.ModeProduction, false))
	body := res.json(t)
	posture, _ := body["posture"].(map[string]any)
	if res.status != http.StatusOK || body["switched"] != true || body["restart_required"] != false ||
		posture["mode"] != switchyard.ModeProduction || posture["set_by"] != adminName || posture["reason"] != "go live" {
		t.Fatalf("toggle = %d %s", res.status, res.body)
	}
	if got := be.waitReleased(t); got != "start" {
		t.Fatalf("released %q, want the demo store the server started with", got)
	}
	if got := systemMode(t, h); got != switchyard.ModeProduction {
		t.Fatalf("SYSTEM_MODE = %s, want production", got)
	}
	exam := h.evaluate(t, switchyard.ExamMode, nil)
	profile := h.evaluate(t, switchyard.ProfileKey, nil)
	if exam["value"] != true || exam["metadata"].(map[string]any)["revision"] != float64(2) || profile["value"] != "primary" {
		t.Fatalf("after the switch EXAM_MODE = %v, profile = %v; want production's revision 2, not demo's change", exam, profile)
	}
	prodAudit, _ := be.production.Audit(context.Background(), store.AuditQuery{})
	if e := prodAudit[0]; e.Action != "set_system_mode" || e.Outcome != store.OutcomeApplied ||
		string(e.Before) != `{"mode":"demo"}` || string(e.After) != `{"mode":"production"}` || int64(body["audit_seq"].(float64)) != e.Seq {
		t.Fatalf("production's newest audit entry = %+v", e)
	}

	res = h.do(t, toggle(t, switchyard.ModeDemo, false))
	if res.status != http.StatusOK || res.json(t)["switched"] != true {
		t.Fatalf("toggle back = %d %s", res.status, res.body)
	}
	if got := be.waitReleased(t); got != switchyard.ModeProduction {
		t.Fatalf("released %q, want production's store", got)
	}
	if got, profile := systemMode(t, h), h.evaluate(t, switchyard.ProfileKey, nil)["value"]; got != switchyard.ModeDemo || profile != "primary" {
		t.Fatalf("back in demo SYSTEM_MODE = %s, profile %v; want demo from the fixtures", got, profile)
	}
	prodAudit, _ = be.production.Audit(context.Background(), store.AuditQuery{})
	if e := prodAudit[0]; string(e.Before) != `{"mode":"production"}` || string(e.After) != `{"mode":"demo"}` {
		t.Fatalf("switching to demo is recorded in production's log: newest entry %+v", e)
	}
	if got := be.openedModes(); !slices.Equal(got, []string{switchyard.ModeProduction, switchyard.ModeDemo}) {
		t.Fatalf("opened %v", got)
	}
}

// A store that cannot be opened leaves the old mode serving.
func TestToggleOpenFails(t *testing.T) {
	h, be := newSwitchable(t, metRequirements...)
	be.openErr = errors.New("connection refused")
	res := h.do(t, toggle(t, switchyard.ModeProduction, false))
	if res.status != http.StatusServiceUnavailable || res.errorCode(t) != "UNAVAILABLE" ||
		!strings.Contains(string(res.body), "connection refused") {
		t.Fatalf("toggle = %d %s, want 503 naming the failure", res.status, res.body)
	}
	if got := systemMode(t, h); got != switchyard.ModeDemo {
		t.Fatalf("SYSTEM_MODE = %s, want demo still", got)
	}
	if entries := h.audit(t); len(entries) != 1 || entries[0].Outcome != store.OutcomeRejected {
		t.Fatalf("audit = %+v, want the failed switch rejected", entries)
	}
}

// No switch is made without its row in production's audit log: with the
// database unable to record it, a switch to demo answers 503 and
// production keeps serving.
func TestSwitchNeedsItsAuditRow(t *testing.T) {
	h, be := newSwitchable(t, metRequirements...)
	if res := h.do(t, toggle(t, switchyard.ModeProduction, false)); res.status != http.StatusOK {
		t.Fatalf("toggle = %d %s", res.status, res.body)
	}
	be.waitReleased(t)
	be.production.down.Store(true)
	res := h.do(t, toggle(t, switchyard.ModeDemo, false))
	if res.status != http.StatusServiceUnavailable || res.errorCode(t) != "UNAVAILABLE" {
		t.Fatalf("toggle to demo without its audit row = %d %s, want 503", res.status, res.body)
	}
	if got := be.waitReleased(t); got != switchyard.ModeDemo {
		t.Fatalf("released %q, want the demo store opened for the refused switch", got)
	}
	if got := systemMode(t, h); got != switchyard.ModeProduction {
		t.Fatalf("SYSTEM_MODE = %s, want production still", got)
	}
}

// Evaluations, pinned and live, never fail while the mode is switched back
// and forth under them.
func TestEvaluationUninterruptedBySwitches(t *testing.T) {
	h, be := newSwitchable(t, metRequirements...)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		wg.Go(func() {
			evalCtx := `{"context":{}}`
			if i%2 == 1 {
				evalCtx = `{"context":{"sessionId":"s-` + string(rune('a'+i)) + `"}}`
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := h.send(call{method: "POST", path: "/ofrep/v1/evaluate/flags/" + switchyard.SystemModeKey, body: evalCtx})
				if err == nil && res.status != http.StatusOK {
					err = errors.New(string(res.body))
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := range 6 {
		target := switchyard.ModeProduction
		if i%2 == 1 {
			target = switchyard.ModeDemo
		}
		if res := h.do(t, toggle(t, target, false)); res.status != http.StatusOK {
			t.Errorf("switch %d to %s = %d %s", i, target, res.status, res.body)
		}
		be.waitReleased(t)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("an evaluation failed during the switches: %v", err)
	}
}

// A switch ends open streams, so in-process providers reconnect and read
// the new mode's revision.
func TestSwitchEndsStreams(t *testing.T) {
	h, be := newSwitchable(t, metRequirements...)
	srv := httptest.NewServer(h.handler)
	defer srv.Close()
	res, err := http.Get(srv.URL + "/v1/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	lines := bufio.NewScanner(res.Body)
	if !lines.Scan() || lines.Text() != "event: revision" {
		t.Fatalf("first line = %q, want the current revision", lines.Text())
	}
	if res := h.do(t, toggle(t, switchyard.ModeProduction, false)); res.status != http.StatusOK {
		t.Fatalf("toggle = %d %s", res.status, res.body)
	}
	for lines.Scan() {
	}
	if err := lines.Err(); err != nil {
		t.Fatalf("stream ended with %v, want a clean end", err)
	}
	be.waitReleased(t)
}

// keyed is c sent with an Idempotency-Key.
func keyed(c call, key string) call {
	c.header = map[string]string{"Idempotency-Key": key}
	return c
}

// A toggle sent again with its key is answered as the first was, in
// production and back in demo (whose fresh store never saw the key), and
// switches nothing twice; the key with another toggle is refused.
func TestToggleIdempotencyKey(t *testing.T) {
	h, be := newSwitchable(t, metRequirements...)
	for _, target := range []string{switchyard.ModeProduction, switchyard.ModeDemo} {
		first := h.do(t, keyed(toggle(t, target, false), "to-"+target))
		again := h.do(t, keyed(toggle(t, target, false), "to-"+target))
		if first.status != http.StatusOK || first.json(t)["switched"] != true || again.status != http.StatusOK ||
			again.json(t)["switched"] != true || again.json(t)["audit_seq"] != first.json(t)["audit_seq"] {
			t.Fatalf("toggle to %s = %d %s, sent again = %d %s; want the same switch", target, first.status, first.body, again.status, again.body)
		}
		if got := systemMode(t, h); got != target {
			t.Fatalf("SYSTEM_MODE = %s, want %s", got, target)
		}
		other := h.do(t, keyed(toggle(t, target, true), "to-"+target))
		if other.status != http.StatusUnprocessableEntity || other.errorCode(t) != "IDEMPOTENCY_KEY_REUSED" {
			t.Fatalf("the key with a forced toggle = %d %s, want 422", other.status, other.body)
		}
	}
	if got := be.openedModes(); !slices.Equal(got, []string{switchyard.ModeProduction, switchyard.ModeDemo}) {
		t.Fatalf("opened %v, want each store once", got)
	}
	prodAudit, _ := be.production.Audit(context.Background(), store.AuditQuery{})
	if switches := countAction(prodAudit, "set_system_mode"); switches != 2 {
		t.Fatalf("production's log records %d switches, want 2", switches)
	}
}

func countAction(entries []store.AuditEntry, action string) int {
	n := 0
	for _, e := range entries {
		if e.Action == action && e.Outcome == store.OutcomeApplied {
			n++
		}
	}
	return n
}

// A switch whose audit row was written but whose answer was lost answers
// 504 OUTCOME_UNKNOWN and is not made; sent again with the same key it is
// made, on the row already written.
func TestToggleOutcomeUnknown(t *testing.T) {
	h, be := newSwitchable(t, metRequirements...)
	be.production.lost.Store(true)
	res := h.do(t, keyed(toggle(t, switchyard.ModeProduction, false), "go-live"))
	if res.status != http.StatusGatewayTimeout || res.errorCode(t) != "OUTCOME_UNKNOWN" || res.header.Get("Retry-After") == "" {
		t.Fatalf("toggle with the answer lost = %d %s, want 504 OUTCOME_UNKNOWN with Retry-After", res.status, res.body)
	}
	if got := systemMode(t, h); got != switchyard.ModeDemo || len(h.audit(t)) != 0 {
		t.Fatalf("SYSTEM_MODE = %s with %d demo audit entries, want demo and no refusal recorded", got, len(h.audit(t)))
	}
	be.production.lost.Store(false)
	again := h.do(t, keyed(toggle(t, switchyard.ModeProduction, false), "go-live"))
	if again.status != http.StatusOK || again.json(t)["switched"] != true {
		t.Fatalf("sent again = %d %s, want the switch made", again.status, again.body)
	}
	prodAudit, _ := be.production.Audit(context.Background(), store.AuditQuery{})
	if got := systemMode(t, h); got != switchyard.ModeProduction || countAction(prodAudit, "set_system_mode") != 1 ||
		again.json(t)["audit_seq"] != float64(prodAudit[0].Seq) {
		t.Fatalf("SYSTEM_MODE = %s, production's log %+v; want production, switched on the one row written", got, prodAudit)
	}
}

// A forced toggle sent again with its key answers the recorded desired
// mode and records it once.
func TestToggleForcedIdempotent(t *testing.T) {
	h, _ := newSwitchable(t, redisMissing...)
	first := h.do(t, keyed(toggle(t, switchyard.ModeProduction, true), "force"))
	again := h.do(t, keyed(toggle(t, switchyard.ModeProduction, true), "force"))
	if first.status != http.StatusOK || again.status != http.StatusOK || again.json(t)["restart_required"] != true ||
		again.json(t)["audit_seq"] != first.json(t)["audit_seq"] || len(h.audit(t)) != 1 {
		t.Fatalf("forced toggle = %d %s, sent again = %d %s, %d audit entries; want the same record once",
			first.status, first.body, again.status, again.body, len(h.audit(t)))
	}
}

// The mode toggle is admitted like every change: while the mode served has
// ADMIN_FREEZE on it is refused with 423 in either direction, and with an
// If-Match that is not the served mode's current revision with 412; each
// refusal is audited in the served mode's log and switches nothing. An
// import is refused by the freeze alike.
func TestToggleAdmittedLikeEveryChange(t *testing.T) {
	freeze := map[string]any{"flag": "ADMIN_FREEZE", "value": true, "phrase": "ENABLE ADMIN FREEZE", "reason": "incident review"}
	stale := toggle(t, switchyard.ModeProduction, false)
	stale.header = map[string]string{"If-Match": `"7"`}
	tests := []struct {
		name string
		// production starts the test switched to production.
		production bool
		frozen     bool
		// missing is what production lacks; nothing when nil.
		missing []control.Requirement
		call    call
		status  int
		code    string
		action  string
	}{
		{name: "frozen demo to production", frozen: true, call: toggle(t, switchyard.ModeProduction, false),
			status: http.StatusLocked, code: "ADMIN_FREEZE_ACTIVE", action: "set_system_mode"},
		{name: "frozen production to demo", production: true, frozen: true, call: toggle(t, switchyard.ModeDemo, false),
			status: http.StatusLocked, code: "ADMIN_FREEZE_ACTIVE", action: "set_system_mode"},
		{name: "frozen, forced with requirements missing", frozen: true, missing: redisMissing, call: toggle(t, switchyard.ModeProduction, true),
			status: http.StatusLocked, code: "ADMIN_FREEZE_ACTIVE", action: "set_system_mode"},
		{name: "frozen import", frozen: true, action: "import_flags",
			call: call{method: "POST", path: "/v1/admin/import", token: adminToken,
				body: importBody(t, "flagd", readImporterTestdata(t, "flagd.json"), "", false)},
			status: http.StatusLocked, code: "ADMIN_FREEZE_ACTIVE"},
		{name: "stale If-Match", call: stale,
			status: http.StatusPreconditionFailed, code: "REVISION_CONFLICT", action: "set_system_mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reqs := metRequirements
			if tt.missing != nil {
				reqs = tt.missing
			}
			h, be := newSwitchable(t, reqs...)
			served, log := switchyard.ModeDemo, func() []store.AuditEntry { return h.audit(t) }
			if tt.production {
				if res := h.do(t, toggle(t, switchyard.ModeProduction, false)); res.status != http.StatusOK {
					t.Fatalf("toggle = %d %s", res.status, res.body)
				}
				be.waitReleased(t)
				served = switchyard.ModeProduction
				log = func() []store.AuditEntry {
					entries, err := be.production.Audit(context.Background(), store.AuditQuery{})
					if err != nil {
						t.Fatal(err)
					}
					return entries
				}
			}
			if tt.frozen {
				h.admin(t, "POST", "/v1/admin/runtime/flags", freeze)
			}
			res := h.do(t, tt.call)
			if res.status != tt.status || res.errorCode(t) != tt.code {
				t.Fatalf("%s %s = %d %s, want %d %s", tt.call.method, tt.call.path, res.status, res.body, tt.status, tt.code)
			}
			if e := log()[0]; e.Action != tt.action || e.Outcome != store.OutcomeRejected || !strings.HasPrefix(e.Why, tt.code) {
				t.Fatalf("newest audit entry of %s = %+v, want the refusal", served, e)
			}
			if got := systemMode(t, h); got != served {
				t.Fatalf("SYSTEM_MODE = %s, want %s still", got, served)
			}
			if frozen := h.evaluate(t, switchyard.AdminFreeze, nil)["value"]; frozen != tt.frozen {
				t.Fatalf("ADMIN_FREEZE = %v after the refusal, want %v", frozen, tt.frozen)
			}
		})
	}
}

// A process started without live switching (by default, one started in
// production mode) says so and refuses every toggle, forced or not, with
// 403 LIVE_SWITCH_DISABLED telling how to allow it; the refusal is
// audited and no store is opened.
func TestToggleWithoutLiveSwitch(t *testing.T) {
	h := newStore(t)
	be := newTestBackends(t, h.clock, metRequirements...)
	h.start(func(c *testConfig) { c.Backends = be })

	current := h.do(t, call{method: "GET", path: "/system-mode/current", token: viewerToken}).json(t)
	if current["allow_live_switch"] != false || current["switchable"] != false || current["production_ready"] != true {
		t.Fatalf("current = %v, want allow_live_switch and switchable false, production ready", current)
	}
	for _, force := range []bool{false, true} {
		res := h.do(t, toggle(t, switchyard.ModeProduction, force))
		if res.status != http.StatusForbidden || res.errorCode(t) != "LIVE_SWITCH_DISABLED" ||
			!strings.Contains(res.json(t)["error"].(map[string]any)["message"].(string), "--allow-live-switch") {
			t.Fatalf("toggle (force %v) = %d %s, want 403 LIVE_SWITCH_DISABLED naming --allow-live-switch", force, res.status, res.body)
		}
		if e := h.audit(t)[0]; e.Action != "set_system_mode" || e.Outcome != store.OutcomeRejected || !strings.HasPrefix(e.Why, "LIVE_SWITCH_DISABLED") {
			t.Fatalf("newest audit entry = %+v, want the refusal", e)
		}
	}
	if got := systemMode(t, h); got != switchyard.ModeDemo || len(be.openedModes()) != 0 {
		t.Fatalf("SYSTEM_MODE = %s, stores opened %v; want demo and none", got, be.openedModes())
	}
}
