package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
)

// Apply implements store.Store as one transaction in two round trips:
// the first opens it, locks the head and reads the change's idempotency
// key; then the mutation is applied in Go; the second inserts the
// revision, moves the head, rewrites the normalized tables, appends the
// audit row and keeps the key, notifies RevisionChannel and commits. A
// refusal commits only its rejected audit row; any failure rolls
// everything back. When the second round trip fails after the COMMIT may
// have reached the database, settle finds out whether it did before Apply
// answers.
func (s *Store) Apply(ctx context.Context, c store.Change) (*switchyard.Revision, store.AuditEntry, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	c.Attempt.Action, c.Attempt.Target = c.Mutation.Action, c.Mutation.Target
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, store.AuditEntry{}, dbError("connect for the change", err)
	}
	defer conn.Release()
	defer s.rollback(conn)
	head, k, keyed, err := s.lockHead(ctx, conn, c.IdempotencyKey)
	if err != nil {
		return nil, store.AuditEntry{}, err
	}
	cur, err := s.revision(ctx, conn, head.number, head.id)
	if err != nil {
		return nil, store.AuditEntry{}, err
	}
	now := s.cfg.now().UTC().Truncate(time.Microsecond)
	if keyed {
		if refusal := k.Answers(c.Attempt); refusal != nil {
			return s.refuse(ctx, conn, c.Attempt, now, cur.Number, refusal)
		}
		rev, err := s.revision(ctx, conn, k.Entry.Revision, "")
		if err != nil {
			return nil, store.AuditEntry{}, err
		}
		return rev, k.Entry, nil
	}
	next, refusal := store.Next(ctx, cur, c, now)
	if refusal != nil {
		return s.refuse(ctx, conn, c.Attempt, now, cur.Number, refusal)
	}
	e, err := store.NewAuditEntry(c.Attempt, now, next.Number, nil, c.Mutation.View(cur), c.Mutation.View(next))
	if err != nil {
		return nil, store.AuditEntry{}, err
	}
	stored, err := encodeRow(cur, next, head.chain)
	if err != nil {
		return nil, store.AuditEntry{}, err
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO revisions (number, id, created_at, state, base, chain_bytes) VALUES ($1, $2, $3, $4, $5, $6)`,
		next.Number, next.ID, next.CreatedAt, stored.state, stored.base, stored.chainBytes)
	b.Queue(`UPDATE runtime_head SET revision = $1`, next.Number)
	if err := queueTables(b, cur, next); err != nil {
		return nil, store.AuditEntry{}, err
	}
	queueAudit(b, &e, c.IdempotencyKey, c.RequestHash)
	b.Queue(`SELECT pg_notify($1, $2)`, RevisionChannel, strconv.FormatInt(next.Number, 10))
	b.Queue(`COMMIT`)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		if e, err = s.settle(ctx, c.Attempt, next.Number, err, fmt.Sprintf("write revision %d", next.Number)); err != nil {
			return nil, store.AuditEntry{}, err
		}
	}
	s.remember(next)
	s.logged(e)
	return next, e, nil
}

// lockedHead is the runtime head as a change finds it under its lock.
type lockedHead struct {
	number int64
	id     string
	chain  chain
}

// lockHead opens a transaction on conn, locks the runtime head and returns
// it, with the change key names when key is set and names one. Locking
// the head queues concurrent changes behind this one; each then reads, in
// its next statement, what the previous one committed, its key included,
// so two attempts with one key never both apply.
func (s *Store) lockHead(ctx context.Context, conn *pgxpool.Conn, key string) (h lockedHead, k store.Keyed, keyed bool, err error) {
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(`SELECT revision FROM runtime_head FOR UPDATE`).QueryRow(func(row pgx.Row) error { return row.Scan(&h.number) })
	// A statement of its own, so it reads the head as the lock found it:
	// joined to the locking one, a head moved while this change waited
	// would find its old row's join partners, and no row.
	b.Queue(`
		SELECT r.id, coalesce(r.base, r.number), r.chain_bytes, pg_column_size(w.state)
		FROM runtime_head h
		JOIN revisions r ON r.number = h.revision
		JOIN revisions w ON w.number = coalesce(r.base, r.number)`).QueryRow(func(row pgx.Row) error {
		return row.Scan(&h.id, &h.chain.base, &h.chain.bytes, &h.chain.baseBytes)
	})
	if key != "" {
		b.Queue(keyedQuery, key).QueryRow(func(row pgx.Row) error {
			err := scanKeyed(row, &k)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			keyed = err == nil
			return err
		})
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return lockedHead{}, store.Keyed{}, false, dbError("lock the runtime head", err)
	}
	return h, k, keyed, nil
}

// settle returns the audit entry of a change whose last round trip, the
// one that commits, failed with failure; op names the step in an error.
// When the database answered with an error, or the round trip failed
// before anything was sent, the change was not applied. Otherwise the
// COMMIT may have reached the database and the answer got lost: settle
// asks, on another connection and with a deadline of its own, for the
// applied entry of the attempt at revision. Found, the change is applied
// (and logged as if it had been acknowledged); not found, it is not, and
// the error is UNAVAILABLE; if the database cannot tell either,
// OUTCOME_UNKNOWN says so and how to retry safely.
func (s *Store) settle(ctx context.Context, a store.Attempt, revision int64, failure error, op string) (store.AuditEntry, error) {
	return s.settleBy(ctx, a, failure, op, func(ctx context.Context) (store.AuditEntry, bool, error) {
		return s.findApplied(ctx, a, revision)
	})
}

// settleBy is settle with find, which looks up the applied entry of the
// attempt once its transaction has ended.
func (s *Store) settleBy(ctx context.Context, a store.Attempt, failure error, op string,
	find func(context.Context) (store.AuditEntry, bool, error)) (store.AuditEntry, error) {
	var pgErr *pgconn.PgError
	if errors.As(failure, &pgErr) || pgconn.SafeToRetry(failure) {
		return store.AuditEntry{}, dbError(op, failure)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.timeout)
	defer cancel()
	e, found, err := find(ctx)
	switch {
	case err != nil && a.IdempotencyKey != "":
		return store.AuditEntry{}, switchyard.Errorf(switchyard.CodeOutcomeUnknown,
			"%s: the database stopped answering after the commit was sent (%v) and cannot be asked whether it committed (%v): "+
				"the change may or may not be applied; send the request again with the same Idempotency-Key, which applies it at most once",
			op, failure, err).With("request_id", a.RequestID)
	case err != nil:
		return store.AuditEntry{}, switchyard.Errorf(switchyard.CodeOutcomeUnknown,
			"%s: the database stopped answering after the commit was sent (%v) and cannot be asked whether it committed (%v): "+
				"the change may or may not be applied; look for request ID %q in the audit log before sending it again "+
				"(sent with an Idempotency-Key, a change can always be sent again safely)",
			op, failure, err, a.RequestID).With("request_id", a.RequestID)
	case !found:
		return store.AuditEntry{}, switchyard.Errorf(switchyard.CodeUnavailable,
			"%s: the database did not acknowledge the commit (%v) and has no trace of it: the change was not applied; send it again",
			op, failure)
	}
	s.cfg.log.Warn("a change's commit was not acknowledged, and the database says it was applied",
		"request_id", a.RequestID, "revision", e.Revision, "seq", e.Seq, "failure", failure)
	return e, nil
}

// findApplied looks up the applied audit entry of attempt a at revision,
// in one round trip that sends no prepare first: switch_applied_entry
// waits for the attempt's own transaction to end, if it still runs, then
// reads.
func (s *Store) findApplied(ctx context.Context, a store.Attempt, revision int64) (store.AuditEntry, bool, error) {
	var e store.AuditEntry
	err := scanAudit(s.pool.QueryRow(ctx, `SELECT `+auditColumns+` FROM switch_applied_entry($1, $2, $3)`,
		pgx.QueryExecModeExec, a.RequestID, a.Action, revision), &e)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return store.AuditEntry{}, false, nil
	case err != nil:
		return store.AuditEntry{}, false, err
	}
	return e, true, nil
}

// rollback ends a transaction that Apply left open after a failure (once
// it has committed, the connection is idle and this does nothing). When
// that fails too, the pool discards the connection on release, as it does
// any connection not idle.
func (s *Store) rollback(conn *pgxpool.Conn) {
	if conn.Conn().PgConn().TxStatus() == 'I' || conn.Conn().IsClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.timeout)
	defer cancel()
	conn.Exec(ctx, `ROLLBACK`)
}

// refuse commits a rejected audit entry for a refused change and returns
// the refusal, as store.Store promises.
func (s *Store) refuse(ctx context.Context, conn *pgxpool.Conn, a store.Attempt, now time.Time, revision int64, refusal error) (*switchyard.Revision, store.AuditEntry, error) {
	// Without before and after the entry always encodes.
	e, _ := store.NewAuditEntry(a, now, revision, refusal, nil, nil)
	b := &pgx.Batch{}
	queueAudit(b, &e, "", "")
	b.Queue(`COMMIT`)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return nil, store.AuditEntry{}, dbError("record the refused change", err)
	}
	s.logged(e)
	return nil, e, refusal
}

// Reject implements store.Store: one statement that records the attempt
// against the current revision.
func (s *Store) Reject(ctx context.Context, a store.Attempt, why error) (store.AuditEntry, error) {
	// Without before and after the entry always encodes.
	e, _ := store.NewAuditEntry(a, s.cfg.now(), 0, why, nil, nil)
	return s.appendAudit(ctx, e, "record the rejected attempt")
}

// Record implements store.Store as one transaction in two round trips,
// as Apply: the first locks the head (which names the revision the entry
// records) and reads the idempotency key, the second appends the entry,
// keeps the key and commits; settle decides a commit not acknowledged.
func (s *Store) Record(ctx context.Context, a store.Attempt, before, after any) (store.AuditEntry, error) {
	e, err := store.NewAuditEntry(a, s.cfg.now(), 0, nil, before, after)
	if err != nil {
		return store.AuditEntry{}, err
	}
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return store.AuditEntry{}, dbError("connect to record the change", err)
	}
	defer conn.Release()
	defer s.rollback(conn)
	head, k, keyed, err := s.lockHead(ctx, conn, a.IdempotencyKey)
	if err != nil {
		return store.AuditEntry{}, err
	}
	if keyed {
		if err := k.Answers(a); err != nil {
			return store.AuditEntry{}, err
		}
		return k.Entry, nil
	}
	e.Revision = head.number
	b := &pgx.Batch{}
	queueAudit(b, &e, a.IdempotencyKey, a.RequestHash)
	b.Queue(`COMMIT`)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		if e, err = s.settle(ctx, a, head.number, err, "record the change"); err != nil {
			return store.AuditEntry{}, err
		}
	}
	s.logged(e)
	return e, nil
}

// appendAudit inserts e against the current revision in one statement and
// returns it as the trigger chained it; op names the step in an error.
// Only refusals are appended this way: whether one was recorded never
// changes what the caller is told.
func (s *Store) appendAudit(ctx context.Context, e store.AuditEntry, op string) (store.AuditEntry, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	err := scanAudit(s.pool.QueryRow(ctx, `
		INSERT INTO switch_audit_log (actor, role, action, target, reason, phrase, request_id, outcome, why, revision, before, after)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, revision, $10::json, $11::json FROM runtime_head
		RETURNING `+auditColumns,
		e.Actor, e.Role, e.Action, e.Target, e.Reason, e.Phrase, e.RequestID, e.Outcome, e.Why,
		nullJSON(e.Before), nullJSON(e.After)), &e)
	if err != nil {
		return store.AuditEntry{}, dbError(op, err)
	}
	s.logged(e)
	return e, nil
}

// auditColumns is what reading an audit row selects, in scanAudit's order.
const auditColumns = `seq, created_at, actor, role, action, target, reason, phrase, request_id,
	outcome, why, revision, before::text, after::text, prev_hash, hash`

// queueAudit appends e to the log and, when key is set, keeps the key
// with requestHash for the entry, in one statement; the trigger assigns
// seq, time and hashes, which are scanned back into e.
func queueAudit(b *pgx.Batch, e *store.AuditEntry, key, requestHash string) {
	b.Queue(`
		WITH a AS (
			INSERT INTO switch_audit_log (actor, role, action, target, reason, phrase, request_id, outcome, why, revision, before, after)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::json, $12::json)
			RETURNING *
		), k AS (
			INSERT INTO idempotency_keys (key, request_hash, audit_seq, created_at)
			SELECT $13, $14, seq, created_at FROM a WHERE $13 <> ''
		)
		SELECT `+auditColumns+` FROM a`,
		e.Actor, e.Role, e.Action, e.Target, e.Reason, e.Phrase, e.RequestID, e.Outcome, e.Why, e.Revision,
		nullJSON(e.Before), nullJSON(e.After), key, requestHash,
	).QueryRow(func(row pgx.Row) error { return scanAudit(row, e) })
}

// keyedQuery selects the change an idempotency key names, in scanKeyed's
// order.
const keyedQuery = `
	SELECT k.request_hash, ` + auditColumns + ` FROM switch_audit_log
	JOIN (SELECT audit_seq, request_hash FROM idempotency_keys WHERE key = $1) k ON seq = k.audit_seq`

// scanKeyed reads one row selected with keyedQuery into k.
func scanKeyed(row pgx.Row, k *store.Keyed) error {
	return scanAudit(row, &k.Entry, &k.RequestHash)
}

// Keyed implements store.Store.
func (s *Store) Keyed(ctx context.Context, key string) (store.Keyed, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var k store.Keyed
	err := scanKeyed(s.pool.QueryRow(ctx, keyedQuery, key), &k)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Keyed{}, switchyard.Errorf(switchyard.CodeNotFound, "no change is kept under Idempotency-Key %q", key)
	}
	if err != nil {
		return store.Keyed{}, dbError("read an idempotency key", err)
	}
	return k, nil
}

func nullJSON(raw json.RawMessage) *string {
	if raw == nil {
		return nil
	}
	s := string(raw)
	return &s
}

// scanAudit reads one row selected with auditColumns, after the columns
// scanned into first, into e.
func scanAudit(row pgx.Row, e *store.AuditEntry, first ...any) error {
	var before, after *string
	err := row.Scan(append(first, &e.Seq, &e.Time, &e.Actor, &e.Role, &e.Action, &e.Target, &e.Reason, &e.Phrase, &e.RequestID,
		&e.Outcome, &e.Why, &e.Revision, &before, &after, &e.PrevHash, &e.Hash)...)
	if err != nil {
		return err
	}
	e.Time = e.Time.UTC()
	e.Before, e.After = nil, nil
	if before != nil {
		e.Before = json.RawMessage(*before)
	}
	if after != nil {
		e.After = json.RawMessage(*after)
	}
	return nil
}

// logged writes the newest (seq, hash) to the service log. An owner who
// rewrites the whole chain in the database cannot rewrite this log, so
// comparing the two still catches them.
func (s *Store) logged(e store.AuditEntry) {
	s.cfg.log.Info("audit appended", "seq", e.Seq, "hash", e.Hash, "outcome", e.Outcome,
		"action", e.Action, "target", e.Target, "revision", e.Revision)
}

// queueTables rewrites the normalized tables (catalog, system flags,
// profiles, overrides) whose content differs between cur and next; all of
// them when cur is nil. Each table is small, so rewriting one whole is
// simpler than diffing rows and cannot leave a stale row behind.
func queueTables(b *pgx.Batch, cur, next *switchyard.Revision) error {
	catalog := cur == nil || !reflect.DeepEqual(cur.Catalog, next.Catalog)
	// Overrides reference the catalog, so they go whenever it is rewritten.
	overrides := catalog || !reflect.DeepEqual(cur.Overrides, next.Overrides)
	if overrides {
		b.Queue(`DELETE FROM module_overrides`)
	}
	if catalog {
		if err := queueCatalog(b, next); err != nil {
			return err
		}
	}
	if cur == nil || cur.System != next.System {
		queueSystemFlags(b, next)
	}
	if cur == nil || cur.ActiveProfile != next.ActiveProfile || !reflect.DeepEqual(cur.Profiles, next.Profiles) {
		if err := queueProfiles(b, next); err != nil {
			return err
		}
	}
	if overrides {
		queueOverrides(b, next)
	}
	return nil
}

func queueCatalog(b *pgx.Batch, r *switchyard.Revision) error {
	keys, kinds, versions := make([]string, len(r.Catalog)), make([]string, len(r.Catalog)), make([]string, len(r.Catalog))
	for i, m := range r.Catalog {
		v, err := json.Marshal(m.Versions)
		if err != nil {
			return fmt.Errorf("encode versions of module %q: %w", m.Key, err)
		}
		keys[i], kinds[i], versions[i] = m.Key, string(m.Kind), string(v)
	}
	b.Queue(`DELETE FROM module_catalog`)
	b.Queue(`
		INSERT INTO module_catalog (module_key, kind, versions)
		SELECT k, kind, ARRAY(SELECT jsonb_array_elements_text(v::jsonb))
		FROM unnest($1::text[], $2::text[], $3::text[]) AS m(k, kind, v)`, keys, kinds, versions)
	return nil
}

func queueSystemFlags(b *pgx.Batch, r *switchyard.Revision) {
	names := make([]string, len(switchyard.SystemFlagNames))
	values := make([]bool, len(switchyard.SystemFlagNames))
	for i, name := range switchyard.SystemFlagNames {
		names[i] = name
		values[i], _ = r.System.Get(name)
	}
	b.Queue(`DELETE FROM system_flags`)
	b.Queue(`INSERT INTO system_flags (name, enabled) SELECT * FROM unnest($1::text[], $2::bool[])`, names, values)
}

func queueProfiles(b *pgx.Batch, r *switchyard.Revision) error {
	profiles := r.ProfileNames()
	configs, active := make([]string, len(profiles)), make([]bool, len(profiles))
	for i, name := range profiles {
		c, err := json.Marshal(r.Profiles[name].Modules)
		if err != nil {
			return fmt.Errorf("encode profile %q: %w", name, err)
		}
		configs[i], active[i] = string(c), name == r.ActiveProfile
	}
	b.Queue(`DELETE FROM runtime_profiles`)
	b.Queue(`
		INSERT INTO runtime_profiles (name, config, is_active)
		SELECT name, config::jsonb, is_active FROM unnest($1::text[], $2::text[], $3::bool[]) AS p(name, config, is_active)`,
		profiles, configs, active)
	return nil
}

func queueOverrides(b *pgx.Batch, r *switchyard.Revision) {
	var modules []string
	var versions []*string
	var enabled []*bool
	for _, m := range r.Catalog {
		if o, ok := r.Overrides[m.Key]; ok {
			modules = append(modules, m.Key)
			versions = append(versions, o.Version)
			enabled = append(enabled, o.Enabled)
		}
	}
	b.Queue(`
		INSERT INTO module_overrides (module_key, version_key, is_enabled)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bool[])`, modules, versions, enabled)
}

// jsonState encodes a revision as its immutable JSONB record.
func jsonState(r *switchyard.Revision) ([]byte, error) {
	// Not json.Marshal(r), which would scan the bytes again.
	state, err := r.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encode revision %d: %w", r.Number, err)
	}
	return state, nil
}
