package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/store"
)

// Apply implements store.Store as one transaction: lock the head, check
// the expected revision, apply the mutation in Go, then in one round trip
// insert the revision, move the head, rewrite the normalized tables, append
// the audit row and notify RevisionChannel. A refusal commits only its
// rejected audit row; any failure rolls everything back.
func (s *Store) Apply(ctx context.Context, c store.Change) (*evaluator.Revision, store.AuditEntry, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	c.Attempt.Action, c.Attempt.Target = c.Mutation.Action, c.Mutation.Target
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, store.AuditEntry{}, dbError("begin the change", err)
	}
	// Rollback is a no-op after Commit; after a failure it ends the
	// transaction or, when the connection is gone, discards it.
	defer tx.Rollback(ctx)
	// Locking the head queues concurrent changes behind this one. The lock
	// is its own statement: the next one then reads, with a fresh snapshot,
	// the revision the previous change committed.
	if _, err := tx.Exec(ctx, `SELECT FROM runtime_head FOR UPDATE`); err != nil {
		return nil, store.AuditEntry{}, dbError("lock the runtime head", err)
	}
	cur, err := s.current(ctx, tx)
	if err != nil {
		return nil, store.AuditEntry{}, err
	}
	now := s.cfg.now().UTC().Truncate(time.Microsecond)
	if c.Expected != 0 && c.Expected != cur.Number {
		refusal := evaluator.Errorf(evaluator.CodeRevisionConflict,
			"the change was based on revision %d but the current revision is %d", c.Expected, cur.Number).
			With("current_revision", cur.Number)
		return s.refuse(ctx, tx, c.Attempt, now, cur.Number, refusal)
	}
	next, refusal := c.Mutation.Apply(cur, now)
	if refusal != nil {
		return s.refuse(ctx, tx, c.Attempt, now, cur.Number, refusal)
	}
	e, err := store.NewAuditEntry(c.Attempt, now, next.Number, nil, c.Mutation.View(cur), c.Mutation.View(next))
	if err != nil {
		return nil, store.AuditEntry{}, err
	}
	state, err := jsonState(next)
	if err != nil {
		return nil, store.AuditEntry{}, err
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO revisions (number, created_at, state) VALUES ($1, $2, $3)`, next.Number, next.CreatedAt, state)
	b.Queue(`UPDATE runtime_head SET revision = $1`, next.Number)
	if err := queueTables(b, next); err != nil {
		return nil, store.AuditEntry{}, err
	}
	queueAudit(b, &e)
	b.Queue(`SELECT pg_notify($1, $2)`, RevisionChannel, strconv.FormatInt(next.Number, 10))
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, store.AuditEntry{}, dbError(fmt.Sprintf("write revision %d", next.Number), err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, store.AuditEntry{}, dbError(fmt.Sprintf("commit revision %d", next.Number), err)
	}
	s.remember(next)
	s.logged(e)
	return next, e, nil
}

// refuse commits a rejected audit entry for a refused change and returns
// the refusal, as store.Store promises.
func (s *Store) refuse(ctx context.Context, tx pgx.Tx, a store.Attempt, now time.Time, revision int64, refusal error) (*evaluator.Revision, store.AuditEntry, error) {
	// Without before and after the entry always encodes.
	e, _ := store.NewAuditEntry(a, now, revision, refusal, nil, nil)
	b := &pgx.Batch{}
	queueAudit(b, &e)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, store.AuditEntry{}, dbError("record the refused change", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, store.AuditEntry{}, dbError("commit the refused change", err)
	}
	s.logged(e)
	return nil, e, refusal
}

// Reject implements store.Store: one statement that records the attempt
// against the current revision.
func (s *Store) Reject(ctx context.Context, a store.Attempt, why error) (store.AuditEntry, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	e, _ := store.NewAuditEntry(a, s.cfg.now(), 0, why, nil, nil)
	err := scanAudit(s.pool.QueryRow(ctx, `
		INSERT INTO switch_audit_log (actor, role, action, target, reason, phrase, request_id, outcome, why, revision)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, revision FROM runtime_head
		RETURNING `+auditColumns,
		e.Actor, e.Role, e.Action, e.Target, e.Reason, e.Phrase, e.RequestID, e.Outcome, e.Why), &e)
	if err != nil {
		return store.AuditEntry{}, dbError("record the rejected attempt", err)
	}
	s.logged(e)
	return e, nil
}

// auditColumns is what reading an audit row selects, in scanAudit's order.
const auditColumns = `seq, created_at, actor, role, action, target, reason, phrase, request_id,
	outcome, why, revision, before::text, after::text, prev_hash, hash`

// queueAudit appends e to the log; the trigger assigns seq, time and
// hashes, which are scanned back into e.
func queueAudit(b *pgx.Batch, e *store.AuditEntry) {
	b.Queue(`
		INSERT INTO switch_audit_log (actor, role, action, target, reason, phrase, request_id, outcome, why, revision, before, after)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::json, $12::json)
		RETURNING `+auditColumns,
		e.Actor, e.Role, e.Action, e.Target, e.Reason, e.Phrase, e.RequestID, e.Outcome, e.Why, e.Revision,
		nullJSON(e.Before), nullJSON(e.After),
	).QueryRow(func(row pgx.Row) error { return scanAudit(row, e) })
}

func nullJSON(raw json.RawMessage) *string {
	if raw == nil {
		return nil
	}
	s := string(raw)
	return &s
}

// scanAudit reads one row selected with auditColumns into e.
func scanAudit(row pgx.Row, e *store.AuditEntry) error {
	var before, after *string
	err := row.Scan(&e.Seq, &e.Time, &e.Actor, &e.Role, &e.Action, &e.Target, &e.Reason, &e.Phrase, &e.RequestID,
		&e.Outcome, &e.Why, &e.Revision, &before, &after, &e.PrevHash, &e.Hash)
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
// profiles, overrides) to show r. They are small, so rewriting them whole
// is simpler than diffing and cannot leave a stale row behind.
func queueTables(b *pgx.Batch, r *evaluator.Revision) error {
	b.Queue(`DELETE FROM module_overrides`)
	b.Queue(`DELETE FROM module_catalog`)
	b.Queue(`DELETE FROM system_flags`)
	b.Queue(`DELETE FROM runtime_profiles`)

	keys, kinds, versions := make([]string, len(r.Catalog)), make([]string, len(r.Catalog)), make([]string, len(r.Catalog))
	for i, m := range r.Catalog {
		v, err := json.Marshal(m.Versions)
		if err != nil {
			return fmt.Errorf("encode versions of module %q: %w", m.Key, err)
		}
		keys[i], kinds[i], versions[i] = m.Key, string(m.Kind), string(v)
	}
	b.Queue(`
		INSERT INTO module_catalog (module_key, kind, versions)
		SELECT k, kind, ARRAY(SELECT jsonb_array_elements_text(v::jsonb))
		FROM unnest($1::text[], $2::text[], $3::text[]) AS m(k, kind, v)`, keys, kinds, versions)

	names := make([]string, len(evaluator.SystemFlagNames))
	values := make([]bool, len(evaluator.SystemFlagNames))
	for i, name := range evaluator.SystemFlagNames {
		names[i] = name
		values[i], _ = r.System.Get(name)
	}
	b.Queue(`INSERT INTO system_flags (name, enabled) SELECT * FROM unnest($1::text[], $2::bool[])`, names, values)

	profiles := r.ProfileNames()
	configs, active := make([]string, len(profiles)), make([]bool, len(profiles))
	for i, name := range profiles {
		c, err := json.Marshal(r.Profiles[name].Modules)
		if err != nil {
			return fmt.Errorf("encode profile %q: %w", name, err)
		}
		configs[i], active[i] = string(c), name == r.ActiveProfile
	}
	b.Queue(`
		INSERT INTO runtime_profiles (name, config, is_active)
		SELECT name, config::jsonb, is_active FROM unnest($1::text[], $2::text[], $3::bool[]) AS p(name, config, is_active)`,
		profiles, configs, active)

	var modules []string
	var overrideVersions []*string
	var overrideEnabled []*bool
	for _, m := range r.Catalog {
		if o, ok := r.Overrides[m.Key]; ok {
			modules = append(modules, m.Key)
			overrideVersions = append(overrideVersions, o.Version)
			overrideEnabled = append(overrideEnabled, o.Enabled)
		}
	}
	b.Queue(`
		INSERT INTO module_overrides (module_key, version_key, is_enabled)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bool[])`, modules, overrideVersions, overrideEnabled)
	return nil
}

// jsonState encodes a revision as its immutable JSONB record.
func jsonState(r *evaluator.Revision) ([]byte, error) {
	state, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode revision %d: %w", r.Number, err)
	}
	return state, nil
}
