package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
)

// snapshotColumns is what reading a snapshot selects, in scanSnapshot's
// order. The pinned revision's ID is its row's: the session's foreign key
// holds it in this database's history.
const snapshotColumns = `session_id, user_id, revision,
	(SELECT r.id FROM revisions r WHERE r.number = session_runtime_snapshot.revision), profile, modules::text,
	exam_mode_at_start, freeze_updates_at_start, created_at, expires_at`

// CreateSession implements store.Store. The insert cannot race: Postgres'
// ON CONFLICT DO NOTHING lets exactly one of several concurrent creators
// store the row (the others wait for it to commit), and every other
// creator then reads that row. Concurrent creates share one statement and
// one commit (see creates), and each is answered only once its row is
// committed, so an acknowledged session is durable. An expired snapshot
// under the same ID is deleted and the insert tried again. With
// WithMaxSessions, a new session beyond the bound is refused.
func (s *Store) CreateSession(ctx context.Context, snap switchyard.Snapshot) (switchyard.Snapshot, bool, error) {
	if err := switchyard.ValidateSessionID(snap.SessionID); err != nil {
		return switchyard.Snapshot{}, false, err
	}
	modules, err := encodeModules(snap)
	if err != nil {
		return switchyard.Snapshot{}, false, err
	}
	if !s.reserveSession() {
		return s.existingSession(ctx, snap.SessionID)
	}
	// Postgres keeps microseconds, as pgx sends them: this is what is stored.
	snap.CreatedAt = snap.CreatedAt.UTC().Truncate(time.Microsecond)
	snap.ExpiresAt = snap.ExpiresAt.UTC().Truncate(time.Microsecond)
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	c := &createCall{snap: snap, modules: modules, done: make(chan createResult, 1)}
	s.submit(c)
	select {
	case r := <-c.done:
		if !r.created {
			s.releaseSession()
		}
		return r.snap, r.created, r.err
	case <-ctx.Done():
		// The batch may still store the row (it stays counted); a later
		// create or read of the session finds it, first writer wins.
		return switchyard.Snapshot{}, false, dbError(fmt.Sprintf("create session %q", snap.SessionID), ctx.Err())
	}
}

// sessionLimitRetry is when a create refused at the bound may succeed:
// serve sweeps expired sessions and counts the live ones every minute.
const sessionLimitRetry = time.Minute

// reserveSession counts a session about to be created against the bound of
// WithMaxSessions, and says whether there is room for it.
func (s *Store) reserveSession() bool {
	if s.cfg.maxSessions <= 0 {
		return true
	}
	if s.live.Add(1) > s.cfg.maxSessions {
		s.live.Add(-1)
		return false
	}
	return true
}

// releaseSession gives back the room of a reserved session that was not
// created: it existed, or the create failed.
func (s *Store) releaseSession() {
	if s.cfg.maxSessions > 0 {
		s.live.Add(-1)
	}
}

// existingSession answers a create refused at the bound: the session's
// snapshot when it has one, else SESSION_LIMIT_REACHED.
func (s *Store) existingSession(ctx context.Context, id string) (switchyard.Snapshot, bool, error) {
	snap, err := s.Session(ctx, id)
	if switchyard.ErrorCode(err) == switchyard.CodeNotFound {
		return switchyard.Snapshot{}, false, switchyard.Errorf(switchyard.CodeSessionLimit,
			"session %q is not stored: the store holds %d live sessions, its limit; try again later", id, s.cfg.maxSessions).
			With(switchyard.RetryAfterField, int(sessionLimitRetry.Seconds()))
	}
	return snap, false, err
}

// countSessions counts the live sessions for WithMaxSessions (up to one
// beyond the bound, which is all the bound needs). Creates still in flight
// are not in the count; they are in the next one.
func (s *Store) countSessions(ctx context.Context) error {
	if s.cfg.maxSessions <= 0 {
		return nil
	}
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM (
		SELECT 1 FROM session_runtime_snapshot WHERE expires_at > $1 LIMIT $2) live`,
		s.cfg.now(), s.cfg.maxSessions+1).Scan(&n)
	if err != nil {
		return dbError("count live sessions", err)
	}
	s.live.Store(n)
	return nil
}

// createOne creates one session in its own statements, replacing an
// expired snapshot under its ID.
func (s *Store) createOne(ctx context.Context, snap switchyard.Snapshot, modules string) (switchyard.Snapshot, bool, error) {
	// Three rounds cover an expired snapshot being replaced while another
	// creator or the sweep races us; more would mean the row keeps
	// changing under us, which only a broken clock can cause.
	for range 3 {
		tag, err := s.pool.Exec(ctx, `
			INSERT INTO session_runtime_snapshot (session_id, user_id, revision, profile, modules,
				exam_mode_at_start, freeze_updates_at_start, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9)
			ON CONFLICT (session_id) DO NOTHING`,
			snap.SessionID, snap.UserID, snap.Revision, snap.Profile, modules,
			snap.ExamModeAtStart, snap.FreezeUpdatesAtStart, snap.CreatedAt, snap.ExpiresAt)
		if err != nil {
			return switchyard.Snapshot{}, false, dbError(fmt.Sprintf("create session %q", snap.SessionID), err)
		}
		if tag.RowsAffected() == 1 {
			return snap, true, nil
		}
		var got switchyard.Snapshot
		err = scanSnapshot(s.pool.QueryRow(ctx,
			`SELECT `+snapshotColumns+` FROM session_runtime_snapshot WHERE session_id = $1`, snap.SessionID), &got)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			continue // Swept since the insert: try again.
		case err != nil:
			return switchyard.Snapshot{}, false, dbError(fmt.Sprintf("read session %q", snap.SessionID), err)
		case s.cfg.now().Before(got.ExpiresAt):
			return got, false, nil
		}
		if _, err := s.pool.Exec(ctx,
			`DELETE FROM session_runtime_snapshot WHERE session_id = $1 AND expires_at <= $2`,
			snap.SessionID, s.cfg.now()); err != nil {
			return switchyard.Snapshot{}, false, dbError(fmt.Sprintf("replace expired session %q", snap.SessionID), err)
		}
	}
	return switchyard.Snapshot{}, false, switchyard.Errorf(switchyard.CodeUnavailable,
		"session %q changed during every attempt to create it; try again", snap.SessionID)
}

// Session implements store.Store.
func (s *Store) Session(ctx context.Context, id string) (switchyard.Snapshot, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var snap switchyard.Snapshot
	err := scanSnapshot(s.pool.QueryRow(ctx,
		`SELECT `+snapshotColumns+` FROM session_runtime_snapshot WHERE session_id = $1 AND expires_at > $2`,
		id, s.cfg.now()), &snap)
	if errors.Is(err, pgx.ErrNoRows) {
		return switchyard.Snapshot{}, switchyard.Errorf(switchyard.CodeNotFound, "session %q does not exist or has expired", id)
	}
	if err != nil {
		return switchyard.Snapshot{}, dbError(fmt.Sprintf("read session %q", id), err)
	}
	return snap, nil
}

// scanSnapshot reads a row selected with snapshotColumns.
func scanSnapshot(row pgx.Row, snap *switchyard.Snapshot) error {
	var modules string
	if err := row.Scan(&snap.SessionID, &snap.UserID, &snap.Revision, &snap.RevisionID, &snap.Profile, &modules,
		&snap.ExamModeAtStart, &snap.FreezeUpdatesAtStart, &snap.CreatedAt, &snap.ExpiresAt); err != nil {
		return err
	}
	snap.CreatedAt, snap.ExpiresAt = snap.CreatedAt.UTC(), snap.ExpiresAt.UTC()
	if err := json.Unmarshal([]byte(modules), &snap.Modules); err != nil {
		return fmt.Errorf("decode session %q modules: %w", snap.SessionID, err)
	}
	return nil
}

// Sweep deletes at most limit expired snapshots, oldest first, and returns
// how many it deleted. Replicas sweeping at once are safe: a row another
// sweeper is deleting is waited for and then skipped. (SKIP LOCKED would
// need UPDATE rights on the table, which the service role does not have.)
// Revisions are never deleted here: a pinned revision stays for as long as
// anything references it.
func (s *Store) Sweep(ctx context.Context, limit int) (int, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `
		DELETE FROM session_runtime_snapshot WHERE session_id IN (
			SELECT session_id FROM session_runtime_snapshot
			WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2)`, s.cfg.now(), limit)
	if err != nil {
		return 0, dbError("sweep expired sessions", err)
	}
	return int(tag.RowsAffected()), nil
}

// SweepKeys deletes at most limit idempotency keys older than
// store.KeyTTL, oldest first, and returns how many it deleted. Their
// changes stay in the audit log; only the keys go.
func (s *Store) SweepKeys(ctx context.Context, limit int) (int, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `
		DELETE FROM idempotency_keys WHERE key IN (
			SELECT key FROM idempotency_keys
			WHERE created_at <= $1 ORDER BY created_at LIMIT $2)`, s.cfg.now().Add(-store.KeyTTL), limit)
	if err != nil {
		return 0, dbError("sweep expired idempotency keys", err)
	}
	return int(tag.RowsAffected()), nil
}

// The sweeper's bounds: rows per statement and statements per round, so a
// backlog is worked off in short transactions over several rounds.
const (
	sweepBatch  = 1000
	sweepRounds = 100
)

// RunSweeper deletes expired snapshots and idempotency keys every
// interval until ctx is done, then counts the live sessions for
// WithMaxSessions. Each round runs bounded batches of each until one
// comes back short, and logs what it removed or why it failed; a failure
// waits for the next round.
func (s *Store) RunSweeper(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.sweepRound(ctx, "sessions", s.Sweep)
		s.sweepRound(ctx, "idempotency keys", s.SweepKeys)
		if err := s.countSessions(ctx); err != nil {
			s.cfg.log.Warn("count live sessions failed; the last count stands", "error", err)
		}
	}
}

// sweepRound runs sweep in bounded batches until one comes back short or
// fails, and logs the outcome; what names the rows swept.
func (s *Store) sweepRound(ctx context.Context, what string, sweep func(context.Context, int) (int, error)) {
	total := 0
	for range sweepRounds {
		n, err := sweep(ctx, sweepBatch)
		total += n
		if err != nil {
			s.cfg.log.Warn("sweep failed", "rows", what, "error", err, "deleted", total)
			return
		}
		if n < sweepBatch {
			break
		}
	}
	if total > 0 {
		s.cfg.log.Info("expired rows swept", "rows", what, "deleted", total)
	}
}
