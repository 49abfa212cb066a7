// Package rediscache is the shared TTL cache in front of any store.Store:
// Redis holds the current revision number, the current revision itself
// and session snapshots for every replica, and each replica keeps the
// current revision in process. Session snapshots it does not keep in
// process: the server above keeps the one in-process snapshot cache,
// whichever store it runs on. A commit is announced on a Redis channel and
// in a shared version key that every replica polls, so a change reaches
// all replicas within milliseconds; the TTLs are only the last backstop.
//
// Redis is never on the critical path: every call has a short deadline, a
// failure falls back to the wrapped store (the truth), is logged once per
// outage and counted, and reads skip Redis for a moment after a failure so
// an outage does not cost every read a deadline.
//
// Only the current revision is shared: a revision with thousands of flags
// weighs megabytes, and every replica needs the current one at once, while
// an older one is read now and then, for the sessions pinned to it, by the
// replicas that no longer hold it compiled. So Redis holds one revision
// (the revision that replaces it deletes it), and an older revision is
// read from the wrapped store.
//
// Keys (with the default prefix "switchyard:"):
//
//	switchyard:current       the current revision number, TTL WithRedisTTL
//	switchyard:rev:<n>       revision n as JSON while it is the current one, TTL WithRedisTTL
//	switchyard:session:<id>  a session snapshot as JSON, until it expires
//	switchyard:revisions     the pub/sub channel announcing new numbers
package rediscache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
)

var (
	_ store.Store    = (*Store)(nil)
	_ store.Notifier = (*Store)(nil)
)

// Defaults, chosen so that Redis speeds reads up without ever slowing one
// down noticeably: go-redis' own defaults spend seconds on a dead server.
const (
	DefaultPrefix       = "switchyard:"
	DefaultLocalTTL     = 5 * time.Second
	DefaultRedisTTL     = 10 * time.Second
	DefaultTimeout      = 250 * time.Millisecond
	DefaultPollInterval = 2 * time.Second
)

// Store is a store.Store that caches another one in Redis and in process.
// Create it with New; it is safe for concurrent use. Run keeps it in step
// with the other replicas.
type Store struct {
	inner store.Store
	rdb   redis.UniversalClient
	cfg   config
	keys  keys

	group     singleflight.Group
	current   atomic.Pointer[currentEntry]
	health    health
	listeners notifier
}

// currentEntry is the in-process current revision and when it stops being
// trusted without asking Redis.
type currentEntry struct {
	rev     *switchyard.Revision
	expires time.Time
}

type config struct {
	prefix       string
	localTTL     time.Duration
	redisTTL     time.Duration
	timeout      time.Duration
	pollInterval time.Duration
	log          *slog.Logger
	now          func() time.Time
	announced    func(channel string)
}

type keys struct {
	current, revision, session, channel string
}

// Option configures New.
type Option func(*config)

// WithPrefix sets the prefix of every key and of the channel, so several
// deployments (or parallel tests) can share one Redis.
func WithPrefix(p string) Option { return func(c *config) { c.prefix = p } }

// WithLocalTTL sets how long a replica trusts its in-process current
// revision without asking Redis (the binary's --cache-ttl). Invalidation
// normally replaces it much sooner; the TTL bounds staleness when every
// announcement was lost.
func WithLocalTTL(d time.Duration) Option { return func(c *config) { c.localTTL = d } }

// WithRedisTTL sets the TTL of the shared current-revision key (the
// binary's --redis-ttl); once it lapses the next reader reloads it from
// the wrapped store.
func WithRedisTTL(d time.Duration) Option { return func(c *config) { c.redisTTL = d } }

// WithTimeout sets the deadline of every Redis call. A dead Redis costs a
// read at most this long, and then nothing until the next probe.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithPollInterval sets the mean interval at which Run compares the shared
// version key with the in-process revision (jittered by ±25% so replicas
// spread out). It is also how long reads skip Redis after a failure.
func WithPollInterval(d time.Duration) Option { return func(c *config) { c.pollInterval = d } }

// WithLogger sets the logger that hears of Redis outages, once each;
// slog.Default when unset.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithAnnouncements sets the function that hears of each revision
// announcement Run receives, for metrics: channel is "pubsub" for a
// message on the Redis channel and "poll" for a poll of the version key
// that found a newer revision.
func WithAnnouncements(fn func(channel string)) Option { return func(c *config) { c.announced = fn } }

// WithClock sets the clock that ages in-process entries and judges
// session expiry; tests use it to move time.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// New wraps inner with a cache in the Redis behind client (see NewClient).
// It does not contact Redis: a cache whose Redis is down still serves
// reads from inner.
func New(inner store.Store, client redis.UniversalClient, opts ...Option) *Store {
	c := config{
		prefix: DefaultPrefix, localTTL: DefaultLocalTTL, redisTTL: DefaultRedisTTL,
		timeout: DefaultTimeout, pollInterval: DefaultPollInterval,
		log: slog.Default(), now: time.Now, announced: func(string) {},
	}
	for _, o := range opts {
		o(&c)
	}
	return &Store{
		inner: inner, rdb: client, cfg: c,
		keys: keys{
			current: c.prefix + "current", revision: c.prefix + "rev:",
			session: c.prefix + "session:", channel: c.prefix + "revisions",
		},
	}
}

// Health reports whether Redis answered the last call and why not.
func (s *Store) Health() Health { return s.health.snapshot() }

// Current implements store.Store: the in-process revision while its TTL
// lasts, else the number in the shared version key and that revision from
// the caches, else the wrapped store. Concurrent misses load once.
func (s *Store) Current(ctx context.Context) (*switchyard.Revision, error) {
	if e := s.current.Load(); e != nil && s.cfg.now().Before(e.expires) {
		return e.rev, nil
	}
	v, err := s.once(ctx, "current", func(ctx context.Context) (any, error) { return s.loadCurrent(ctx) })
	if err != nil {
		return nil, err
	}
	return v.(*switchyard.Revision), nil
}

func (s *Store) loadCurrent(ctx context.Context) (*switchyard.Revision, error) {
	if raw, ok := s.get(ctx, s.keys.current); ok {
		if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
			if rev, err := s.Revision(ctx, n); err == nil {
				return s.observe(rev), nil
			}
		}
	}
	rev, err := s.inner.Current(ctx)
	if err != nil {
		return nil, err
	}
	s.share(ctx, rev, false)
	return s.observe(rev), nil
}

// Revision implements store.Store: the in-process current revision when
// it is n (revisions are immutable, so it serves past its TTL), else
// revision n from Redis while it is the current one, else from the wrapped
// store. Concurrent misses load once.
func (s *Store) Revision(ctx context.Context, n int64) (*switchyard.Revision, error) {
	if e := s.current.Load(); e != nil && e.rev.Number == n {
		return e.rev, nil
	}
	v, err := s.once(ctx, "rev:"+strconv.FormatInt(n, 10), func(ctx context.Context) (any, error) {
		if raw, ok := s.get(ctx, s.keys.revision+strconv.FormatInt(n, 10)); ok {
			if rev, err := decodeRevision(n, raw); err == nil {
				return rev, nil
			}
		}
		return s.inner.Revision(ctx, n)
	})
	if err != nil {
		return nil, err
	}
	return v.(*switchyard.Revision), nil
}

// Session implements store.Store: the snapshot from Redis, else from the
// wrapped store. A snapshot never changes, so it is cached in Redis until it
// expires; NOT_FOUND is never cached, because the session may be created a
// moment later.
func (s *Store) Session(ctx context.Context, id string) (switchyard.Snapshot, error) {
	if switchyard.ValidateSessionID(id) != nil {
		// No such session can exist; the store says so without a cache key.
		return s.inner.Session(ctx, id)
	}
	v, err := s.once(ctx, "session:"+id, func(ctx context.Context) (any, error) {
		if raw, ok := s.get(ctx, s.keys.session+id); ok {
			var snap switchyard.Snapshot
			if err := json.Unmarshal([]byte(raw), &snap); err == nil && s.cfg.now().Before(snap.ExpiresAt) {
				return snap, nil
			}
		}
		snap, err := s.inner.Session(ctx, id)
		if err != nil {
			return nil, err
		}
		s.cacheSession(ctx, snap)
		return snap, nil
	})
	if err != nil {
		return switchyard.Snapshot{}, err
	}
	return v.(switchyard.Snapshot), nil
}

// CreateSession implements store.Store. A session already cached in Redis
// has its snapshot there for good (snapshots never change, and the first
// writer's is the one cached), so it is returned without asking the
// wrapped store; otherwise the wrapped store decides which writer wins, and
// whatever it returns is the snapshot, so that is cached.
func (s *Store) CreateSession(ctx context.Context, snap switchyard.Snapshot) (switchyard.Snapshot, bool, error) {
	if switchyard.ValidateSessionID(snap.SessionID) == nil {
		if raw, ok := s.get(ctx, s.keys.session+snap.SessionID); ok {
			var cached switchyard.Snapshot
			if err := json.Unmarshal([]byte(raw), &cached); err == nil && s.cfg.now().Before(cached.ExpiresAt) {
				return cached, false, nil
			}
		}
	}
	stored, created, err := s.inner.CreateSession(ctx, snap)
	if err != nil {
		return stored, created, err
	}
	s.cacheSession(context.WithoutCancel(ctx), stored)
	return stored, created, nil
}

// cacheSession keeps a live snapshot in Redis until it expires; an expired
// one is not cached at all.
func (s *Store) cacheSession(ctx context.Context, snap switchyard.Snapshot) {
	ttl := snap.ExpiresAt.Sub(s.cfg.now())
	if ttl <= 0 {
		return
	}
	data, err := json.Marshal(snap)
	if err != nil {
		return
	}
	s.do(ctx, func(ctx context.Context) error { return s.rdb.Set(ctx, s.keys.session+snap.SessionID, data, ttl).Err() })
}

// Apply implements store.Store. After a successful change the new revision
// is stored in Redis, the shared version key moves to it and the number is
// published, so other replicas switch at once; then OnChange listeners are
// told of it, after Apply has returned or while it does. The change itself is the wrapped store's: a Redis failure after it
// never turns it into an error.
func (s *Store) Apply(ctx context.Context, c store.Change) (*switchyard.Revision, store.AuditEntry, error) {
	next, entry, err := s.inner.Apply(ctx, c)
	if err != nil {
		return next, entry, err
	}
	s.share(context.WithoutCancel(ctx), next, true)
	s.observe(next)
	return next, entry, nil
}

// Reject implements store.Store; rejections change no revision.
func (s *Store) Reject(ctx context.Context, a store.Attempt, why error) (store.AuditEntry, error) {
	return s.inner.Reject(ctx, a, why)
}

// Record implements store.Store; a recorded change makes no revision.
func (s *Store) Record(ctx context.Context, a store.Attempt, before, after any) (store.AuditEntry, error) {
	return s.inner.Record(ctx, a, before, after)
}

// Keyed implements store.Store; idempotency keys are read from the truth.
func (s *Store) Keyed(ctx context.Context, key string) (store.Keyed, error) {
	return s.inner.Keyed(ctx, key)
}

// Audit implements store.Store; the audit log is read from the truth.
func (s *Store) Audit(ctx context.Context, q store.AuditQuery) ([]store.AuditEntry, error) {
	return s.inner.Audit(ctx, q)
}

// VerifyAudit implements store.Store; verification reads the truth.
func (s *Store) VerifyAudit(ctx context.Context) (store.Verification, error) {
	return s.inner.VerifyAudit(ctx)
}

// advanceScript sets the version key to ARGV[1] unless it already holds a
// higher number, and renews its TTL (ARGV[2] ms) when it holds this one.
// A replica that read an old revision slowly therefore never moves the
// shared key backwards over a newer change. It returns the number the key
// held before (0 when none), so the caller can delete the revision that is
// no longer current.
var advanceScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]))
local n = tonumber(ARGV[1])
if cur == nil or cur < n then
	redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
elseif cur == n then
	redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return cur or 0`)

// share stores rev in Redis, advances the version key to it and, for a new
// revision, announces it on the channel. Redis keeps only the current
// revision: the one rev replaces is deleted, and so is rev when a newer
// one is current already. The revision's key lives as long as the version
// key naming it, and is renewed with it; the TTL only backs the deletion
// up.
func (s *Store) share(ctx context.Context, rev *switchyard.Revision, announce bool) {
	// Not json.Marshal(rev), which would scan the bytes again.
	data, err := rev.MarshalJSON()
	if err != nil {
		return
	}
	n := strconv.FormatInt(rev.Number, 10)
	s.do(ctx, func(ctx context.Context) error {
		if err := s.rdb.Set(ctx, s.keys.revision+n, data, s.cfg.redisTTL).Err(); err != nil {
			return fmt.Errorf("store revision %s: %w", n, err)
		}
		prev, err := advanceScript.Run(ctx, s.rdb, []string{s.keys.current}, n, s.cfg.redisTTL.Milliseconds()).Int64()
		if err != nil {
			return fmt.Errorf("advance the version key to %s: %w", n, err)
		}
		var stale int64
		switch {
		case prev > rev.Number:
			stale = rev.Number
		case prev > 0 && prev < rev.Number:
			stale = prev
		}
		if stale > 0 {
			if err := s.rdb.Del(ctx, s.keys.revision+strconv.FormatInt(stale, 10)).Err(); err != nil {
				return fmt.Errorf("delete revision %d, no longer current: %w", stale, err)
			}
		}
		if announce {
			if err := s.rdb.Publish(ctx, s.keys.channel, n).Err(); err != nil {
				return fmt.Errorf("announce revision %s: %w", n, err)
			}
		}
		return nil
	})
}

// observe installs rev as the in-process current revision unless a newer
// one is installed, restarting its TTL, hands a new number to the
// listeners' delivery goroutine and
// returns the newer of the two: a number seen once never goes backwards.
func (s *Store) observe(rev *switchyard.Revision) *switchyard.Revision {
	next := &currentEntry{rev: rev, expires: s.cfg.now().Add(s.cfg.localTTL)}
	for {
		old := s.current.Load()
		if old != nil && old.rev.Number > rev.Number {
			return old.rev
		}
		if s.current.CompareAndSwap(old, next) {
			s.listeners.notify(rev.Number)
			return rev
		}
	}
}

// once runs load for key at most once at a time, whoever asks. The load
// does not inherit the caller's cancellation, so one caller giving up does
// not fail the others; every call inside it carries its own deadline.
func (s *Store) once(ctx context.Context, key string, load func(context.Context) (any, error)) (any, error) {
	ch := s.group.DoChan(key, func() (any, error) { return load(context.WithoutCancel(ctx)) })
	select {
	case r := <-ch:
		return r.Val, r.Err
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.Canceled) {
			// The caller left; nothing failed.
			return nil, fmt.Errorf("read %s: %w", key, ctx.Err())
		}
		return nil, switchyard.Errorf(switchyard.CodeUnavailable, "read %s: %v", key, ctx.Err())
	}
}

// get reads a string key; ok is false on a miss or when Redis failed or is
// being skipped after a failure.
func (s *Store) get(ctx context.Context, key string) (string, bool) {
	var raw string
	err := s.do(ctx, func(ctx context.Context) error {
		var err error
		raw, err = s.rdb.Get(ctx, key).Result()
		return err
	})
	return raw, err == nil
}

// errSkipped says that a call was not made because Redis failed recently.
var errSkipped = errors.New("redis skipped after a recent failure")

// do runs one Redis call under the deadline, unless Redis failed within the
// last poll interval, and records the outcome. A miss (redis.Nil) is a
// successful call.
func (s *Store) do(ctx context.Context, call func(context.Context) error) error {
	if !s.health.usable(s.cfg.now()) {
		return errSkipped
	}
	return s.probe(ctx, call)
}

// probe runs one Redis call under the deadline even when Redis is being
// skipped, and records the outcome; the invalidation loop probes so that
// recovery is noticed without waiting for a read.
func (s *Store) probe(ctx context.Context, call func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	err := call(ctx)
	if err == nil || errors.Is(err, redis.Nil) {
		if down := s.health.ok(s.cfg.now()); down > 0 {
			s.cfg.log.Info("redis is reachable again; caching through it", "down_for", down.Round(time.Millisecond))
		}
		return err
	}
	if s.health.fail(err, s.cfg.now(), s.cfg.pollInterval) {
		s.cfg.log.Warn("redis is unreachable; reading the store directly until it answers", "err", err)
	}
	return err
}

func decodeRevision(n int64, raw string) (*switchyard.Revision, error) {
	var r switchyard.Revision
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return nil, fmt.Errorf("decode cached revision %d: %w", n, err)
	}
	if r.Number != n {
		return nil, fmt.Errorf("cached revision %d holds revision %d", n, r.Number)
	}
	if r.Overrides == nil {
		r.Overrides = map[string]switchyard.Override{}
	}
	return &r, nil
}
