package control

import (
	"context"
	"sync"

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
	// done is closed when the backend starts retiring: open streams end
	// and their clients reconnect to the new backend.
	done chan struct{}
}

// newBackend wraps st for mode and loads its current revision. The flag
// sets hear of revisions committed elsewhere when the store announces them.
func (c *Core) newBackend(ctx context.Context, mode string, st store.Store, release func()) *backend {
	b := &backend{
		mode:      mode,
		store:     st,
		flags:     newFlagSets(c.logger, st, mode, c.cfg.CacheTTL, c.now, c.cfg.StateDir),
		snapshots: lru.New[string, switchyard.Snapshot](snapshotsCached),
		release:   release,
		done:      make(chan struct{}),
	}
	b.flags.warm(ctx)
	if n, ok := st.(store.Notifier); ok {
		n.OnChange(b.flags.announced)
	}
	return b
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

// retire ends b's streams, waits for the requests still using it, then
// releases its store.
func (b *backend) retire() {
	close(b.done)
	b.inUse.Lock()
	b.retired = true
	b.inUse.Unlock()
	if b.release != nil {
		b.release()
	}
}
