package control

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/internal/lru"
	"github.com/switchyard-dev/switchyard/store"
)

// oldRevisionsBytes bounds the compiled flag sets kept for revisions that
// pinned sessions still read, in bytes as evaluator.FlagSet.Size
// estimates them: what each holds beyond the flag set it was compiled
// from. Old revisions share their compiled flags with the revision that
// followed them, so one that only toggled a switch counts a few kilobytes
// and thousands fit; one whose flags were replaced counts them all. A
// revision evicted and read again is compiled from the current one, which
// costs what differs between them.
const oldRevisionsBytes = 32 << 20

// compiled is the current revision and its flag set, as loaded at a time.
type compiled struct {
	rev    *switchyard.Revision
	set    *evaluator.FlagSet
	loaded time.Time
	// installed is when this revision was installed; loaded moves on each
	// time the store confirms it.
	installed time.Time
	// fallback is set on the conservative fallback, served until the
	// store is first reached.
	fallback bool
	// stale is set on a revision read from the last-known-good file, served
	// until the store answers; from is the store the file was written from.
	stale bool
	from  store.Identity
}

// replaceable reports whether any revision the store returns must replace
// c: the fallback and the file's revision are only stand-ins for the store.
func (c *compiled) replaceable() bool { return c == nil || c.fallback || c.stale }

// flagSets serves compiled flag sets: the current revision's from an
// atomic pointer, reloaded from the store when older than the TTL, and old
// revisions' (for pinned sessions) from a bounded cache. Revisions are
// immutable, so a compiled set never goes bad, only out of date.
type flagSets struct {
	logger *slog.Logger
	store  store.Store
	mode   string
	ttl    time.Duration
	now    func() time.Time
	// stateDir holds the last-known-good file; empty: no file.
	stateDir string

	// storeErr is the failure of the last read of the current revision;
	// nil once the store has answered. /readyz reports it.
	storeErr atomic.Pointer[error]
	// The state file is written off the path of the change that installed
	// the revision: encoding and syncing a revision of thousands of flags
	// takes tens of milliseconds, which the emergency brake must not wait
	// for. stateMu guards the writer: pending is the newest revision not
	// yet written, written the revision the file holds (so an older one
	// never replaces it), and stateIdle, while a write is under way, the
	// channel closed when the writer has nothing left to write.
	stateMu   sync.Mutex
	pending   *switchyard.Revision
	written   int64
	stateIdle chan struct{}

	cur       atomic.Pointer[compiled]
	reloading atomic.Bool
	old       *lru.Cache[int64, *evaluator.FlagSet]
	// changes hears of every newly installed revision, for /v1/stream.
	changes *broadcaster
	// obs hears of every newly installed revision, for metrics.
	obs Observer
}

func newFlagSets(logger *slog.Logger, st store.Store, mode string, ttl time.Duration, now func() time.Time, stateDir string, obs Observer) *flagSets {
	return &flagSets{logger: logger, store: st, mode: mode, ttl: ttl, now: now, stateDir: stateDir,
		old: lru.NewSized[int64](oldRevisionsBytes, (*evaluator.FlagSet).Size), changes: newBroadcaster(), obs: obs}
}

// warm loads the current revision. When the store does not answer it
// installs the last-known-good file's revision, or else the conservative
// fallback, stamped as never loaded, so the next read tries the store
// again.
func (f *flagSets) warm(ctx context.Context) {
	// What the file was written from is read before the store is: a
	// revision installed from the store is written over it.
	var from store.Identity
	var hasFile bool
	if f.stateDir != "" {
		from, hasFile = stateFileStore(f.stateDir, f.mode)
	}
	err := f.reload(ctx)
	if err == nil {
		if hasFile {
			f.replacingFile(from)
		}
		return
	}
	f.logger.Error("the store does not answer at start; serving a stand-in until it does", "err", err)
	if f.stateDir != "" {
		rev, ferr := ReadStateFile(f.stateDir, f.mode, identityOf(f.store))
		var fs *evaluator.FlagSet
		if ferr == nil {
			fs, ferr = evaluator.Compile(rev, f.mode)
		}
		if ferr == nil {
			f.logger.Warn("serving the last-known-good revision from the state file", "revision", rev.Number, "dir", f.stateDir)
			f.cur.CompareAndSwap(nil, &compiled{rev: rev, set: fs, stale: true, from: from, installed: f.now()})
			return
		}
		f.logger.Error("ignoring the state file; serving the conservative fallback", "dir", f.stateDir, "err", ferr)
	}
	fs, err := evaluator.Compile(switchyard.ConservativeFallback(), f.mode)
	if err != nil {
		// The fallback is built into the binary; failing to compile it is a
		// programming error that no configuration can cause.
		panic(fmt.Sprintf("compile the conservative fallback: %v", err))
	}
	f.cur.CompareAndSwap(nil, &compiled{rev: switchyard.ConservativeFallback(), set: fs, fallback: true, installed: f.now()})
}

// replacingFile warns, once the store has answered, when the state file it
// replaces was written from another store: the replica was pointed at
// another database than the one it served before, which may be a mistake.
// The file is not served (the store's revision is) and is written over.
func (f *flagSets) replacingFile(from store.Identity) {
	if err := sameStore(from, identityOf(f.store)); err != nil {
		f.logger.Warn("the state file cannot stand in for this database; ignoring it and serving the database's revision",
			"dir", f.stateDir, "err", err)
	}
}

// live returns the current flag set. When it is older than the TTL, one
// caller reloads it from the store while the others keep serving the one
// they have; a failed reload keeps the last known good and waits a TTL
// before trying again.
func (f *flagSets) live(ctx context.Context) *compiled {
	c := f.cur.Load()
	if f.now().Sub(c.loaded) < f.ttl || !f.reloading.CompareAndSwap(false, true) {
		return c
	}
	defer f.reloading.Store(false)
	// The reload serves every later reader, so the caller hanging up must
	// not abort it.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readTimeout)
	defer cancel()
	if err := f.reload(rctx); err != nil {
		f.logger.Warn("reload the current revision; serving the last known good",
			"revision", c.rev.Number, "fallback", c.fallback, "err", err)
		retry := *c
		retry.loaded = f.now()
		f.cur.CompareAndSwap(c, &retry)
	}
	return f.cur.Load()
}

// announced installs revision n, announced by the store as committed
// (possibly by another replica). A failure is only logged: the TTL reload
// is the backstop.
func (f *flagSets) announced(n int64) {
	if c := f.cur.Load(); !c.replaceable() && c.rev.Number >= n {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	rev, err := f.store.Revision(ctx, n)
	if err != nil {
		f.logger.Warn("read an announced revision; the cache TTL will catch up", "revision", n, "err", err)
		return
	}
	f.learn(rev)
}

// reload reads the store's current revision and installs it.
func (f *flagSets) reload(ctx context.Context) error {
	rev, err := f.store.Current(ctx)
	if err != nil {
		err = fmt.Errorf("read the current revision: %w", err)
		if f.storeErr.Swap(&err) == nil {
			if c := f.cur.Load(); c != nil {
				// Once per outage; warm says so for a start.
				f.logger.Error("the store does not answer; serving a stand-in until it does", "mode", f.mode, "serving", servedReason(c), "err", err)
			}
		}
		return err
	}
	return f.learn(rev)
}

// learn is how every revision read from the store reaches the flag set,
// whoever read it (a write, a reload, an announcement, a status read, a
// session pinned): it records that the store answered, so the service
// recovers at once rather than at the next TTL, and installs rev. A
// failure to install is logged and returned; the caller's own answer does
// not depend on it.
func (f *flagSets) learn(rev *switchyard.Revision) error {
	if f.storeErr.Swap(nil) != nil {
		f.logger.Info("the store answers again; serving its revision", "mode", f.mode, "revision", rev.Number)
	}
	err := f.install(rev)
	if err != nil {
		f.logger.Error("install a revision read from the store", "revision", rev.Number, "err", err)
	}
	return err
}

// install makes rev the current revision unless a newer one is already
// installed (a slow reload must not undo a write this process just made);
// it is the only place that does. rev is compiled from the current flag
// set, so only what it changes is compiled. A new revision is published to
// streams and saved to the state file (without waiting for the write); the
// revision it replaces stays cached for the sessions pinned to it.
func (f *flagSets) install(rev *switchyard.Revision) error {
	now := f.now()
	var fs *evaluator.FlagSet
	for {
		c := f.cur.Load()
		if !c.replaceable() && c.rev.Number >= rev.Number {
			if c.rev.Number > rev.Number {
				return nil
			}
			// The same revision: it is unchanged, only confirmed fresh.
			fresh := *c
			fresh.loaded = now
			if f.cur.CompareAndSwap(c, &fresh) {
				return nil
			}
			continue
		}
		if fs == nil {
			var base *evaluator.FlagSet
			if c != nil {
				base = c.set
			}
			// Installing serves every later reader, so no caller's deadline
			// bounds it.
			var err error
			if fs, err = evaluator.CompileFrom(context.Background(), base, rev, f.mode); err != nil {
				return fmt.Errorf("compile revision %d: %w", rev.Number, err)
			}
		}
		if f.cur.CompareAndSwap(c, &compiled{rev: rev, set: fs, loaded: now, installed: now}) {
			if c != nil && c.stale {
				f.replacingFile(c.from)
			}
			var prev *switchyard.Revision
			if c != nil && !c.fallback {
				f.old.Add(c.rev.Number, c.set)
				prev = c.rev
			}
			if !c.replaceable() {
				f.obs.Installed(rev, now)
			}
			f.changes.publish(prev, rev, f.mode)
			f.save(rev)
			return nil
		}
	}
}

// save has rev written to the state file, unless the file holds a newer
// revision or one is waiting to be written. It does not wait for the
// write: one goroutine writes at a time, and the revisions installed
// meanwhile are written as one, the newest. A failure is only logged: the
// file serves a later cold start, never the request that installed rev.
func (f *flagSets) save(rev *switchyard.Revision) {
	if f.stateDir == "" {
		return
	}
	f.stateMu.Lock()
	defer f.stateMu.Unlock()
	if f.pending != nil && f.pending.Number >= rev.Number {
		return
	}
	f.pending = rev
	if f.stateIdle == nil {
		f.stateIdle = make(chan struct{})
		go f.writeState()
	}
}

// writeState writes the pending revision to the state file until none is
// left, then closes stateIdle.
func (f *flagSets) writeState() {
	f.stateMu.Lock()
	defer f.stateMu.Unlock()
	for f.pending != nil {
		rev := f.pending
		f.pending = nil
		if rev.Number <= f.written {
			continue
		}
		f.stateMu.Unlock()
		err := writeStateFile(f.stateDir, rev, f.mode, identityOf(f.store), f.now())
		f.stateMu.Lock()
		if err != nil {
			f.logger.Error("write the last-known-good state file", "revision", rev.Number, "err", err)
			continue
		}
		f.written = rev.Number
	}
	close(f.stateIdle)
	f.stateIdle = nil
}

// flush waits until the state file holds the revisions saved so far, or
// ctx ends.
func (f *flagSets) flush(ctx context.Context) error {
	f.stateMu.Lock()
	idle := f.stateIdle
	f.stateMu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("write the last-known-good state file: %w", ctx.Err())
	}
}

// lastStoreError returns the failure of the last read of the current
// revision, or nil when the store answered it.
func (f *flagSets) lastStoreError() error {
	if p := f.storeErr.Load(); p != nil {
		return *p
	}
	return nil
}

// forRevision returns the flag set of revision n, for a session pinned to
// it. A revision not cached is compiled from the current flag set, sharing
// every flag the two define alike.
func (f *flagSets) forRevision(ctx context.Context, n int64) (*evaluator.FlagSet, error) {
	c := f.cur.Load()
	if !c.fallback && c.rev.Number == n {
		return c.set, nil
	}
	if fs, ok := f.old.Get(n); ok {
		return fs, nil
	}
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	rev, err := f.store.Revision(rctx, n)
	if err != nil {
		return nil, fmt.Errorf("load revision %d: %w", n, err)
	}
	fs, err := evaluator.CompileFrom(rctx, c.set, rev, f.mode)
	if err != nil {
		return nil, fmt.Errorf("compile revision %d: %w", n, err)
	}
	f.old.Add(n, fs)
	return fs, nil
}

// revision returns revision n itself, for GET /v1/bundle?revision=N.
func (f *flagSets) revision(ctx context.Context, n int64) (*switchyard.Revision, error) {
	if c := f.cur.Load(); !c.fallback && c.rev.Number == n {
		return c.rev, nil
	}
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	rev, err := f.store.Revision(rctx, n)
	if err != nil {
		return nil, fmt.Errorf("load revision %d: %w", n, err)
	}
	return rev, nil
}
