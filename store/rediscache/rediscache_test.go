package rediscache_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
	"github.com/switchyard-dev/switchyard/store/rediscache"
	"github.com/switchyard-dev/switchyard/store/storetest"
)

const prefix = "test:"

// counting wraps a store and counts the reads that reach it; when gate is
// set, reads wait for it to close, so concurrent misses pile up.
type counting struct {
	store.Store
	current, revision, session, creates atomic.Int64
	entered                             chan struct{}
	gate                                chan struct{}
}

func (c *counting) wait() {
	if c.gate == nil {
		return
	}
	select {
	case c.entered <- struct{}{}:
	default:
	}
	<-c.gate
}

func (c *counting) Current(ctx context.Context) (*switchyard.Revision, error) {
	c.current.Add(1)
	c.wait()
	return c.Store.Current(ctx)
}

func (c *counting) Revision(ctx context.Context, n int64) (*switchyard.Revision, error) {
	c.revision.Add(1)
	c.wait()
	return c.Store.Revision(ctx, n)
}

func (c *counting) Session(ctx context.Context, id string) (switchyard.Snapshot, error) {
	c.session.Add(1)
	c.wait()
	return c.Store.Session(ctx, id)
}

func (c *counting) CreateSession(ctx context.Context, s switchyard.Snapshot) (switchyard.Snapshot, bool, error) {
	c.creates.Add(1)
	return c.Store.CreateSession(ctx, s)
}

// clock is a settable clock for in-process TTLs.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is a cache over a counting memory store and a miniredis.
type fixture struct {
	mr    *miniredis.Miniredis
	rdb   redis.UniversalClient
	mem   *memory.Store
	inner *counting
	clock *clock
	cache *rediscache.Store
}

func newFixture(t *testing.T, opts ...rediscache.Option) *fixture {
	t.Helper()
	mr := miniredis.RunT(t)
	f := &fixture{mr: mr, clock: newClock()}
	f.mem = memory.NewDemo(memory.WithClock(f.clock.Now))
	f.inner = &counting{Store: f.mem}
	f.rdb = client(t, mr.Addr())
	f.cache = f.newCache(opts...)
	return f
}

func client(t testing.TB, addr string) redis.UniversalClient {
	t.Helper()
	rdb, err := rediscache.NewClient("redis://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// newCache makes another replica: a cache over the same store and Redis.
func (f *fixture) newCache(opts ...rediscache.Option) *rediscache.Store {
	base := []rediscache.Option{rediscache.WithPrefix(prefix), rediscache.WithClock(f.clock.Now),
		rediscache.WithLogger(slog.New(slog.DiscardHandler))}
	return rediscache.New(f.inner, f.rdb, append(base, opts...)...)
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// applyBehind changes the truth without the cache knowing, as another
// replica whose announcements were all lost would.
func applyBehind(t *testing.T, s store.Store) *switchyard.Revision {
	t.Helper()
	next, _, err := s.Apply(ctx(t), store.Change{Attempt: store.Attempt{Actor: "other"},
		Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)})
	if err != nil {
		t.Fatal(err)
	}
	return next
}

// headOf names rev as the version key and the channel do.
func headOf(rev *switchyard.Revision) string { return fmt.Sprintf("%d:%s", rev.Number, rev.ID) }

func current(t *testing.T, s store.Store) int64 {
	t.Helper()
	rev, err := s.Current(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	return rev.Number
}

func TestContractMiniredis(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		mem := memory.NewDemo()
		cache := rediscache.New(mem, client(t, miniredis.RunT(t).Addr()))
		return storetest.Harness{Store: cache, Tamper: func(t *testing.T, seq int64, reason string) {
			mem.Tamper(seq, func(e *store.AuditEntry) { e.Reason = reason })
		}}
	})
}

func TestLayersAndTTLs(t *testing.T) {
	f := newFixture(t)
	if got := current(t, f.cache); got != 1 || f.inner.current.Load() != 1 {
		t.Fatalf("first read = revision %d after %d store reads, want 1 after 1", got, f.inner.current.Load())
	}
	if ttl := f.mr.TTL(prefix + "current"); ttl != rediscache.DefaultRedisTTL {
		t.Fatalf("version key TTL = %v, want %v", ttl, rediscache.DefaultRedisTTL)
	}
	applyBehind(t, f.mem)

	// In process: served without asking anyone.
	if got := current(t, f.cache); got != 1 || f.inner.current.Load() != 1 {
		t.Fatalf("in-process read = %d after %d store reads", got, f.inner.current.Load())
	}
	// Past the in-process TTL: Redis still names revision 1.
	f.clock.Add(rediscache.DefaultLocalTTL)
	if got := current(t, f.cache); got != 1 || f.inner.current.Load() != 1 {
		t.Fatalf("read through Redis = %d after %d store reads", got, f.inner.current.Load())
	}
	// Past the Redis TTL too: the store is asked and the key refilled.
	f.mr.FastForward(rediscache.DefaultRedisTTL)
	f.clock.Add(rediscache.DefaultLocalTTL)
	if got := current(t, f.cache); got != 2 || f.inner.current.Load() != 2 {
		t.Fatalf("read after both TTLs = %d after %d store reads, want 2 after 2", got, f.inner.current.Load())
	}
	rev2, _ := f.mem.Current(ctx(t))
	if got, _ := f.mr.Get(prefix + "current"); got != headOf(rev2) {
		t.Fatalf("version key = %q, want %s", got, headOf(rev2))
	}
}

// Redis holds one revision, the current one, under its ID: each change
// deletes the revision it replaces, and a revision's key lives as long as
// the version key naming it. Another replica reads the current revision
// from Redis and an older one from the store.
func TestRedisHoldsOnlyTheCurrentRevision(t *testing.T) {
	f := newFixture(t)
	var last *switchyard.Revision
	for _, on := range []bool{true, false, true} {
		var err error
		if last, _, err = f.cache.Apply(ctx(t), store.Change{Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, on)}); err != nil {
			t.Fatal(err)
		}
	}
	var revisions []string
	for _, k := range f.mr.Keys() {
		if strings.HasPrefix(k, prefix+"rev:") {
			revisions = append(revisions, k)
		}
	}
	if len(revisions) != 1 || revisions[0] != prefix+"rev:"+last.ID {
		t.Fatalf("revisions in Redis after three changes: %v, want only the current %srev:%s", revisions, prefix, last.ID)
	}
	if ttl := f.mr.TTL(prefix + "rev:" + last.ID); ttl != rediscache.DefaultRedisTTL {
		t.Fatalf("revision TTL = %v, want the version key's %v", ttl, rediscache.DefaultRedisTTL)
	}
	if got, _ := f.mr.Get(prefix + "current"); got != headOf(last) {
		t.Fatalf("version key = %q, want %s", got, headOf(last))
	}
	other := f.newCache()
	for _, tt := range []struct {
		name       string
		read       func() (*switchyard.Revision, error)
		want       int64
		storeReads int64
	}{
		{"Current", func() (*switchyard.Revision, error) { return other.Current(ctx(t)) }, 4, 0},
		{"Revision(4)", func() (*switchyard.Revision, error) { return other.Revision(ctx(t), 4) }, 4, 0},
		{"Revision(2)", func() (*switchyard.Revision, error) { return other.Revision(ctx(t), 2) }, 2, 1},
	} {
		reads := f.inner.revision.Load() + f.inner.current.Load()
		rev, err := tt.read()
		if err != nil || rev.Number != tt.want {
			t.Fatalf("%s = %v, %v", tt.name, rev, err)
		}
		if got := f.inner.revision.Load() + f.inner.current.Load() - reads; got != tt.storeReads {
			t.Errorf("%s read the store %d times, want %d", tt.name, got, tt.storeReads)
		}
	}
}

func TestSessionCachedUntilExpiry(t *testing.T) {
	f := newFixture(t)
	rev, _ := f.mem.Current(ctx(t))
	snap := evaluator.NewSnapshot("s-1", "u", rev, f.clock.Now(), time.Hour)

	// NOT_FOUND is never cached: the session may be created a moment later.
	if _, err := f.cache.Session(ctx(t), "s-1"); switchyard.ErrorCode(err) != switchyard.CodeNotFound {
		t.Fatalf("missing session error = %v", err)
	}
	if _, _, err := f.cache.CreateSession(ctx(t), snap); err != nil {
		t.Fatal(err)
	}
	ttl := f.mr.TTL(prefix + "session:s-1")
	if ttl <= 59*time.Minute || ttl > time.Hour {
		t.Fatalf("snapshot TTL in Redis = %v, want about an hour", ttl)
	}
	other := f.newCache()
	for _, c := range []*rediscache.Store{f.cache, other} {
		got, err := c.Session(ctx(t), "s-1")
		if err != nil || got.Revision != 1 || got.UserID != "u" {
			t.Fatalf("Session = %+v, %v", got, err)
		}
	}
	if n := f.inner.session.Load(); n != 1 {
		t.Fatalf("store read %d times, want once (the miss before creation)", n)
	}
	// Expired by the replica's clock: not served, even while Redis still
	// holds the copy (its TTL ran on another clock).
	f.clock.Add(time.Hour)
	if !f.mr.Exists(prefix + "session:s-1") {
		t.Fatal("the snapshot left Redis before its TTL")
	}
	for _, c := range []*rediscache.Store{f.cache, other} {
		if _, err := c.Session(ctx(t), "s-1"); switchyard.ErrorCode(err) != switchyard.CodeNotFound {
			t.Fatalf("expired session error = %v, want NOT_FOUND", err)
		}
	}
	f.mr.FastForward(time.Hour)
	if f.mr.Exists(prefix + "session:s-1") {
		t.Fatal("the expired snapshot is still in Redis")
	}
}

// A snapshot Redis cached before snapshots named their revision's ID is
// not served: the store, which names it, is asked, and its snapshot
// cached instead.
func TestSessionCachedWithoutRevisionID(t *testing.T) {
	f := newFixture(t)
	rev, _ := f.mem.Current(ctx(t))
	snap := evaluator.NewSnapshot("s-1", "u", rev, f.clock.Now(), time.Hour)
	if _, _, err := f.mem.CreateSession(ctx(t), snap); err != nil {
		t.Fatal(err)
	}
	legacy := snap
	legacy.RevisionID = ""
	raw, err := json.Marshal(legacy)
	if err != nil {
		t.Fatal(err)
	}
	f.mr.Set(prefix+"session:s-1", string(raw))
	for range 2 {
		got, err := f.cache.Session(ctx(t), "s-1")
		if err != nil || got.RevisionID != rev.ID {
			t.Fatalf("Session = %+v, %v; want the store's snapshot naming revision %s", got, err, rev.ID)
		}
	}
	if n := f.inner.session.Load(); n != 1 {
		t.Fatalf("the store was read %d times, want once: its snapshot is cached in the old one's place", n)
	}
}

// Creating a session another replica created is answered from Redis: the
// first writer's snapshot, without a call to the store.
func TestCreateOfACachedSessionStaysInRedis(t *testing.T) {
	f := newFixture(t)
	rev, _ := f.mem.Current(ctx(t))
	first := evaluator.NewSnapshot("s-1", "first", rev, f.clock.Now(), time.Hour)
	if _, created, err := f.cache.CreateSession(ctx(t), first); err != nil || !created {
		t.Fatalf("first create = %v, %v", created, err)
	}
	later := evaluator.NewSnapshot("s-1", "later", rev, f.clock.Now(), time.Hour)
	got, created, err := f.newCache().CreateSession(ctx(t), later)
	if err != nil || created || got.UserID != "first" {
		t.Fatalf("create on another replica = %+v, %v, %v; want the first snapshot", got, created, err)
	}
	if n := f.inner.creates.Load(); n != 1 {
		t.Fatalf("the store was asked to create %d times, want once", n)
	}
}

// TestConcurrentMissesLoadOnce: concurrent misses of the current revision
// or of a session make one read of the wrapped store between them.
// Revision is not among them, though it shares the same single flight: an
// old revision is not kept once read (the core caches what it compiles
// from it), so a reader that arrives after the first read ends rightly
// reads again, and how many do depends on the scheduler alone.
func TestConcurrentMissesLoadOnce(t *testing.T) {
	const n = 64
	tests := []struct {
		name  string
		read  func(*fixture) error
		loads func(*counting) int64
	}{
		{"Current", func(f *fixture) error { _, err := f.cache.Current(context.Background()); return err },
			func(c *counting) int64 { return c.current.Load() }},
		{"Session", func(f *fixture) error { _, err := f.cache.Session(context.Background(), "s"); return err },
			func(c *counting) int64 { return c.session.Load() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			rev, _ := f.mem.Current(ctx(t))
			if _, _, err := f.mem.CreateSession(ctx(t), evaluator.NewSnapshot("s", "u", rev, time.Now(), time.Hour)); err != nil {
				t.Fatal(err)
			}
			f.inner.entered, f.inner.gate = make(chan struct{}, 1), make(chan struct{})
			// The gate opens once every reader is about to read, so none
			// arrives after the first read is done: that one would miss
			// again, and rightly.
			var wg, ready sync.WaitGroup
			ready.Add(n)
			for range n {
				wg.Go(func() {
					ready.Done()
					if err := tt.read(f); err != nil {
						t.Error(err)
					}
				})
			}
			<-f.inner.entered
			ready.Wait()
			close(f.inner.gate)
			wg.Wait()
			if got := tt.loads(f.inner); got != 1 {
				t.Fatalf("%d concurrent misses made %d store reads, want 1", n, got)
			}
		})
	}
}

// Concurrent reads of a revision not held in process, which only the
// store can name, read it from the store once.
func TestConcurrentRevisionReadsLoadOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := &counting{Store: memory.NewDemo(), entered: make(chan struct{}, 1), gate: make(chan struct{})}
		// Revision asks Redis nothing: the cache has no client to ask.
		cache := rediscache.New(inner, nil)
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				if _, err := cache.Revision(context.Background(), 1); err != nil {
					t.Error(err)
				}
			})
		}
		synctest.Wait() // every reader waits for the one load, held at the gate
		close(inner.gate)
		wg.Wait()
		if got := inner.revision.Load(); got != 1 {
			t.Fatalf("64 concurrent reads of revision 1 made %d store reads, want 1", got)
		}
	})
}

func TestRedisErrorsFallBack(t *testing.T) {
	const timeout = 100 * time.Millisecond
	var logs bytes.Buffer
	f := newFixture(t, rediscache.WithTimeout(timeout), rediscache.WithPollInterval(time.Second),
		rediscache.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	f.mr.SetError("ERR injected failure")
	for i := range 3 {
		// Each round is past the skip window, so Redis is tried again.
		f.clock.Add(rediscache.DefaultLocalTTL)
		start := time.Now()
		rev, err := f.cache.Current(ctx(t))
		if err != nil || rev.Number != 1 {
			t.Fatalf("read %d with Redis failing = %v, %v", i, rev, err)
		}
		if _, err := f.cache.Session(ctx(t), "nope"); switchyard.ErrorCode(err) != switchyard.CodeNotFound {
			t.Fatalf("session read with Redis failing = %v, want the store's NOT_FOUND", err)
		}
		if elapsed := time.Since(start); elapsed > 2*timeout {
			t.Fatalf("reads with Redis failing took %v, want under %v", elapsed, 2*timeout)
		}
	}
	h := f.cache.Health()
	if h.OK || !strings.Contains(h.Error, "injected failure") || h.Outages != 1 || h.Failures < 3 {
		t.Fatalf("health = %+v, want one outage with the injected error", h)
	}
	if n := strings.Count(logs.String(), "unreachable"); n != 1 {
		t.Fatalf("logged the outage %d times, want once:\n%s", n, logs.String())
	}
	// A write while Redis fails is still the store's success.
	if _, _, err := f.cache.Apply(ctx(t), store.Change{Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)}); err != nil {
		t.Fatalf("Apply with Redis failing = %v", err)
	}
	if got := current(t, f.cache); got != 2 {
		t.Fatalf("after Apply, Current = %d, want 2", got)
	}

	f.mr.SetError("")
	f.clock.Add(time.Second)
	f.clock.Add(rediscache.DefaultLocalTTL)
	if got := current(t, f.cache); got != 2 {
		t.Fatalf("after recovery, Current = %d, want 2", got)
	}
	if h := f.cache.Health(); !h.OK || h.Error != "" {
		t.Fatalf("health after recovery = %+v", h)
	}
	if !strings.Contains(logs.String(), "reachable again") {
		t.Fatalf("recovery not logged:\n%s", logs.String())
	}
}

// changes runs s's invalidation loop and returns the numbers its OnChange
// listener hears.
func changes(t *testing.T, s *rediscache.Store) <-chan int64 {
	t.Helper()
	ch := make(chan int64, 64)
	s.OnChange(func(rev *switchyard.Revision) { ch <- rev.Number })
	c, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(c) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	return ch
}

// waitFor waits until ch delivers want; the timeout only bounds a failing
// test.
func waitFor(t *testing.T, ch <-chan int64, want int64) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case n := <-ch:
			if n == want {
				return
			}
			if n > want {
				t.Fatalf("heard of revision %d, want %d", n, want)
			}
		case <-timeout:
			t.Fatalf("never heard of revision %d", want)
		}
	}
}

func TestInvalidation(t *testing.T) {
	tests := []struct {
		name string
		poll time.Duration
		// change makes revision 2 in a way the watching replica must learn.
		change func(t *testing.T, f *fixture)
	}{
		{"PubSubFromAnotherReplica", time.Hour, func(t *testing.T, f *fixture) {
			if _, _, err := f.cache.Apply(ctx(t), store.Change{Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)}); err != nil {
				t.Fatal(err)
			}
		}},
		{"PollCatchesMissedMessage", 20 * time.Millisecond, func(t *testing.T, f *fixture) {
			f.mr.Set(prefix+"current", headOf(applyBehind(t, f.mem)))
		}},
		{"PollAsksStoreWhileRedisDown", 20 * time.Millisecond, func(t *testing.T, f *fixture) {
			f.mr.SetError("ERR down")
			applyBehind(t, f.mem)
		}},
		{"AnnouncedByTheStoreFeed", time.Hour, func(t *testing.T, f *fixture) {
			// Another replica heard the commit from Postgres and announced it.
			next := applyBehind(t, f.mem)
			f.newCache().Announce(ctx(t), next)
		}},
		{"ResyncAfterReconnect", time.Hour, func(t *testing.T, f *fixture) {
			f.mr.Close()
			applyBehind(t, f.mem)
			if err := f.mr.Restart(); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			watcher := f.newCache(rediscache.WithPollInterval(tt.poll))
			heard := changes(t, watcher)
			waitFor(t, heard, 1) // subscribed and synced
			reads := f.inner.current.Load()
			tt.change(t, f)
			waitFor(t, heard, 2)
			if got := current(t, watcher); got != 2 {
				t.Fatalf("watcher's Current = %d after hearing of 2", got)
			}
			if tt.name == "PubSubFromAnotherReplica" && f.inner.current.Load() != reads {
				t.Fatalf("the watcher read the store's current revision; the announcement should suffice")
			}
		})
	}
}

func TestOwnApplyNotifiesOnce(t *testing.T) {
	f := newFixture(t)
	heard := changes(t, f.cache)
	waitFor(t, heard, 1)
	if _, _, err := f.cache.Apply(ctx(t), store.Change{Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, heard, 2)
	// Its own announcement comes back on the channel; it is not news.
	if _, _, err := f.cache.Apply(ctx(t), store.Change{Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, false)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, heard, 3)
}

// A listener that blocks, and that reads the cache it is told about, holds
// up neither a write nor an announcement: both return while it is busy.
// Freed, it hears the newest revision, each number it hears higher than the
// one before.
func TestBusyListenerBlocksNoWrite(t *testing.T) {
	f := newFixture(t)
	heard := make(chan int64, 16)
	gate := make(chan struct{})
	f.cache.OnChange(func(told *switchyard.Revision) {
		if rev, err := f.cache.Current(ctx(t)); err != nil || rev.Number < told.Number {
			t.Errorf("a listener told of %d reads Current = %v, %v", told.Number, rev, err)
		}
		heard <- told.Number
		<-gate
	})
	apply := func() {
		if _, _, err := f.cache.Apply(ctx(t), store.Change{Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)}); err != nil {
			t.Error(err)
		}
	}
	returns(t, "Apply", apply)
	waitFor(t, heard, 2)
	// The listener is now blocked on revision 2; it heard nothing before.
	returns(t, "Apply", apply)
	next := applyBehind(t, f.mem)
	returns(t, "Announce", func() { f.cache.Announce(ctx(t), next) })
	close(gate)
	timeout := time.After(10 * time.Second)
	for last := int64(2); last != next.Number; {
		select {
		case n := <-heard:
			if n <= last || n > next.Number {
				t.Fatalf("heard of %d after %d, want rising numbers up to %d", n, last, next.Number)
			}
			last = n
		case <-timeout:
			t.Fatalf("never heard of revision %d", next.Number)
		}
	}
}

// returns fails the test when fn does not return; the timeout only bounds a
// failing test.
func returns(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return while an OnChange listener was busy", what)
	}
}

// behind is a store whose Current answers an older revision than it
// holds, as a read that raced a commit does, and that cannot read newer
// revisions in time.
type behind struct {
	store.Store
	old *switchyard.Revision
}

func (b behind) Current(context.Context) (*switchyard.Revision, error) { return b.old, nil }

func (b behind) Revision(ctx context.Context, n int64) (*switchyard.Revision, error) {
	if n > b.old.Number {
		return nil, switchyard.Errorf(switchyard.CodeUnavailable, "read revision %d: timed out", n)
	}
	return b.Store.Revision(ctx, n)
}

// A replica whose read of the store's current revision raced a commit
// shares what it read without moving the version key backwards, and
// leaves no older revision in Redis.
func TestVersionKeyNeverMovesBack(t *testing.T) {
	f := newFixture(t)
	first, _ := f.mem.Current(ctx(t))
	next, _, err := f.cache.Apply(ctx(t), store.Change{Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)})
	if err != nil {
		t.Fatal(err)
	}
	// The replica cannot load revision 2 from Redis, so it reads the store.
	f.mr.Del(prefix + "rev:" + next.ID)
	slow := rediscache.New(behind{Store: f.mem, old: first}, f.rdb, rediscache.WithPrefix(prefix))
	if got := current(t, slow); got != 1 {
		t.Fatalf("lagging replica's Current = %d, want the 1 it read", got)
	}
	if got, _ := f.mr.Get(prefix + "current"); got != headOf(next) {
		t.Fatalf("version key = %q after a stale share, want %s", got, headOf(next))
	}
	if f.mr.Exists(prefix + "rev:" + first.ID) {
		t.Fatal("the stale share left revision 1 in Redis, which holds only the current revision")
	}
}

// heardRevisions runs s's invalidation loop and returns the revisions its
// OnChange listener hears.
func heardRevisions(t *testing.T, s *rediscache.Store) <-chan *switchyard.Revision {
	t.Helper()
	ch := make(chan *switchyard.Revision, 64)
	s.OnChange(func(rev *switchyard.Revision) { ch <- rev })
	c, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(c) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	return ch
}

// hears waits until ch delivers want (by ID); the timeout only bounds a
// failing test.
func hears(t *testing.T, ch <-chan *switchyard.Revision, want *switchyard.Revision) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case rev := <-ch:
			if rev.ID == want.ID {
				return
			}
		case <-timeout:
			t.Fatalf("never heard of revision %s", headOf(want))
		}
	}
}

// After the store's history is rewound while Redis holds a later revision
// (a database restored from a backup taken at revision 2), the replica
// that reads the store's revision moves Redis and every replica to it,
// whatever its number, and drops the sessions Redis cached; a replica
// started afterwards never serves the lost revision once subscribed.
func TestRewoundHistory(t *testing.T) {
	tests := []struct {
		name string
		// after makes what the restored store holds after the restore, and
		// returns its current revision.
		after func(t *testing.T, h *storetest.History) *switchyard.Revision
		// expired says the version key's TTL lapsed before the replica
		// read the store.
		expired bool
	}{
		{"AtTheBackup", func(t *testing.T, h *storetest.History) *switchyard.Revision {
			rev, _ := h.Current(ctx(t))
			return rev
		}, false},
		{"AtTheBackupOnceTheVersionKeyExpired", func(t *testing.T, h *storetest.History) *switchyard.Revision {
			rev, _ := h.Current(ctx(t))
			return rev
		}, true},
		{"ThenAnotherRevision3", func(t *testing.T, h *storetest.History) *switchyard.Revision {
			return h.Change(t, switchyard.SetSystemFlag(switchyard.ExamMode, true))
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mr := miniredis.RunT(t)
			rdb := client(t, mr.Addr())
			h := storetest.NewHistory(t, memory.NewDemo())
			replica := func() *rediscache.Store {
				return rediscache.New(h, rdb, rediscache.WithPrefix(prefix), rediscache.WithLogger(slog.New(slog.DiscardHandler)))
			}
			a, b := replica(), replica()
			heard := heardRevisions(t, b)
			r2 := h.Change(t, switchyard.SetSystemFlag(switchyard.ExamMode, true))
			a.Announce(ctx(t), r2)
			lost := h.Change(t, switchyard.SetSystemFlag(switchyard.ExamMode, false))
			a.Announce(ctx(t), lost)
			hears(t, heard, lost)
			if _, _, err := a.CreateSession(ctx(t), evaluator.NewSnapshot("s-lost", "u", lost, time.Now(), time.Hour)); err != nil {
				t.Fatal(err)
			}

			h.Rewind(2)
			restored := tt.after(t, h)
			if tt.expired {
				mr.Del(prefix + "current")
			}
			// The store's feed reports the head once it reconnects.
			a.Announce(ctx(t), restored)
			for _, r := range []*rediscache.Store{a, b} {
				if r == b {
					hears(t, heard, restored)
				}
				if got, err := r.Current(ctx(t)); err != nil || got.ID != restored.ID {
					t.Fatalf("Current = %v, %v; want the restored %s", got, err, headOf(restored))
				}
			}
			if got, _ := mr.Get(prefix + "current"); got != headOf(restored) {
				t.Fatalf("version key = %q, want %s", got, headOf(restored))
			}
			if mr.Exists(prefix + "rev:" + lost.ID) {
				t.Fatalf("Redis still holds the lost revision %s", headOf(lost))
			}
			for deadline := time.Now().Add(10 * time.Second); mr.Exists(prefix + "session:s-lost"); {
				if time.Now().After(deadline) {
					t.Fatal("Redis still holds a session of the lost history")
				}
				time.Sleep(10 * time.Millisecond)
			}
			later := replica()
			hears(t, heardRevisions(t, later), restored)
			if got, err := later.Current(ctx(t)); err != nil || got.ID != restored.ID {
				t.Fatalf("a replica started after the restore: Current = %v, %v; want %s", got, err, headOf(restored))
			}
		})
	}
}
