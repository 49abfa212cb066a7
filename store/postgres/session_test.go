package postgres

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/store"
)

// clock is a settable clock safe to read from the sweeper's goroutine.
type clock struct{ unixNano atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.set(t)
	return c
}
func (c *clock) set(t time.Time)     { c.unixNano.Store(t.UnixNano()) }
func (c *clock) now() time.Time      { return time.Unix(0, c.unixNano.Load()) }
func (c *clock) add(d time.Duration) { c.set(c.now().Add(d)) }

// createSessions stores n snapshots of the current revision named
// prefix-0..n-1, living ttl from the clock's now.
func createSessions(t *testing.T, f *fixture, c *clock, prefix string, n int, ttl time.Duration) {
	t.Helper()
	cur, err := f.store.Current(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		snap := evaluator.NewSnapshot(fmt.Sprintf("%s-%d", prefix, i), "u", cur, c.now(), ttl)
		if _, created, err := f.store.CreateSession(testContext(t), snap); err != nil || !created {
			t.Fatalf("create %s: %v, %v", snap.SessionID, created, err)
		}
	}
}

// TestSessionRoundTrip checks a snapshot reads back exactly as created,
// and that one pinned to a revision that does not exist is refused.
func TestSessionRoundTrip(t *testing.T) {
	f := newFixture(t)
	v0 := "v0"
	if _, _, err := f.store.Apply(testContext(t), store.Change{Mutation: switchyard.SetOverride("mastery", &v0, nil)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.store.Apply(testContext(t), store.Change{Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)}); err != nil {
		t.Fatal(err)
	}
	cur, err := f.store.Current(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	want := evaluator.NewSnapshot("s-ü/1", "user-7", cur, time.Now(), 90*time.Minute)
	stored, created, err := f.store.CreateSession(testContext(t), want)
	if err != nil || !created || !reflect.DeepEqual(stored, want) {
		t.Fatalf("CreateSession = %+v, %v, %v; want %+v", stored, created, err, want)
	}
	got, err := f.store.Session(testContext(t), want.SessionID)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Session = %+v, %v; want %+v", got, err, want)
	}
	if !got.ExamModeAtStart || got.Modules["mastery"].Source != switchyard.SourceOverride {
		t.Fatalf("snapshot lost the pinned state: %+v", got)
	}
	dangling := evaluator.NewSnapshot("s-2", "u", &switchyard.Revision{Number: 99}, time.Now(), time.Hour)
	if _, _, err := f.store.CreateSession(testContext(t), dangling); switchyard.ErrorCode(err) != switchyard.CodeInvalidRequest {
		t.Fatalf("snapshot of revision 99 = %v, want INVALID_REQUEST", err)
	}
	if _, _, err := f.store.CreateSession(testContext(t), switchyard.Snapshot{SessionID: "has space"}); switchyard.ErrorCode(err) != switchyard.CodeInvalidRequest {
		t.Fatalf("invalid session ID = %v, want INVALID_REQUEST", err)
	}
}

// TestSweep checks the sweep removes expired snapshots in bounded batches,
// keeps live ones, and that a revision pinned by a live session cannot be
// removed, by the service or by the owner.
func TestSweep(t *testing.T) {
	c := newClock(time.Now())
	f := newFixture(t, WithClock(c.now))
	createSessions(t, f, c, "short", 25, time.Minute)
	createSessions(t, f, c, "long", 3, time.Hour)
	if _, _, err := f.store.Apply(testContext(t), store.Change{Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)}); err != nil {
		t.Fatal(err)
	}
	c.add(2 * time.Minute)
	if _, err := f.store.Session(testContext(t), "short-0"); switchyard.ErrorCode(err) != switchyard.CodeNotFound {
		t.Fatalf("expired session = %v, want NOT_FOUND", err)
	}
	var batches []int
	for {
		n, err := f.store.Sweep(testContext(t), 10)
		if err != nil {
			t.Fatal(err)
		}
		batches = append(batches, n)
		if n == 0 {
			break
		}
	}
	if !reflect.DeepEqual(batches, []int{10, 10, 5, 0}) {
		t.Fatalf("sweep batches = %v, want 10, 10, 5, 0", batches)
	}
	if n := f.count(t, "session_runtime_snapshot"); n != 3 {
		t.Fatalf("%d snapshots left, want the 3 live ones", n)
	}
	if s, err := f.store.Session(testContext(t), "long-2"); err != nil || s.Revision != 1 {
		t.Fatalf("live session = %+v, %v; want it pinned to revision 1", s, err)
	}
	del := "DELETE FROM revisions WHERE number = 1"
	if _, err := f.store.pool.Exec(testContext(t), del); pgCode(err) != "42501" {
		t.Errorf("service deleting a pinned revision: %v, want permission denied", err)
	}
	if _, err := f.owner.Exec(testContext(t), del); pgCode(err) != "23503" {
		t.Errorf("owner deleting a pinned revision: %v, want a foreign key violation", err)
	}
}

// TestRunSweeper checks the background sweeper clears expired snapshots
// and stops with its context.
func TestRunSweeper(t *testing.T) {
	c := newClock(time.Now())
	f := newFixture(t, WithClock(c.now))
	createSessions(t, f, c, "s", 5, time.Minute)
	c.add(time.Hour)
	ctx, cancel := context.WithCancel(testContext(t))
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		f.store.RunSweeper(ctx, 10*time.Millisecond)
	}()
	wait := testContext(t)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for f.count(t, "session_runtime_snapshot") > 0 {
		select {
		case <-wait.Done():
			t.Fatal("the sweeper never removed the expired sessions")
		case <-tick.C:
		}
	}
	cancel()
	<-stopped
}

// TestMaxSessions checks a store bounded to n live sessions stores no
// more, even when many are created at once: a new session past the bound
// is refused with SESSION_LIMIT_REACHED and when to try again, an existing
// one is still returned, another replica counts what the table holds when
// it opens, and sessions that expire make room again once counted.
func TestMaxSessions(t *testing.T) {
	const max = 5
	c := newClock(time.Now())
	f := newFixture(t, WithClock(c.now), WithMaxSessions(max))
	cur, err := f.store.Current(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	create := func(st *Store, id string) (bool, error) {
		_, created, err := st.CreateSession(testContext(t), evaluator.NewSnapshot(id, "", cur, c.now(), time.Hour))
		return created, err
	}
	var wg sync.WaitGroup
	var created atomic.Int64
	for i := range 4 * max {
		wg.Go(func() {
			ok, err := create(f.store, fmt.Sprintf("s-%d", i))
			switch {
			case ok:
				created.Add(1)
			case switchyard.ErrorCode(err) != switchyard.CodeSessionLimit:
				t.Errorf("create s-%d: %v, want created or SESSION_LIMIT_REACHED", i, err)
			}
		})
	}
	wg.Wait()
	if n := f.count(t, "session_runtime_snapshot"); created.Load() != max || n != max {
		t.Fatalf("%d concurrent creates: %d created, %d stored; want %d of each", 4*max, created.Load(), n, max)
	}

	_, err = create(f.store, "one-more")
	if e := switchyard.AsError(err); e.Code != switchyard.CodeSessionLimit || e.Fields[switchyard.RetryAfterField] != 60 {
		t.Fatalf("a new session at the bound = %v %v, want SESSION_LIMIT_REACHED with retry_after_seconds 60", err, e.Fields)
	}
	var stored string
	if err := f.owner.QueryRow(testContext(t), "SELECT session_id FROM "+f.table("session_runtime_snapshot")+" LIMIT 1").Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if ok, err := create(f.store, stored); ok || err != nil {
		t.Fatalf("an existing session at the bound = %v, %v; want its snapshot", ok, err)
	}

	other, err := Open(testContext(t), f.url, WithLogger(quiet), WithClock(c.now), WithMaxSessions(max))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := create(other, "elsewhere"); switchyard.ErrorCode(err) != switchyard.CodeSessionLimit {
		t.Fatalf("another replica at the bound = %v, want SESSION_LIMIT_REACHED", err)
	}

	c.add(2 * time.Hour)
	if err := f.store.countSessions(testContext(t)); err != nil {
		t.Fatal(err)
	}
	if ok, err := create(f.store, "after-expiry"); !ok || err != nil {
		t.Fatalf("a new session once the others expired = %v, %v; want it created", ok, err)
	}
}

// TestSurgeOfCreates: thousands of concurrent creates, several for each
// session, some of sessions already stored and some of expired ones, all
// batched together: each new or expired session is created exactly once,
// every create of a session returns the same snapshot, and a live stored
// one is never replaced.
func TestSurgeOfCreates(t *testing.T) {
	c := newClock(time.Now())
	f := newFixture(t, WithClock(c.now))
	createSessions(t, f, c, "stored", 50, time.Hour)
	createSessions(t, f, c, "expired", 20, time.Minute)
	c.add(2 * time.Minute)
	cur, err := f.store.Current(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 0, 570)
	for i := range 500 {
		ids = append(ids, fmt.Sprintf("new-%d", i))
	}
	for i := range 50 {
		ids = append(ids, fmt.Sprintf("stored-%d", i))
	}
	for i := range 20 {
		ids = append(ids, fmt.Sprintf("expired-%d", i))
	}
	const perSession = 4
	type answer struct {
		snap    switchyard.Snapshot
		created bool
	}
	var mu sync.Mutex
	answers := map[string][]answer{}
	var wg sync.WaitGroup
	for _, id := range ids {
		for k := range perSession {
			wg.Go(func() {
				snap := evaluator.NewSnapshot(id, fmt.Sprintf("surge-%d", k), cur, c.now(), time.Hour)
				got, created, err := f.store.CreateSession(testContext(t), snap)
				if err != nil {
					t.Errorf("create %s: %v", id, err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				answers[id] = append(answers[id], answer{got, created})
			})
		}
	}
	wg.Wait()
	for _, id := range ids {
		as := answers[id]
		created := 0
		for _, a := range as {
			if a.created {
				created++
			}
			if !reflect.DeepEqual(a.snap, as[0].snap) {
				t.Fatalf("%s: creates returned different snapshots: %+v and %+v", id, a.snap, as[0].snap)
			}
		}
		wantCreated := 1
		if strings.HasPrefix(id, "stored-") {
			wantCreated = 0
			if as[0].snap.UserID != "u" {
				t.Fatalf("%s: a live stored session was replaced by %+v", id, as[0].snap)
			}
		}
		if len(as) != perSession || created != wantCreated {
			t.Fatalf("%s: %d answers, %d created; want %d and %d", id, len(as), created, perSession, wantCreated)
		}
		stored, err := f.store.Session(testContext(t), id)
		if err != nil || !reflect.DeepEqual(stored, as[0].snap) {
			t.Fatalf("%s: stored %+v, %v; answered %+v", id, stored, err, as[0].snap)
		}
	}
}

// TestSweepKeys checks an idempotency key is kept for store.KeyTTL and
// then swept, in bounded batches, after which the key names a new change;
// the change it named stays in the audit log.
func TestSweepKeys(t *testing.T) {
	c := newClock(time.Now())
	f := newFixture(t, WithClock(c.now))
	on := false
	apply := func(key string) *switchyard.Revision {
		t.Helper()
		on = !on
		next, _, err := f.store.Apply(testContext(t), store.Change{
			Attempt:  store.Attempt{Actor: "alice", IdempotencyKey: key, RequestHash: "h"},
			Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, on)})
		if err != nil {
			t.Fatal(err)
		}
		return next
	}
	for _, key := range []string{"k1", "k2", "k3"} {
		apply(key)
	}
	// Keys take the database's clock; the sweep compares with the store's.
	c.add(store.KeyTTL - time.Minute)
	if n, err := f.store.SweepKeys(testContext(t), 10); err != nil || n != 0 {
		t.Fatalf("sweep within the TTL = %d, %v; want nothing swept", n, err)
	}
	c.add(2 * time.Minute)
	if n, err := f.store.SweepKeys(testContext(t), 2); err != nil || n != 2 {
		t.Fatalf("first sweep past the TTL = %d, %v; want the batch of 2", n, err)
	}
	if n, err := f.store.SweepKeys(testContext(t), 2); err != nil || n != 1 {
		t.Fatalf("second sweep = %d, %v; want the last key", n, err)
	}
	if _, err := f.store.Keyed(testContext(t), "k1"); switchyard.ErrorCode(err) != switchyard.CodeNotFound {
		t.Fatalf("Keyed of a swept key = %v, want NOT_FOUND", err)
	}
	if next := apply("k1"); next.Number != 5 {
		t.Fatalf("the swept key with a new change made revision %d, want 5", next.Number)
	}
	if n := f.count(t, "switch_audit_log"); n != 4 {
		t.Fatalf("audit log holds %d entries, want 4: sweeping keys removes no audit row", n)
	}
}
