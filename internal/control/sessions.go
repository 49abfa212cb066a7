package control

import (
	"context"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
)

// snapshotsCached bounds the session snapshots kept in process.
const snapshotsCached = 10_000

// MaxUserIDLength bounds the user ID a session records.
const MaxUserIDLength = 256

// Session returns the live snapshot of session id, or NOT_FOUND.
func (c *Core) Session(ctx context.Context, id string) (switchyard.Snapshot, error) {
	if err := switchyard.ValidateSessionID(id); err != nil {
		return switchyard.Snapshot{}, err
	}
	b := c.acquire()
	defer b.leave()
	return c.snapshot(ctx, b, id, false)
}

// Pin creates session id's snapshot from the store's current revision,
// unless the session exists, and returns the stored one: a session's
// snapshot never changes. created says whether this call made it.
func (c *Core) Pin(ctx context.Context, id, userID string) (snap switchyard.Snapshot, created bool, err error) {
	if err := switchyard.ValidateSessionID(id); err != nil {
		return switchyard.Snapshot{}, false, err
	}
	if len(userID) > MaxUserIDLength {
		return switchyard.Snapshot{}, false, switchyard.FieldError("user_id", "must be at most %d characters", MaxUserIDLength)
	}
	b := c.acquire()
	defer b.leave()
	return c.pin(ctx, b, id, userID)
}

// snapshot returns the live snapshot of session id: from the cache until it
// expires (snapshots never change), else from the store. With create set, a
// session the store does not know is pinned now, first writer wins.
func (c *Core) snapshot(ctx context.Context, b *backend, id string, create bool) (switchyard.Snapshot, error) {
	if snap, ok := b.snapshots.Get(id); ok {
		if c.now().Before(snap.ExpiresAt) {
			return snap, nil
		}
		b.snapshots.Remove(id)
	}
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	snap, err := b.store.Session(rctx, id)
	switch {
	case err == nil:
		b.snapshots.Add(id, snap)
		return snap, nil
	case create && switchyard.ErrorCode(err) == switchyard.CodeNotFound:
		snap, _, err := c.pin(ctx, b, id, "")
		return snap, err
	}
	return switchyard.Snapshot{}, err
}

// pin creates session id's snapshot from the store's current revision,
// unless another request created it first, and returns the stored one.
func (c *Core) pin(ctx context.Context, b *backend, id, userID string) (snap switchyard.Snapshot, created bool, err error) {
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	cur, err := b.store.Current(wctx)
	if err != nil {
		return switchyard.Snapshot{}, false, err
	}
	b.flags.learn(cur)
	snap, created, err = b.store.CreateSession(wctx, evaluator.NewSnapshot(id, userID, cur, c.now(), c.cfg.SessionTTL))
	if err != nil {
		return switchyard.Snapshot{}, false, err
	}
	b.snapshots.Add(id, snap)
	return snap, created, nil
}
