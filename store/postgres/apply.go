package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
)

// Apply implements store.Store as one transaction in two round trips:
// the first opens it and locks the head; then the mutation is applied in
// Go; the second inserts the revision, moves the head, rewrites the
// normalized tables, appends the audit row, notifies RevisionChannel and
// commits. A refusal commits only its rejected audit row; any failure
// rolls everything back.
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
	// Locking the head queues concurrent changes behind this one; each then
	// reads, in its next statement, the revision the previous one committed.
	var head int64
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(`SELECT revision FROM runtime_head FOR UPDATE`).QueryRow(func(row pgx.Row) error { return row.Scan(&head) })
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return nil, store.AuditEntry{}, dbError("lock the runtime head", err)
	}
	cur, err := s.revision(ctx, conn, head)
	if err != nil {
		return nil, store.AuditEntry{}, err
	}
	now := s.cfg.now().UTC().Truncate(time.Microsecond)
	next, refusal := store.Next(ctx, cur, c, now)
	if refusal != nil {
		return s.refuse(ctx, conn, c.Attempt, now, cur.Number, refusal)
	}
	e, err := store.NewAuditEntry(c.Attempt, now, next.Number, nil, c.Mutation.View(cur), c.Mutation.View(next))
	if err != nil {
		return nil, store.AuditEntry{}, err
	}
	state, err := jsonState(next)
	if err != nil {
		return nil, store.AuditEntry{}, err
	}
	b = &pgx.Batch{}
	b.Queue(`INSERT INTO revisions (number, created_at, state) VALUES ($1, $2, $3)`, next.Number, next.CreatedAt, state)
	b.Queue(`UPDATE runtime_head SET revision = $1`, next.Number)
	if err := queueTables(b, cur, next); err != nil {
		return nil, store.AuditEntry{}, err
	}
	queueAudit(b, &e)
	b.Queue(`SELECT pg_notify($1, $2)`, RevisionChannel, strconv.FormatInt(next.Number, 10))
	b.Queue(`COMMIT`)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return nil, store.AuditEntry{}, dbError(fmt.Sprintf("write revision %d", next.Number), err)
	}
	s.remember(next)
	s.logged(e)
	return next, e, nil
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
	queueAudit(b, &e)
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

// Record implements store.Store: one statement that appends the applied
// entry against the current revision.
func (s *Store) Record(ctx context.Context, a store.Attempt, before, after any) (store.AuditEntry, error) {
	e, err := store.NewAuditEntry(a, s.cfg.now(), 0, nil, before, after)
	if err != nil {
		return store.AuditEntry{}, err
	}
	return s.appendAudit(ctx, e, "record the change")
}

// appendAudit inserts e against the current revision in one statement and
// returns it as the trigger chained it; op names the step in an error.
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
	state, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode revision %d: %w", r.Number, err)
	}
	return state, nil
}
