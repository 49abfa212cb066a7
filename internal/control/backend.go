package control

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/lru"
	"github.com/switchyard-dev/switchyard/store"
)

// backend is what serves one mode: its store, the flag sets compiled from
// it and the session snapshots read from it. A live mode switch builds a
// new backend, checks it, swaps it in and retires the old one; nothing of
// one backend (a cached snapshot, an old flag set) reaches the other.
type backend struct {
	mode      string
	store     store.Store
	flags     *flagSets
	snapshots *lru.Cache[string, switchyard.Snapshot]
	// release frees what the store holds (pools, background loops); nil
	// when the caller of New owns the store.
	release func()

	// inUse is read-locked by every request for as long as it uses the
	// backend; retiring takes the write lock, so the store is released only
	// once those requests are done, and none fails half-way.
	inUse   sync.RWMutex
	retired bool
	// done is closed when the backend stops (a switch retires it, or the
	// core closes): open streams end and their clients reconnect, the
	// write-back of local pins ends, closing writeBackDone, and the
	// scheduler of change requests ends, closing schedulerDone.
	done          chan struct{}
	stopOnce      sync.Once
	writeBackDone chan struct{}
	schedulerDone chan struct{}
	// pins are the sessions pinned while the store could not store them.
	pins *pins
	// writeErr is why the last change failed when the store did not
	// answer it; nil once a change succeeds.
	writeErr atomic.Pointer[error]
}

// wrote records the outcome of a change: a store that did not answer
// makes the backend degraded until a change succeeds.
func (b *backend) wrote(err error) {
	switch {
	case err == nil:
		b.writeErr.Store(nil)
	case switchyard.AsError(err).Code == switchyard.CodeUnavailable:
		b.writeErr.Store(&err)
	}
}

// writeFailure returns why the last change failed, when the store did not
// answer it.
func (b *backend) writeFailure() error {
	if p := b.writeErr.Load(); p != nil {
		return *p
	}
	return nil
}

// newBackend wraps st for mode and loads its current revision. The flag
// sets hear of revisions committed elsewhere when the store announces them.
func (c *Core) newBackend(ctx context.Context, mode string, st store.Store, release func()) *backend {
	b := &backend{
		mode:          mode,
		store:         st,
		flags:         newFlagSets(c.logger, st, mode, c.cfg.CacheTTL, c.now, c.cfg.StateDir, c.cfg.Observer),
		snapshots:     lru.New[string, switchyard.Snapshot](c.bounded(snapshotsCached)),
		release:       release,
		done:          make(chan struct{}),
		writeBackDone: make(chan struct{}),
		schedulerDone: make(chan struct{}),
		pins:          newPins(c.bounded(maxLocalPins)),
	}
	// A rewound history's sessions are read again from the store, which
	// holds the sessions of the history it holds.
	b.flags.rewound = b.snapshots.Purge
	b.flags.warm(ctx)
	if c.cfg.StateDir != "" {
		n, err := b.pins.load(c.cfg.StateDir, mode, c.now())
		if err != nil {
			c.logger.Error("ignoring the pins file; sessions pinned before the restart are read from the store", "err", err)
		} else if n > 0 {
			c.logger.Info("restored session pins from the pins file", "pins", n, "waiting", b.pins.waiting())
		}
	}
	go c.runWriteBack(b)
	go c.runScheduler(b)
	if n, ok := st.(store.Notifier); ok {
		n.OnChange(b.flags.announced)
	}
	return b
}

// bounded is n, or Config.MaxSessions when that is lower: what the
// process keeps of sessions stays within the stores' bound.
func (c *Core) bounded(n int) int {
	if c.cfg.MaxSessions > 0 {
		return min(n, c.cfg.MaxSessions)
	}
	return n
}

// acquire returns the backend serving now, held until its leave is
// called. A request that raced a switch and loaded the retired backend
// waits for the switch, then takes the new one.
func (c *Core) acquire() *backend {
	for {
		b := c.backend.Load()
		b.inUse.RLock()
		if !b.retired {
			return b
		}
		b.inUse.RUnlock()
	}
}

// leave ends a request's hold on b, taken by acquire.
func (b *backend) leave() { b.inUse.RUnlock() }

// stop ends b's streams, its scheduler and the write-back of its local
// pins, whose file is saved once more.
func (b *backend) stop() {
	b.stopOnce.Do(func() { close(b.done) })
	<-b.writeBackDone
	<-b.schedulerDone
}

// retire stops b, waits for the requests still using it, then releases
// its store.
func (b *backend) retire() {
	b.stop()
	b.inUse.Lock()
	b.retired = true
	b.inUse.Unlock()
	if b.release != nil {
		b.release()
	}
}

// remember caches a snapshot read from the store, for the evaluations of
// its session and for the pins file that outlives the process.
func (b *backend) remember(snap switchyard.Snapshot) {
	b.snapshots.Add(snap.SessionID, snap)
	b.pins.touch()
}
