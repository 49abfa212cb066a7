package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
)

// ProposeChange implements store.Store as one transaction in two round
// trips, as Apply: the first locks the runtime head (which names the
// revision the entry records), reads the idempotency key and draws the
// request's ID; the second inserts the request, appends its audit row,
// keeps the key and commits. A key already kept answers the request it
// proposed, or, with another request, the refusal, which the caller
// records.
func (s *Store) ProposeChange(ctx context.Context, cr switchyard.ChangeRequest, a store.Attempt) (switchyard.ChangeRequest, store.AuditEntry, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return switchyard.ChangeRequest{}, store.AuditEntry{}, dbError("connect to propose the change", err)
	}
	defer conn.Release()
	defer s.rollback(conn)
	head, k, keyed, err := s.lockHead(ctx, conn, a.IdempotencyKey)
	if err != nil {
		return switchyard.ChangeRequest{}, store.AuditEntry{}, err
	}
	if keyed {
		a.Target = k.Entry.Target
		if err := k.Answers(a); err != nil {
			return switchyard.ChangeRequest{}, store.AuditEntry{}, err
		}
		id, _ := switchyard.ChangeTargetID(k.Entry.Target)
		cr, err := s.changeRequest(ctx, conn, id)
		return cr, k.Entry, err
	}
	var id int64
	if err := conn.QueryRow(ctx, `SELECT nextval(pg_get_serial_sequence('change_requests', 'id'))`).Scan(&id); err != nil {
		return switchyard.ChangeRequest{}, store.AuditEntry{}, dbError("number the change request", err)
	}
	a.Target = switchyard.ChangeTarget(id)
	cr, after := store.Proposed(cr, id, a)
	e, err := store.NewAuditEntry(a, s.cfg.now(), head.number, nil, nil, after)
	if err != nil {
		return switchyard.ChangeRequest{}, store.AuditEntry{}, err
	}
	b := &pgx.Batch{}
	if err := queueChange(b, cr, true); err != nil {
		return switchyard.ChangeRequest{}, store.AuditEntry{}, err
	}
	queueAudit(b, &e, a.IdempotencyKey, a.RequestHash)
	b.Queue(`COMMIT`)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		if e, err = s.settle(ctx, a, head.number, err, "propose the change"); err != nil {
			return switchyard.ChangeRequest{}, store.AuditEntry{}, err
		}
	}
	s.logged(e)
	return cr, e, nil
}

// changeColumns is what reading a change request selects, in scanChange's
// order.
const changeColumns = `id, doc::text`

// ChangeRequest implements store.Store.
func (s *Store) ChangeRequest(ctx context.Context, id int64) (switchyard.ChangeRequest, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	return s.changeRequest(ctx, s.pool, id)
}

// queryRower is what both the pool and a single connection offer.
type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// changeRequest reads request id through q.
func (s *Store) changeRequest(ctx context.Context, q queryRower, id int64) (switchyard.ChangeRequest, error) {
	cr, err := scanChange(q.QueryRow(ctx, `SELECT `+changeColumns+` FROM change_requests WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return switchyard.ChangeRequest{}, switchyard.Errorf(switchyard.CodeNotFound, "change request %d does not exist", id)
	}
	if err != nil {
		return switchyard.ChangeRequest{}, dbError(fmt.Sprintf("read change request %d", id), err)
	}
	return cr, nil
}

// ChangeRequests implements store.Store.
func (s *Store) ChangeRequests(ctx context.Context, q store.ChangeQuery) ([]switchyard.ChangeRequest, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	limit := store.ClampLimit(q.Limit)
	var rows pgx.Rows
	var err error
	if q.Scheduled {
		rows, err = s.pool.Query(ctx, `SELECT `+changeColumns+` FROM change_requests
			WHERE next_at IS NOT NULL AND ($1 = '' OR state = $1) ORDER BY next_at, id LIMIT $2`, string(q.State), limit)
	} else {
		rows, err = s.pool.Query(ctx, `SELECT `+changeColumns+` FROM change_requests
			WHERE ($1 = '' OR state = $1) AND ($2 = 0 OR id < $2) ORDER BY id DESC LIMIT $3`, string(q.State), q.Before, limit)
	}
	if err != nil {
		return nil, dbError("list the change requests", err)
	}
	defer rows.Close()
	out := []switchyard.ChangeRequest{}
	for rows.Next() {
		cr, err := scanChange(rows)
		if err != nil {
			return nil, dbError("list the change requests", err)
		}
		out = append(out, cr)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list the change requests", err)
	}
	return out, nil
}

// MoveChange implements store.Store as one transaction in two round
// trips: the first locks the request's row and reads it, the second
// writes it with the audit row and commits. When the commit is not
// acknowledged, settleBy finds out whether it happened.
func (s *Store) MoveChange(ctx context.Context, id int64, m store.Move) (switchyard.ChangeRequest, store.AuditEntry, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return switchyard.ChangeRequest{}, store.AuditEntry{}, dbError("connect to move the change request", err)
	}
	defer conn.Release()
	defer s.rollback(conn)
	var cr switchyard.ChangeRequest
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(`SELECT `+changeColumns+` FROM change_requests WHERE id = $1 FOR UPDATE`, id).QueryRow(func(row pgx.Row) error {
		var err error
		if cr, err = scanChange(row); errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return switchyard.ChangeRequest{}, store.AuditEntry{}, dbError(fmt.Sprintf("read change request %d", id), err)
	}
	if cr.ID == 0 {
		return switchyard.ChangeRequest{}, store.AuditEntry{}, switchyard.Errorf(switchyard.CodeNotFound, "change request %d does not exist", id)
	}
	return s.move(ctx, conn, cr, m)
}

// move makes m of cr, whose row conn's transaction holds, and commits:
// the moved request and its audit row, or, when m.Step refuses, the
// rejected audit row alone, returning the refusal.
func (s *Store) move(ctx context.Context, conn *pgxpool.Conn, cr switchyard.ChangeRequest, m store.Move) (switchyard.ChangeRequest, store.AuditEntry, error) {
	m.Target = switchyard.ChangeTarget(cr.ID)
	next, before, after, refusal := store.Moved(cr, m)
	e, err := store.NewAuditEntry(m.Attempt, s.cfg.now(), 0, refusal, before, after)
	if err != nil {
		return switchyard.ChangeRequest{}, store.AuditEntry{}, err
	}
	b := &pgx.Batch{}
	if refusal == nil {
		if err := queueChange(b, next, false); err != nil {
			return switchyard.ChangeRequest{}, store.AuditEntry{}, err
		}
	}
	// The revision the entry names is read as the entry is appended: a
	// claim's move follows the change the claim made.
	b.Queue(`
		INSERT INTO switch_audit_log (actor, role, action, target, reason, phrase, request_id, outcome, why, revision, before, after)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, revision, $10::json, $11::json FROM runtime_head
		RETURNING `+auditColumns,
		e.Actor, e.Role, e.Action, e.Target, e.Reason, e.Phrase, e.RequestID, e.Outcome, e.Why,
		nullJSON(e.Before), nullJSON(e.After)).QueryRow(func(row pgx.Row) error { return scanAudit(row, &e) })
	b.Queue(`COMMIT`)
	want := e
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		if e, err = s.settleBy(ctx, m.Attempt, err, fmt.Sprintf("move change request %d", cr.ID), func(ctx context.Context) (store.AuditEntry, bool, error) {
			return s.findMove(ctx, cr.ID, want)
		}); err != nil {
			return switchyard.ChangeRequest{}, store.AuditEntry{}, err
		}
	}
	s.logged(e)
	if refusal != nil {
		return switchyard.ChangeRequest{}, e, refusal
	}
	return next, e, nil
}

// findMove looks up the audit entry recorded for the move e of request id,
// once the transaction holding the request's row, if any, has ended.
func (s *Store) findMove(ctx context.Context, id int64, e store.AuditEntry) (found store.AuditEntry, ok bool, err error) {
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(`SELECT FROM change_requests WHERE id = $1 FOR KEY SHARE`, id)
	b.Queue(`SELECT `+auditColumns+` FROM switch_audit_log
		WHERE request_id = $1 AND action = $2 AND target = $3 AND outcome = $4 ORDER BY seq DESC LIMIT 1`,
		e.RequestID, e.Action, e.Target, e.Outcome).QueryRow(func(row pgx.Row) error {
		err := scanAudit(row, &found)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		ok = err == nil
		return err
	})
	b.Queue(`COMMIT`)
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return store.AuditEntry{}, false, err
	}
	return found, ok, nil
}

// ClaimDue implements store.Store. The claim is the row's lock, taken with
// SKIP LOCKED by one transaction that holds it while work runs (on other
// connections) and commits the move: every other replica skips the row
// meanwhile, and a replica that dies mid-claim releases it with its
// connection.
//
// Each round trip has the store's deadline; work brings its own.
func (s *Store) ClaimDue(ctx context.Context, q store.DueQuery, work func(switchyard.ChangeRequest) (store.Move, bool)) (int64, error) {
	claimCtx, cancel := s.deadline(ctx)
	defer cancel()
	conn, err := s.pool.Acquire(claimCtx)
	if err != nil {
		return 0, dbError("connect to claim a due change request", err)
	}
	defer conn.Release()
	defer s.rollback(conn)
	var cr switchyard.ChangeRequest
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(`SELECT `+changeColumns+` FROM change_requests
		WHERE due_at <= $1 AND id > $2 AND ($3 = 0 OR id = $3)
		ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED`, q.Now, q.After, q.ID).QueryRow(func(row pgx.Row) error {
		var err error
		if cr, err = scanChange(row); errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if err := conn.SendBatch(claimCtx, b).Close(); err != nil {
		return 0, dbError("claim a due change request", err)
	}
	if cr.ID == 0 {
		return 0, nil
	}
	m, moves := work(cr)
	if !moves {
		return cr.ID, nil
	}
	moveCtx, cancel := s.deadline(ctx)
	defer cancel()
	_, _, err = s.move(moveCtx, conn, cr, m)
	return cr.ID, err
}

// queueChange writes cr to its row: a new row when insert is set, else
// the row's update.
func queueChange(b *pgx.Batch, cr switchyard.ChangeRequest, insert bool) error {
	doc, err := json.Marshal(cr)
	if err != nil {
		return fmt.Errorf("encode change request %d: %w", cr.ID, err)
	}
	var due, next *time.Time
	if at, ok := cr.DueAt(); ok {
		due = &at
	}
	if _, at, ok := cr.Next(); ok {
		next = &at
	}
	if insert {
		b.Queue(`INSERT INTO change_requests (id, state, due_at, next_at, created_at, doc) VALUES ($1, $2, $3, $4, $5, $6)`,
			cr.ID, string(cr.State), due, next, cr.CreatedAt, doc)
		return nil
	}
	b.Queue(`UPDATE change_requests SET state = $2, due_at = $3, next_at = $4, doc = $5 WHERE id = $1`,
		cr.ID, string(cr.State), due, next, doc)
	return nil
}

// scanChange reads one row selected with changeColumns.
func scanChange(row pgx.Row) (switchyard.ChangeRequest, error) {
	var id int64
	var doc string
	if err := row.Scan(&id, &doc); err != nil {
		return switchyard.ChangeRequest{}, err
	}
	var cr switchyard.ChangeRequest
	if err := json.Unmarshal([]byte(doc), &cr); err != nil {
		return switchyard.ChangeRequest{}, fmt.Errorf("decode change request %d: %w", id, err)
	}
	cr.ID = id
	return cr, nil
}
