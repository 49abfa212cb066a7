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
// Revisions are named by number and ID ("<number>:<id>") and cached under
// their ID: a database restored from an earlier backup numbers its next
// revisions as the lost ones were numbered, while Redis may still hold the
// lost ones. Whenever this cache reads the wrapped store's current
// revision (a miss, a resync, a change it applies, the store's own feed)
// and finds Redis or itself holding another revision numbered as high or
// higher, it asks the store whether it still has that one; when it does
// not, the history was rewound: the version key, the in-process revision
// and the listeners move to the store's revision, whatever its number,
// and the session snapshots Redis cached are dropped, since the store may
// have lost them too.
//
// Keys (with the default prefix "switchyard:"):
//
//	switchyard:current       the current revision, "<number>:<id>", TTL WithRedisTTL
//	switchyard:rev:<id>      that revision as JSON while it is the current one, TTL WithRedisTTL
//	switchyard:session:<id>  a session snapshot as JSON, until it expires
//	switchyard:revisions     the pub/sub channel announcing new revisions, "<number>:<id>"
package rediscache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
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
		if n, id, ok := parseHead(raw); ok {
			if rev, err := s.revisionByID(ctx, n, id); err == nil {
				return s.observe(rev), nil
			}
		}
	}
	rev, err := s.inner.Current(ctx)
	if err != nil {
		return nil, err
	}
	return s.learn(ctx, rev, false), nil
}

// Revision implements store.Store: the in-process current revision when
// it is n (revisions are immutable, so it serves past its TTL), else
// revision n from the wrapped store, which alone knows which revision its
// history numbers n. Concurrent misses load once.
func (s *Store) Revision(ctx context.Context, n int64) (*switchyard.Revision, error) {
	if e := s.current.Load(); e != nil && e.rev.Number == n {
		return e.rev, nil
	}
	v, err := s.once(ctx, "rev:"+strconv.FormatInt(n, 10), func(ctx context.Context) (any, error) {
		return s.inner.Revision(ctx, n)
	})
	if err != nil {
		return nil, err
	}
	return v.(*switchyard.Revision), nil
}

// revisionByID returns revision n, which must have ID id: in process, from
// Redis while it is the current one, else from the wrapped store. A store
// whose revision n is another one answers NOT_FOUND: the name came from a
// history it no longer holds, or from an announcement overtaken since.
// Concurrent misses load once.
func (s *Store) revisionByID(ctx context.Context, n int64, id string) (*switchyard.Revision, error) {
	if e := s.current.Load(); e != nil && e.rev.ID == id {
		return e.rev, nil
	}
	v, err := s.once(ctx, "id:"+id, func(ctx context.Context) (any, error) {
		if raw, ok := s.get(ctx, s.keys.revision+id); ok {
			if rev, err := decodeRevision(n, id, raw); err == nil {
				return rev, nil
			}
		}
		rev, err := s.inner.Revision(ctx, n)
		if err != nil {
			return nil, err
		}
		if rev.ID != id {
			return nil, switchyard.Errorf(switchyard.CodeNotFound, "revision %d is %s in the store, not %s", n, rev.ID, id)
		}
		return rev, nil
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
			if snap, ok := s.decodeSession(raw); ok {
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
			if cached, ok := s.decodeSession(raw); ok {
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

// decodeSession decodes a snapshot cached in Redis; ok is false when it
// cannot be served: it has expired, or it names its revision by number
// alone (cached by a version without revision IDs), so the store, which
// names it by ID, is asked instead.
func (s *Store) decodeSession(raw string) (snap switchyard.Snapshot, ok bool) {
	if err := json.Unmarshal([]byte(raw), &snap); err != nil || snap.RevisionID == "" || !s.cfg.now().Before(snap.ExpiresAt) {
		return switchyard.Snapshot{}, false
	}
	return snap, true
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
	s.learn(context.WithoutCancel(ctx), next, true)
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

// advanceScript sets the version key to ARGV[2] ("<number>:<id>", the
// number being ARGV[1]) unless it already names a higher number, and
// renews its TTL (ARGV[3] ms) when it names this very revision. A replica
// that read an old revision slowly therefore never moves the shared key
// backwards over a newer change. It returns what the key held before (""
// when nothing), so the caller can delete the revision that is no longer
// current, or find the key naming another revision as new as this one.
var advanceScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
local curN = nil
if cur then
	curN = tonumber(string.match(cur, '^(%d+):'))
end
local n = tonumber(ARGV[1])
if curN == nil or curN < n then
	redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
elseif cur == ARGV[2] then
	redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return cur or ''`)

// resetScript sets the version key to ARGV[2] (TTL ARGV[3] ms) if it
// holds ARGV[1], the revision of a history the store no longer holds,
// nothing, or ARGV[2] already (the caller's share set it, the key having
// expired); it returns 1 when it set the key. A replica that finds the
// version key moved on by another replica since leaves it alone.
var resetScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] and cur ~= ARGV[2] then
	return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`)

// head names a revision as the version key and the channel do.
func head(rev *switchyard.Revision) string {
	return strconv.FormatInt(rev.Number, 10) + ":" + rev.ID
}

// parseHead reads a revision's number and ID as head wrote them; ok is
// false for anything else, which the caller treats as a miss.
func parseHead(raw string) (n int64, id string, ok bool) {
	num, id, found := strings.Cut(raw, ":")
	n, err := strconv.ParseInt(num, 10, 64)
	if !found || err != nil || n < 1 || id == "" {
		return 0, "", false
	}
	return n, id, true
}

// share stores rev in Redis, advances the version key to it and, for a new
// revision, announces it on the channel. Redis keeps only the current
// revision: the one rev replaces is deleted, and so is rev when a newer
// one is current already. The revision's key lives as long as the version
// key naming it, and is renewed with it; the TTL only backs the deletion
// up. When the version key names another revision numbered as high as
// rev or higher, share returns its name (raw, as the key holds it), for
// the caller to tell a newer revision from one of a lost history.
func (s *Store) share(ctx context.Context, rev *switchyard.Revision, announce bool) (other string) {
	// Not json.Marshal(rev), which would scan the bytes again.
	data, err := rev.MarshalJSON()
	if err != nil {
		return ""
	}
	name := head(rev)
	s.do(ctx, func(ctx context.Context) error {
		if err := s.rdb.Set(ctx, s.keys.revision+rev.ID, data, s.cfg.redisTTL).Err(); err != nil {
			return fmt.Errorf("store revision %s: %w", name, err)
		}
		prev, err := advanceScript.Run(ctx, s.rdb, []string{s.keys.current}, rev.Number, name, s.cfg.redisTTL.Milliseconds()).Text()
		if err != nil {
			return fmt.Errorf("advance the version key to %s: %w", name, err)
		}
		var stale string
		switch pn, pid, ok := parseHead(prev); {
		case !ok || prev == name:
		case pn < rev.Number:
			stale = pid
		default:
			stale, other = rev.ID, prev
		}
		if stale != "" {
			if err := s.rdb.Del(ctx, s.keys.revision+stale).Err(); err != nil {
				return fmt.Errorf("delete revision %s, no longer current: %w", stale, err)
			}
		}
		if announce {
			if err := s.rdb.Publish(ctx, s.keys.channel, name).Err(); err != nil {
				return fmt.Errorf("announce revision %s: %w", name, err)
			}
		}
		return nil
	})
	return other
}

// learn takes rev as the wrapped store's current revision (read from it,
// or just committed to it), shares it and installs it in process, and
// returns the revision served now. When Redis, or else this replica, holds
// another revision numbered as high or higher, that one is newer (this
// read raced a commit) or of a history the store no longer holds: the
// store is asked, and in the second case the history was rewound, and
// reset moves Redis and this replica to rev.
func (s *Store) learn(ctx context.Context, rev *switchyard.Revision, announce bool) *switchyard.Revision {
	other := s.share(ctx, rev, announce)
	if n, id, ok := parseHead(other); ok {
		named := &switchyard.Revision{Number: n, ID: id}
		if !s.lost(ctx, named) {
			return s.observe(rev)
		}
		s.reset(ctx, rev, named, other)
		return rev
	}
	if e := s.current.Load(); e != nil && e.rev.ID != rev.ID && e.rev.Number >= rev.Number && s.lost(ctx, e.rev) {
		s.reset(ctx, rev, e.rev, other)
		return rev
	}
	return s.observe(rev)
}

// lost reports whether the wrapped store's history no longer holds rev:
// its revision of that number is another one, or there is none. A store
// that cannot say is taken to hold it: only the truth rewinds.
func (s *Store) lost(ctx context.Context, rev *switchyard.Revision) bool {
	have, err := s.inner.Revision(ctx, rev.Number)
	switch {
	case switchyard.ErrorCode(err) == switchyard.CodeNotFound:
		return true
	case err != nil:
		return false
	}
	return have.ID != rev.ID
}

// reset moves this replica and Redis to rev, the current revision of a
// history that replaced the one they held (a database restored from an
// earlier backup), lost being the one they held: lost leaves Redis; the
// version key names rev, unless another replica has moved it on since (it
// held prev, the lost one's name or nothing, or rev's), and then rev is
// announced and the session snapshots Redis cached are dropped, since
// they may name revisions and sessions the store has lost; then the
// in-process revision and the listeners move to rev, whatever its number.
func (s *Store) reset(ctx context.Context, rev, lost *switchyard.Revision, prev string) {
	s.cfg.log.Warn("the store's history was rewound (restored from an earlier backup?): serving its current revision",
		"revision", rev.Number, "id", rev.ID, "was", lost.Number, "was_id", lost.ID)
	if data, err := rev.MarshalJSON(); err == nil {
		name := head(rev)
		s.do(ctx, func(ctx context.Context) error {
			if err := s.rdb.Set(ctx, s.keys.revision+rev.ID, data, s.cfg.redisTTL).Err(); err != nil {
				return fmt.Errorf("store revision %s: %w", name, err)
			}
			if err := s.rdb.Del(ctx, s.keys.revision+lost.ID).Err(); err != nil {
				return fmt.Errorf("delete revision %s of the lost history: %w", head(lost), err)
			}
			set, err := resetScript.Run(ctx, s.rdb, []string{s.keys.current}, prev, name, s.cfg.redisTTL.Milliseconds()).Int()
			if err != nil || set == 0 {
				return err
			}
			go s.dropSessions()
			return s.rdb.Publish(ctx, s.keys.channel, name).Err()
		})
	}
	s.current.Store(&currentEntry{rev: rev, expires: s.cfg.now().Add(s.cfg.localTTL)})
	s.listeners.reset(rev)
}

// dropSessionsTimeout bounds dropping the cached session snapshots after
// a rewind; a batch of keys is deleted per round trip.
const dropSessionsTimeout = time.Minute

// dropSessions deletes every session snapshot cached in Redis, so that
// each is read again from the store, which holds the sessions of its
// history only. It runs after a rewind, once, on the replica that reset
// the shared state; a failure leaves the rest to expire.
func (s *Store) dropSessions() {
	ctx, cancel := context.WithTimeout(context.Background(), dropSessionsTimeout)
	defer cancel()
	iter := s.rdb.Scan(ctx, 0, s.keys.session+"*", 1000).Iterator()
	var keys []string
	drop := func() error {
		if len(keys) == 0 {
			return nil
		}
		err := s.rdb.Unlink(ctx, keys...).Err()
		keys = keys[:0]
		return err
	}
	for iter.Next(ctx) {
		if keys = append(keys, iter.Val()); len(keys) == 1000 {
			if err := drop(); err != nil {
				s.cfg.log.Warn("drop the cached sessions of a rewound history", "err", err)
				return
			}
		}
	}
	if err := errors.Join(iter.Err(), drop()); err != nil {
		s.cfg.log.Warn("drop the cached sessions of a rewound history", "err", err)
	}
}

// observe installs rev as the in-process current revision unless a newer
// one is installed, restarting its TTL, hands a new revision to the
// listeners' delivery goroutine and returns the newer of the two: a
// number seen once never goes backwards, but through reset, and a
// revision of the number installed does not replace it (only learn, which
// asks the store, can tell which of the two is the store's).
func (s *Store) observe(rev *switchyard.Revision) *switchyard.Revision {
	next := &currentEntry{rev: rev, expires: s.cfg.now().Add(s.cfg.localTTL)}
	for {
		old := s.current.Load()
		if old != nil && (old.rev.Number > rev.Number || old.rev.Number == rev.Number && old.rev.ID != rev.ID) {
			return old.rev
		}
		if s.current.CompareAndSwap(old, next) {
			s.listeners.notify(rev)
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

// decodeRevision decodes revision n, ID id, as Redis caches it.
func decodeRevision(n int64, id, raw string) (*switchyard.Revision, error) {
	var r switchyard.Revision
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return nil, fmt.Errorf("decode cached revision %d: %w", n, err)
	}
	if r.Number != n || r.ID != id {
		return nil, fmt.Errorf("cached revision %d:%s holds revision %d:%s", n, id, r.Number, r.ID)
	}
	if r.Overrides == nil {
		r.Overrides = map[string]switchyard.Override{}
	}
	return &r, nil
}
