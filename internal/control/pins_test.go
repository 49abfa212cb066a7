package control

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
)

// outage is a store that can be made to fail every call as a dead
// database does, and counts the calls a session evaluation may make.
type outage struct {
	store.Store
	down         atomic.Bool
	sessionCalls atomic.Int64
}

func (o *outage) fail() error {
	if o.down.Load() {
		return switchyard.Errorf(switchyard.CodeUnavailable, "the database is unavailable")
	}
	return nil
}

func (o *outage) Current(ctx context.Context) (*switchyard.Revision, error) {
	o.sessionCalls.Add(1)
	if err := o.fail(); err != nil {
		return nil, err
	}
	return o.Store.Current(ctx)
}

func (o *outage) Revision(ctx context.Context, n int64) (*switchyard.Revision, error) {
	if err := o.fail(); err != nil {
		return nil, err
	}
	return o.Store.Revision(ctx, n)
}

func (o *outage) Session(ctx context.Context, id string) (switchyard.Snapshot, error) {
	o.sessionCalls.Add(1)
	if err := o.fail(); err != nil {
		return switchyard.Snapshot{}, err
	}
	return o.Store.Session(ctx, id)
}

func (o *outage) CreateSession(ctx context.Context, s switchyard.Snapshot) (switchyard.Snapshot, bool, error) {
	o.sessionCalls.Add(1)
	if err := o.fail(); err != nil {
		return switchyard.Snapshot{}, false, err
	}
	return o.Store.CreateSession(ctx, s)
}

// clock is a test clock that only moves when told.
type clock struct{ t atomic.Pointer[time.Time] }

func newClock() *clock {
	c := &clock{}
	t := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	c.t.Store(&t)
	return c
}

func (c *clock) now() time.Time { return *c.t.Load() }

func (c *clock) advance(d time.Duration) {
	t := c.now().Add(d)
	c.t.Store(&t)
}

// outageCore is a core over st behind an outage, down from the start or
// not, with a test clock and a state directory (empty: none).
func outageCore(t *testing.T, st store.Store, clk *clock, dir string, down bool) (*Core, *outage) {
	t.Helper()
	o := &outage{Store: st}
	o.down.Store(down)
	c := New(slog.New(slog.DiscardHandler), Config{CacheTTL: time.Hour, StateDir: dir, Now: clk.now}, o)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c, o
}

// result evaluates EXAM_MODE for session id.
func result(t *testing.T, c *Core, id string) evaluator.Result {
	t.Helper()
	ev, err := c.Evaluation(context.Background(), "", id)
	if err != nil {
		t.Fatalf("an evaluation failed: %v", err)
	}
	return ev.Result(switchyard.ExamMode, nil)
}

// want checks a result's value, revision, reason and pin metadata.
func want(t *testing.T, what string, r evaluator.Result, value bool, revision int64, reason evaluator.Reason, pin any) {
	t.Helper()
	if r.Value != value || r.Metadata["revision"] != revision || r.Reason != reason || r.Metadata[switchyard.MetadataPin] != pin {
		t.Fatalf("%s = %v at revision %v, %s, pin %v; want %v at revision %d, %s, pin %v",
			what, r.Value, r.Metadata["revision"], r.Reason, r.Metadata[switchyard.MetadataPin], value, revision, reason, pin)
	}
}

func (c *Core) writeBackNow() { c.writeBack(context.Background(), c.backend.Load()) }

// A new session is pinned here while the store is down, says so, keeps
// its revision after the store returns and a change is made, and is
// written to the store by the write-back.
func TestSessionsPinnedThroughAnOutage(t *testing.T) {
	clk := newClock()
	st := memory.NewDemo(memory.WithClock(clk.now))
	c, o := outageCore(t, st, clk, "", false)
	o.down.Store(true)

	want(t, "a new session with the store down", result(t, c, "s-1"), false, 1, evaluator.ReasonStale, switchyard.PinLocal)
	calls := o.sessionCalls.Load()
	want(t, "another new session", result(t, c, "s-2"), false, 1, evaluator.ReasonStale, switchyard.PinLocal)
	if o.sessionCalls.Load() != calls {
		t.Fatal("the store was asked again right after it failed: each new session would wait for its deadline")
	}

	o.down.Store(false)
	if r := c.Readiness(context.Background()); !r.Ready || r.Status != "degraded" || !strings.Contains(r.Reason, "2 session(s) pinned here") {
		t.Fatalf("readiness with sessions pinned here = %+v, want ready but degraded, saying why", r)
	}
	if _, err := c.Apply(context.Background(), examMode(true)); err != nil {
		t.Fatal(err)
	}
	want(t, "the session after a change, before the write-back", result(t, c, "s-1"), false, 1, evaluator.ReasonStale, switchyard.PinLocal)
	c.writeBackNow()
	want(t, "the session after the write-back", result(t, c, "s-1"), false, 1, evaluator.ReasonStatic, nil)
	if snap, err := st.Session(context.Background(), "s-2"); err != nil || snap.Revision != 1 {
		t.Fatalf("the store's pin of s-2 = %+v, %v; want revision 1", snap, err)
	}
	want(t, "a new session once the store answers", result(t, c, "s-3"), true, 2, evaluator.ReasonStatic, nil)
	if r := c.Readiness(context.Background()); r.Status != "ready" {
		t.Fatalf("readiness after the write-back = %+v", r)
	}
}

// A session another replica pinned first keeps that pin: the local one is
// dropped at write-back, counted and logged as a divergence.
func TestWriteBackKeepsTheFirstWriter(t *testing.T) {
	clk := newClock()
	st := memory.NewDemo(memory.WithClock(clk.now))
	c, o := outageCore(t, st, clk, "", false)
	o.down.Store(true)
	want(t, "pinned here", result(t, c, "s-1"), false, 1, evaluator.ReasonStale, switchyard.PinLocal)

	// Meanwhile another replica, which still reaches the store, changes
	// the runtime and pins the same session.
	rev, _, err := st.Apply(context.Background(), store.Change{Attempt: store.Attempt{Actor: "replica-2", Reason: "r"},
		Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.CreateSession(context.Background(), evaluator.NewSnapshot("s-1", "", rev, clk.now(), time.Hour)); err != nil {
		t.Fatal(err)
	}

	o.down.Store(false)
	c.writeBackNow()
	if n := c.backend.Load().pins.divergences.Load(); n != 1 {
		t.Fatalf("divergences = %d, want 1", n)
	}
	want(t, "the session after the write-back", result(t, c, "s-1"), true, 2, evaluator.ReasonStatic, nil)
}

// A session whose pinned revision cannot be loaded is served the live
// values, STALE, saying its pin is unreadable; so is a session on a
// replica that has never reached the store.
func TestUnreadablePins(t *testing.T) {
	clk := newClock()
	st := memory.NewDemo(memory.WithClock(clk.now))
	rev1, err := st.Current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.CreateSession(context.Background(), evaluator.NewSnapshot("old", "", rev1, clk.now(), time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Apply(context.Background(), store.Change{Attempt: store.Attempt{Actor: "a", Reason: "r"},
		Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)}); err != nil {
		t.Fatal(err)
	}
	c, o := outageCore(t, st, clk, "", false)
	// The session's pin is read, but its revision 1 is not cached here and
	// the store goes down before it is loaded.
	if _, err := c.Session(context.Background(), "old"); err != nil {
		t.Fatal(err)
	}
	o.down.Store(true)
	want(t, "a session whose revision cannot be loaded", result(t, c, "old"), true, 2, evaluator.ReasonStale, switchyard.PinUnreadable)

	cold, _ := outageCore(t, st, clk, "", true)
	r := result(t, cold, "new")
	if r.Value != false || r.Reason != evaluator.ReasonStale || r.Metadata["fallback"] != "conservative" || r.Metadata[switchyard.MetadataPin] != switchyard.PinUnreadable {
		t.Fatalf("a session on a replica that never reached the store = %+v, want the conservative fallback, STALE, pin unreadable", r)
	}
}

// A replica's recent pins survive its restart through the state
// directory: restarted while the store is down, it serves them as pinned,
// and writes the ones that were waiting once the store answers.
func TestPinsSurviveARestart(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	st := memory.NewDemo(memory.WithClock(clk.now))
	before, o := outageCore(t, st, clk, dir, false)
	want(t, "a session pinned in the store", result(t, before, "stored"), false, 1, evaluator.ReasonStatic, nil)
	o.down.Store(true)
	want(t, "a session pinned here", result(t, before, "local"), false, 1, evaluator.ReasonStale, switchyard.PinLocal)
	if err := before.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	after, o := outageCore(t, st, clk, dir, true)
	want(t, "the stored session after the restart", result(t, after, "stored"), false, 1, evaluator.ReasonStatic, nil)
	want(t, "the local session after the restart", result(t, after, "local"), false, 1, evaluator.ReasonStale, switchyard.PinLocal)
	o.down.Store(false)
	after.writeBackNow()
	if snap, err := st.Session(context.Background(), "local"); err != nil || snap.Revision != 1 {
		t.Fatalf("the store's pin of the local session = %+v, %v; want revision 1", snap, err)
	}
}

// outageWrites is an outage whose changes fail too.
type outageWrites struct{ *outage }

func (o outageWrites) Apply(ctx context.Context, c store.Change) (*switchyard.Revision, store.AuditEntry, error) {
	if err := o.fail(); err != nil {
		return nil, store.AuditEntry{}, err
	}
	return o.Store.Apply(ctx, c)
}

// A change the store did not answer leaves the replica ready but degraded,
// saying so, until a call that reaches the database answers again.
func TestFailedChangeDegradesUntilTheStoreAnswers(t *testing.T) {
	clk := newClock()
	o := &outage{Store: memory.NewDemo(memory.WithClock(clk.now))}
	c := New(slog.New(slog.DiscardHandler), Config{CacheTTL: time.Hour, Now: clk.now}, outageWrites{o})
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	o.down.Store(true)
	if _, err := c.Apply(context.Background(), examMode(true)); switchyard.ErrorCode(err) != switchyard.CodeUnavailable {
		t.Fatalf("a change with the store down = %v", err)
	}
	o.down.Store(false)
	if r := c.Readiness(context.Background()); !r.Ready || !strings.Contains(r.Reason, "the last change failed") {
		t.Fatalf("readiness after a failed change = %+v", r)
	}
	c.probe(context.Background(), c.backend.Load())
	if r := c.Readiness(context.Background()); r.Status != "ready" {
		t.Fatalf("readiness once the store answers = %+v", r)
	}
}

// A session pinned here expires as a stored one does: after its TTL it is
// pinned afresh, and it is never written back.
func TestLocalPinsExpire(t *testing.T) {
	clk := newClock()
	st := memory.NewDemo(memory.WithClock(clk.now))
	c, o := outageCore(t, st, clk, "", false)
	o.down.Store(true)
	want(t, "pinned here", result(t, c, "s-1"), false, 1, evaluator.ReasonStale, switchyard.PinLocal)
	o.down.Store(false)
	if _, err := c.Apply(context.Background(), examMode(true)); err != nil {
		t.Fatal(err)
	}
	clk.advance(DefaultSessionTTL)
	c.writeBackNow()
	if _, err := st.Session(context.Background(), "s-1"); switchyard.ErrorCode(err) != switchyard.CodeNotFound {
		t.Fatalf("an expired local pin was written back: %v", err)
	}
	clk.advance(sessionRetry)
	want(t, "the session after its TTL", result(t, c, "s-1"), true, 2, evaluator.ReasonStatic, nil)
}
