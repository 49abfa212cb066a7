package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-dev/switchyard"
)

// listenPing is how long the revision feed waits for a notification before
// it checks that its connection still answers: a connection dropped without
// a reset (a failed-over server, a network partition) sends nothing, and
// would otherwise pass for a quiet feed.
const listenPing = 15 * time.Second

// Listen is the revision feed: it calls fn with the current revision
// whenever it may have changed, until ctx ends (then it returns nil).
// It holds one dedicated connection LISTENing on RevisionChannel, which
// Postgres notifies only at commit, so nothing uncommitted is ever
// reported. A notification is only a wake-up: fn gets the head read back
// from this store, so a notification from another schema in the same
// database cannot mislead it. Notifications sent while the connection is
// down are lost, so after every (re)connect the head is read again; the
// connection is re-established with backoff for as long as ctx lasts.
// Calls to fn come one at a time, each with a revision other than the one
// before: newer, unless the database's history was rewound (a restore
// from an earlier backup drops the feed's connection, and the head read
// after the reconnect is the restored one).
func (s *Store) Listen(ctx context.Context, fn func(rev *switchyard.Revision)) error {
	var last string
	report := func() error {
		rev, err := s.Current(ctx)
		if err != nil {
			return err
		}
		if rev.ID != last {
			last = rev.ID
			fn(rev)
		}
		return nil
	}
	const minBackoff, maxBackoff = 100 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	failing := false
	for {
		connected, err := s.listen(ctx, report)
		if ctx.Err() != nil {
			return nil
		}
		if connected {
			backoff = minBackoff
			failing = false
		}
		if !failing {
			// Once per outage: the retries below would repeat it.
			s.cfg.log.Warn("the revision feed lost its connection; reconnecting", "err", err)
			failing = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// listen runs one connection of the feed until it fails or ctx ends;
// connected says whether it got as far as listening.
func (s *Store) listen(ctx context.Context, report func() error) (connected bool, err error) {
	cctx, cancel := s.deadline(ctx)
	defer cancel()
	pooled, err := s.pool.Acquire(cctx)
	if err != nil {
		return false, dbError("connect for the revision feed", err)
	}
	// A listening connection must never serve other queries, so it leaves
	// the pool for good and is closed when the feed lets it go.
	conn := pooled.Hijack()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.timeout)
		defer cancel()
		conn.Close(ctx)
	}()
	if _, err := conn.Exec(cctx, "LISTEN "+pgx.Identifier{RevisionChannel}.Sanitize()); err != nil {
		return false, dbError("listen for revisions", err)
	}
	if err := report(); err != nil {
		return true, err
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, listenPing)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return true, nil
		case errors.Is(err, context.DeadlineExceeded):
			pctx, cancel := s.deadline(ctx)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return true, dbError("check the revision feed's connection", err)
			}
		case err != nil:
			return true, dbError("wait for revision notifications", err)
		default:
			if err := report(); err != nil {
				return true, err
			}
		}
	}
}
