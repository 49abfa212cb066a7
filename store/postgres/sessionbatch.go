package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard"
)

// The shape of session batching. A session's cost is mostly its commit:
// one statement that inserts many rows commits once for all of them, so an
// exam's thousands of students starting in the same second cost a few
// commits, not thousands.
const (
	// maxCreateBatch bounds the rows of one insert.
	maxCreateBatch = 512
	// createFlushers bounds the batches in flight at once; while they
	// run, new creates queue and leave together in the next batches. One
	// keeps the p99 of a create at 10,000 a second under 50 ms on two
	// cores, where two or four batches in flight compete for the same CPU
	// and WAL flushes and double it (BENCHMARKS.md); it also leaves the
	// pool's other connections to reads and changes.
	createFlushers = 1
)

// createCall is one CreateSession waiting for its batch.
type createCall struct {
	snap    switchyard.Snapshot
	modules string
	done    chan createResult
}

type createResult struct {
	snap    switchyard.Snapshot
	created bool
	err     error
}

// creates gathers concurrent CreateSession calls into batches. There is no
// timer: a call waits only while earlier batches are in flight, so a lone
// create costs what it did alone, and under load each batch holds what
// queued during the one before.
type creates struct {
	mu       sync.Mutex
	pending  []*createCall
	flushers int
}

// submit queues c and starts a flusher unless enough are running.
func (s *Store) submit(c *createCall) {
	s.creates.mu.Lock()
	s.creates.pending = append(s.creates.pending, c)
	start := s.creates.flushers < createFlushers
	if start {
		s.creates.flushers++
	}
	s.creates.mu.Unlock()
	if start {
		go s.flushCreates()
	}
}

// flushCreates inserts queued creates, a batch at a time, until none are
// left.
func (s *Store) flushCreates() {
	for {
		s.creates.mu.Lock()
		n := min(len(s.creates.pending), maxCreateBatch)
		if n == 0 {
			s.creates.flushers--
			s.creates.mu.Unlock()
			return
		}
		batch := s.creates.pending[:n:n]
		s.creates.pending = s.creates.pending[n:]
		s.creates.mu.Unlock()
		s.insertBatch(batch)
	}
}

// insertBatch inserts the batch in one statement and answers every call:
// created for the rows it inserted; the stored snapshot for a session that
// already had a live one; and, for the rare session whose stored snapshot
// expired or vanished meanwhile, the one-row path that replaces it.
// Several calls for one session in a batch get one answer between them:
// the first is the writer.
func (s *Store) insertBatch(batch []*createCall) {
	ctx, cancel := s.deadline(context.Background())
	defer cancel()
	first := make(map[string]*createCall, len(batch))
	var (
		ids, users, profiles, modules []string
		revisions                     []int64
		exams, freezes                []bool
		createdAt, expiresAt          []time.Time
	)
	for _, c := range batch {
		if _, ok := first[c.snap.SessionID]; ok {
			continue
		}
		first[c.snap.SessionID] = c
		ids = append(ids, c.snap.SessionID)
		users = append(users, c.snap.UserID)
		revisions = append(revisions, c.snap.Revision)
		profiles = append(profiles, c.snap.Profile)
		modules = append(modules, c.modules)
		exams = append(exams, c.snap.ExamModeAtStart)
		freezes = append(freezes, c.snap.FreezeUpdatesAtStart)
		createdAt = append(createdAt, c.snap.CreatedAt)
		expiresAt = append(expiresAt, c.snap.ExpiresAt)
	}
	answer := func(id string, r createResult) {
		for _, c := range batch {
			if c.snap.SessionID != id {
				continue
			}
			if c != first[id] && r.err == nil {
				r.created = false
			}
			c.done <- r
		}
	}
	rows, err := s.pool.Query(ctx, `
		INSERT INTO session_runtime_snapshot (session_id, user_id, revision, profile, modules,
			exam_mode_at_start, freeze_updates_at_start, created_at, expires_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::jsonb[],
			$6::boolean[], $7::boolean[], $8::timestamptz[], $9::timestamptz[])
		ON CONFLICT (session_id) DO NOTHING
		RETURNING session_id`,
		ids, users, revisions, profiles, modules, exams, freezes, createdAt, expiresAt)
	inserted := make(map[string]bool, len(ids))
	if err == nil {
		for rows.Next() {
			var id string
			if err = rows.Scan(&id); err != nil {
				break
			}
			inserted[id] = true
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if err != nil {
		err = dbError(fmt.Sprintf("create %d session(s)", len(ids)), err)
		for id := range first {
			answer(id, createResult{err: err})
		}
		return
	}
	var taken []string
	for id, c := range first {
		if inserted[id] {
			answer(id, createResult{snap: c.snap, created: true})
		} else {
			taken = append(taken, id)
		}
	}
	if len(taken) == 0 {
		return
	}
	stored, err := s.sessions(ctx, taken)
	for _, id := range taken {
		switch got, ok := stored[id]; {
		case err != nil:
			answer(id, createResult{err: err})
		case ok && s.cfg.now().Before(got.ExpiresAt):
			answer(id, createResult{snap: got})
		default:
			snap, created, err := s.createOne(ctx, first[id].snap, first[id].modules)
			answer(id, createResult{snap: snap, created: created, err: err})
		}
	}
}

// sessions reads the stored snapshots of ids, live or not.
func (s *Store) sessions(ctx context.Context, ids []string) (map[string]switchyard.Snapshot, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+snapshotColumns+` FROM session_runtime_snapshot WHERE session_id = ANY($1)`, ids)
	if err != nil {
		return nil, dbError("read sessions", err)
	}
	defer rows.Close()
	out := make(map[string]switchyard.Snapshot, len(ids))
	for rows.Next() {
		var snap switchyard.Snapshot
		if err := scanSnapshot(rows, &snap); err != nil {
			return nil, dbError("read sessions", err)
		}
		out[snap.SessionID] = snap
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("read sessions", err)
	}
	return out, nil
}

// encodeModules is the jsonb text of a snapshot's modules.
func encodeModules(snap switchyard.Snapshot) (string, error) {
	b, err := json.Marshal(snap.Modules)
	if err != nil {
		return "", fmt.Errorf("encode session %q modules: %w", snap.SessionID, err)
	}
	return string(b), nil
}
