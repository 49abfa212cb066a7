package control

import (
	"context"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
)

// snapshotsCached bounds the session snapshots kept in process
// (Config.MaxSessions may bound them lower).
const snapshotsCached = 10_000

// MaxUserIDLength bounds the user ID a session records.
const MaxUserIDLength = 256

// pinState says how far a session's pin can be trusted.
type pinState int

const (
	// pinStored: the store holds the pin.
	pinStored pinState = iota
	// pinLocal: this replica pinned the session to the revision it served
	// while the store could not be asked; it is written to the store when
	// the store answers, and another replica may have pinned it first.
	pinLocal
	// pinUnreadable: the session's pin could not be read nor made.
	pinUnreadable
	// pinRateLimited: the session is new and its client made more new
	// sessions lately than it may (Config.SessionRate).
	pinRateLimited
	// pinSessionLimit: the session is new and the store holds as many
	// live sessions as it may (Config.MaxSessions).
	pinSessionLimit
)

// Session returns the live snapshot of session id, or NOT_FOUND.
func (c *Core) Session(ctx context.Context, id string) (switchyard.Snapshot, error) {
	if err := switchyard.ValidateSessionID(id); err != nil {
		return switchyard.Snapshot{}, err
	}
	b := c.acquire()
	defer b.leave()
	return c.session(ctx, b, id)
}

// session returns the live snapshot of session id from b: cached, pinned
// here, or read from the store.
func (c *Core) session(ctx context.Context, b *backend, id string) (switchyard.Snapshot, error) {
	if snap, ok := c.cached(b, id); ok {
		return snap, nil
	}
	if lp, ok := b.pins.get(id, c.now()); ok {
		rctx, cancel := context.WithTimeout(ctx, readTimeout)
		defer cancel()
		rev, err := b.flags.revision(rctx, lp.Revision)
		if err != nil {
			return switchyard.Snapshot{}, err
		}
		return b.pins.snapshot(lp, rev), nil
	}
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	snap, err := b.store.Session(rctx, id)
	if err != nil {
		return switchyard.Snapshot{}, err
	}
	b.remember(snap)
	return snap, nil
}

// Pin creates session id's snapshot from the store's current revision,
// unless the session exists, and returns the stored one: a session's
// snapshot never changes. created says whether this call made it. client
// names who asks (an address, a token): a client over its limit of
// new sessions is refused a new one with RATE_LIMITED, and still gets one
// that exists.
func (c *Core) Pin(ctx context.Context, client, id, userID string) (snap switchyard.Snapshot, created bool, err error) {
	if err := switchyard.ValidateSessionID(id); err != nil {
		return switchyard.Snapshot{}, false, err
	}
	if err := switchyard.CheckText("user_id", userID); err != nil {
		return switchyard.Snapshot{}, false, err
	}
	if len(userID) > MaxUserIDLength {
		return switchyard.Snapshot{}, false, switchyard.FieldError("user_id", "must be at most %d characters", MaxUserIDLength)
	}
	b := c.acquire()
	defer b.leave()
	if wait, ok := c.limiter.take(client, c.now()); !ok {
		snap, err := c.session(ctx, b, id)
		if switchyard.ErrorCode(err) == switchyard.CodeNotFound {
			return switchyard.Snapshot{}, false, switchyard.Errorf(switchyard.CodeRateLimited,
				"session %q is not created: this client has made more new sessions lately than its limit "+
					"(%g at once, then %g a second); try again later", id, c.limiter.burst, c.limiter.rate).
				With(switchyard.RetryAfterField, retryAfter(wait))
		}
		return snap, false, err
	}
	snap, created, err = c.pin(ctx, b, id, userID)
	if !created {
		c.limiter.give(client)
	}
	return snap, created, err
}

// PinAt is Pin for a client that pinned the session itself at first
// sight, to revision n (ID revisionID) which it served, and now registers
// the pin: the session is pinned to that revision unless it exists, so
// the client's pin is the one stored, first writer wins as always. When
// the store's revision n is another one (the client's revision is of a
// history the store no longer holds), or none, the session is pinned to
// the current revision, as Pin pins it.
func (c *Core) PinAt(ctx context.Context, id, userID string, n int64, revisionID string) (snap switchyard.Snapshot, created bool, err error) {
	if err := switchyard.ValidateSessionID(id); err != nil {
		return switchyard.Snapshot{}, false, err
	}
	if len(userID) > MaxUserIDLength {
		return switchyard.Snapshot{}, false, switchyard.FieldError("user_id", "must be at most %d characters", MaxUserIDLength)
	}
	b := c.acquire()
	defer b.leave()
	rev, err := b.flags.revision(ctx, n)
	switch {
	case switchyard.ErrorCode(err) == switchyard.CodeNotFound || err == nil && rev.ID != revisionID:
		return c.pin(ctx, b, id, userID)
	case err != nil:
		return switchyard.Snapshot{}, false, err
	}
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	snap, created, err = b.store.CreateSession(wctx, evaluator.NewSnapshot(id, userID, rev, c.now(), c.cfg.SessionTTL))
	if err != nil {
		return switchyard.Snapshot{}, false, err
	}
	b.remember(snap)
	return snap, created, nil
}

// cached returns session id's snapshot from the in-process cache until it
// expires (snapshots never change).
func (c *Core) cached(b *backend, id string) (switchyard.Snapshot, bool) {
	snap, ok := b.snapshots.Get(id)
	if !ok {
		return switchyard.Snapshot{}, false
	}
	if !c.now().Before(snap.ExpiresAt) {
		b.snapshots.Remove(id)
		return switchyard.Snapshot{}, false
	}
	return snap, true
}

// evaluationPin returns the revision session id is pinned to (its number
// and ID), for an
// evaluation, pinning it at first sight unless its client (see Pin) is
// over its limit of new sessions or the store holds as many as it may:
// then the state says so, and the session is evaluated unpinned. It never
// fails because a store did: when the store cannot be asked within the
// read deadline (or failed moments ago) the session is pinned here, to the
// revision served, and written to the store when it answers; when not even
// that is possible the state says the pin is unreadable.
func (c *Core) evaluationPin(ctx context.Context, b *backend, client, id string) (int64, string, pinState) {
	if snap, ok := c.cached(b, id); ok {
		return snap.Revision, snap.RevisionID, pinStored
	}
	if lp, ok := b.pins.get(id, c.now()); ok {
		if lp.Stored {
			return lp.Revision, lp.RevisionID, pinStored
		}
		return lp.Revision, lp.RevisionID, pinLocal
	}
	if _, ok := c.limiter.take(client, c.now()); !ok {
		return c.existingPin(ctx, b, id)
	}
	if !b.pins.storeDown(c.now()) {
		// Creating is reading: the store keeps the first snapshot of a
		// session and returns it to every later creator, so one call
		// serves a session pinned elsewhere and one seen for the first
		// time alike.
		rctx, cancel := context.WithTimeout(ctx, readTimeout)
		defer cancel()
		snap, created, err := c.pin(rctx, b, id, "")
		switch {
		case err == nil:
			if !created {
				c.limiter.give(client)
			}
			b.pins.answered()
			return snap.Revision, snap.RevisionID, pinStored
		case ctx.Err() != nil:
			// The caller left, which says nothing of the store, and
			// nobody reads what this evaluation would have been.
			return 0, "", pinUnreadable
		case switchyard.ErrorCode(err) == switchyard.CodeSessionLimit:
			c.limiter.give(client)
			return 0, "", pinSessionLimit
		}
		c.logger.Warn("a session store call failed; pinning the session here until the store answers",
			"session", id, "err", err)
		b.pins.failed(c.now())
	}
	return c.pinLocally(ctx, b, id)
}

// existingPin returns the revision of session id when the store has it
// pinned, for a client over its limit of new sessions: the session is not
// pinned now, but one pinned before (on another replica, say) still is.
func (c *Core) existingPin(ctx context.Context, b *backend, id string) (int64, string, pinState) {
	if b.pins.storeDown(c.now()) {
		return 0, "", pinRateLimited
	}
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	snap, err := b.store.Session(rctx, id)
	if err != nil {
		return 0, "", pinRateLimited
	}
	b.remember(snap)
	return snap.Revision, snap.RevisionID, pinStored
}

// pinLocally pins session id to the revision this replica serves, for the
// write-back to store. The conservative fallback is no revision to pin
// to: the pin is unreadable.
func (c *Core) pinLocally(ctx context.Context, b *backend, id string) (int64, string, pinState) {
	cur := b.flags.live(ctx)
	if cur.fallback {
		return 0, "", pinUnreadable
	}
	now := c.now().UTC().Truncate(time.Microsecond)
	lp := b.pins.add(localPin{SessionID: id, Revision: cur.rev.Number, RevisionID: cur.rev.ID,
		CreatedAt: now, ExpiresAt: now.Add(c.cfg.SessionTTL)})
	if lp.Stored {
		return lp.Revision, lp.RevisionID, pinStored
	}
	return lp.Revision, lp.RevisionID, pinLocal
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
	b.remember(snap)
	return snap, created, nil
}
