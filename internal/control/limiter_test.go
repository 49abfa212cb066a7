package control

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
)

// limitedCore is a core over st with a test clock and a limit of burst new
// sessions at once, then rate a second, for each client.
func limitedCore(t *testing.T, st store.Store, clk *clock, rate float64, burst int) *Core {
	t.Helper()
	c := New(slog.New(slog.DiscardHandler), Config{CacheTTL: time.Hour, Now: clk.now, SessionRate: rate, SessionBurst: burst}, st)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// clientResult evaluates EXAM_MODE for session id, asked by client.
func clientResult(t *testing.T, c *Core, client, id string) evaluator.Result {
	t.Helper()
	ev, err := c.Evaluation(context.Background(), client, id)
	if err != nil {
		t.Fatalf("an evaluation failed: %v", err)
	}
	return ev.Result(switchyard.ExamMode, nil)
}

// A client past its burst of new sessions gets its new sessions evaluated
// unpinned, with the live values, STALE and pin: rate_limited, and none
// of them stored; its sessions pinned before, here or elsewhere, stay
// pinned, other clients are not limited, and the bucket refills at the
// rate.
func TestNewSessionsRateLimited(t *testing.T) {
	clk := newClock()
	st := memory.NewDemo(memory.WithClock(clk.now))
	c := limitedCore(t, st, clk, 1, 3)
	for i := range 3 {
		want(t, "a new session within the burst", clientResult(t, c, "school", fmt.Sprintf("s-%d", i)), false, 1, evaluator.ReasonStatic, nil)
	}
	if _, err := c.Apply(context.Background(), examMode(true)); err != nil {
		t.Fatal(err)
	}
	rev, err := st.Current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.CreateSession(context.Background(), evaluator.NewSnapshot("elsewhere", "", rev, clk.now(), time.Hour)); err != nil {
		t.Fatal(err)
	}

	want(t, "a new session past the burst", clientResult(t, c, "school", "late"), true, 2, evaluator.ReasonStale, switchyard.PinRateLimited)
	if _, err := st.Session(context.Background(), "late"); switchyard.ErrorCode(err) != switchyard.CodeNotFound {
		t.Fatalf("a session past the burst was stored: %v", err)
	}
	want(t, "a session pinned within the burst", clientResult(t, c, "school", "s-0"), false, 1, evaluator.ReasonStatic, nil)
	want(t, "a session pinned on another replica", clientResult(t, c, "school", "elsewhere"), true, 2, evaluator.ReasonStatic, nil)
	want(t, "another client's new session", clientResult(t, c, "home", "h-0"), true, 2, evaluator.ReasonStatic, nil)

	clk.advance(time.Second)
	want(t, "a new session a second later", clientResult(t, c, "school", "late"), true, 2, evaluator.ReasonStatic, nil)
	want(t, "the next one", clientResult(t, c, "school", "later"), true, 2, evaluator.ReasonStale, switchyard.PinRateLimited)
}

// An explicit create past the burst is refused with RATE_LIMITED and when
// to try again, unless the session exists; creating a session that exists
// costs nothing.
func TestExplicitPinRateLimited(t *testing.T) {
	clk := newClock()
	c := limitedCore(t, memory.NewDemo(memory.WithClock(clk.now)), clk, 0.5, 2)
	for range 5 {
		if _, _, err := c.Pin(context.Background(), "app", "s-0", ""); err != nil {
			t.Fatalf("creating one session again and again: %v", err)
		}
	}
	if _, created, err := c.Pin(context.Background(), "app", "s-1", ""); err != nil || !created {
		t.Fatalf("the second new session = %v, %v; want it created", created, err)
	}
	_, _, err := c.Pin(context.Background(), "app", "s-2", "")
	if e := switchyard.AsError(err); e.Code != switchyard.CodeRateLimited || e.Fields[switchyard.RetryAfterField] != 2 {
		t.Fatalf("the third new session = %v %v, want RATE_LIMITED with retry_after_seconds 2", err, e.Fields)
	}
	if _, err := c.Session(context.Background(), "s-2"); switchyard.ErrorCode(err) != switchyard.CodeNotFound {
		t.Fatalf("a refused session was stored: %v", err)
	}
	if snap, created, err := c.Pin(context.Background(), "app", "s-1", ""); err != nil || created || snap.SessionID != "s-1" {
		t.Fatalf("an existing session past the burst = %+v, %v, %v; want it returned", snap, created, err)
	}
	clk.advance(2 * time.Second)
	if _, created, err := c.Pin(context.Background(), "app", "s-2", ""); err != nil || !created {
		t.Fatalf("a new session once the bucket refilled = %v, %v", created, err)
	}
}

// full is a store that holds as many sessions as it may: it refuses new
// ones as the Postgres store does at its bound.
type full struct{ store.Store }

func (f full) CreateSession(ctx context.Context, s switchyard.Snapshot) (switchyard.Snapshot, bool, error) {
	if have, err := f.Store.Session(ctx, s.SessionID); err == nil {
		return have, false, nil
	}
	return switchyard.Snapshot{}, false, switchyard.Errorf(switchyard.CodeSessionLimit, "full").With(switchyard.RetryAfterField, 60)
}

// A store at its bound of sessions makes a new session's evaluation
// unpinned, STALE with pin: session_limit, never pinned here as during an
// outage; an explicit create says SESSION_LIMIT_REACHED; and the refusals
// do not count against the client's own limit.
func TestStoreAtItsSessionLimit(t *testing.T) {
	clk := newClock()
	st := memory.NewDemo(memory.WithClock(clk.now))
	rev, err := st.Current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.CreateSession(context.Background(), evaluator.NewSnapshot("old", "", rev, clk.now(), time.Hour)); err != nil {
		t.Fatal(err)
	}
	c := limitedCore(t, full{st}, clk, 1, 1)
	for i := range 3 {
		want(t, "a new session", clientResult(t, c, "app", fmt.Sprintf("new-%d", i)), false, 1, evaluator.ReasonStale, switchyard.PinSessionLimit)
	}
	if n := c.backend.Load().pins.waiting(); n != 0 {
		t.Fatalf("%d sessions refused by the store were pinned here", n)
	}
	want(t, "an existing session", clientResult(t, c, "app", "old"), false, 1, evaluator.ReasonStatic, nil)
	if _, _, err := c.Pin(context.Background(), "app", "new-0", ""); switchyard.ErrorCode(err) != switchyard.CodeSessionLimit {
		t.Fatalf("an explicit create = %v, want SESSION_LIMIT_REACHED", err)
	}
}

// With MaxSessions, the sessions pinned here during an outage are bounded
// by it, the oldest dropped first: the newest are the ones written back.
func TestLocalPinsDropTheOldest(t *testing.T) {
	clk := newClock()
	st := memory.NewDemo(memory.WithClock(clk.now))
	o := &outage{Store: st}
	c := New(slog.New(slog.DiscardHandler), Config{CacheTTL: time.Hour, Now: clk.now, MaxSessions: 3}, o)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	o.down.Store(true)
	for i := range 5 {
		want(t, "a new session with the store down", result(t, c, fmt.Sprintf("s-%d", i)), false, 1, evaluator.ReasonStale, switchyard.PinLocal)
	}
	o.down.Store(false)
	c.writeBackNow()
	for i := range 5 {
		_, err := st.Session(context.Background(), fmt.Sprintf("s-%d", i))
		if dropped := i < 2; dropped != (switchyard.ErrorCode(err) == switchyard.CodeNotFound) {
			t.Errorf("s-%d in the store after the write-back: %v; want the 2 oldest dropped, the 3 newest stored", i, err)
		}
	}
}

// Sessions pinned here while the store is down are new sessions too: they
// cost the client's limit as stored ones do.
func TestLocalPinsRateLimited(t *testing.T) {
	clk := newClock()
	o := &outage{Store: memory.NewDemo(memory.WithClock(clk.now))}
	c := limitedCore(t, o, clk, 1, 2)
	o.down.Store(true)
	for i := range 2 {
		want(t, "a new session with the store down", clientResult(t, c, "app", fmt.Sprintf("s-%d", i)), false, 1, evaluator.ReasonStale, switchyard.PinLocal)
	}
	want(t, "the next one", clientResult(t, c, "app", "s-2"), false, 1, evaluator.ReasonStale, switchyard.PinRateLimited)
	if n := c.backend.Load().pins.waiting(); n != 2 {
		t.Fatalf("%d sessions pinned here, want 2", n)
	}
}
