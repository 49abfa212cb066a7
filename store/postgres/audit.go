package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-dev/switchyard/store"
)

// Audit implements store.Store: newest first, keyset-paginated by seq, so
// a page costs the same however deep the cursor is. The database weighs
// each row as AuditEntry.Size does and sends only those that may fit the
// page's bytes, so a page of heavy rows costs no more than its bytes to
// send and to hold.
func (s *Store) Audit(ctx context.Context, q store.AuditQuery) ([]store.AuditEntry, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	page := store.NewAuditPage(q)
	rows, err := s.pool.Query(ctx, `
		SELECT `+auditColumns+` FROM (
			SELECT *, sum(weight) OVER (ORDER BY seq DESC) - weight AS newer FROM (
				SELECT *, octet_length(actor) + octet_length(role) + octet_length(action) + octet_length(target) +
					octet_length(reason) + octet_length(phrase) + octet_length(request_id) + octet_length(outcome) +
					octet_length(why) + coalesce(octet_length(before::text), 0) + coalesce(octet_length(after::text), 0) +
					octet_length(prev_hash) + octet_length(hash) AS weight
				FROM switch_audit_log
				WHERE $1 = 0 OR seq < $1
				ORDER BY seq DESC LIMIT $2
			) page
		) weighed
		WHERE newer <= $3
		ORDER BY seq DESC`, q.Before, page.Limit(), page.MaxBytes())
	if err != nil {
		return nil, dbError("list the audit log", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e store.AuditEntry
		if err := scanAudit(rows, &e); err != nil {
			return nil, dbError("list the audit log", err)
		}
		if !page.Add(e) {
			break
		}
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list the audit log", err)
	}
	return page.Entries, nil
}

func collectAudit(rows pgx.Rows) ([]store.AuditEntry, error) {
	defer rows.Close()
	var out []store.AuditEntry
	for rows.Next() {
		var e store.AuditEntry
		if err := scanAudit(rows, &e); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// verifyPage is how many rows one verification query reads.
const verifyPage = 5000

// VerifyAudit implements store.Store. It walks the whole log in seq order
// through store.Chain, the verifier every store shares, one page per query
// so each query keeps its deadline however long the log is.
func (s *Store) VerifyAudit(ctx context.Context) (store.Verification, error) {
	var c store.Chain
	var after int64
	for {
		page, err := s.auditPage(ctx, after)
		if err != nil {
			return store.Verification{}, err
		}
		for _, e := range page {
			if !c.Add(e) {
				return c.Result(), nil
			}
		}
		if len(page) < verifyPage {
			return c.Result(), nil
		}
		after = page[len(page)-1].Seq
	}
}

// auditPage reads up to verifyPage entries with seq above after, oldest first.
func (s *Store) auditPage(ctx context.Context, after int64) ([]store.AuditEntry, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `
		SELECT `+auditColumns+` FROM switch_audit_log
		WHERE seq > $1 ORDER BY seq LIMIT $2`, after, verifyPage)
	if err != nil {
		return nil, dbError("read the audit log", err)
	}
	page, err := collectAudit(rows)
	if err != nil {
		return nil, dbError("read the audit log", err)
	}
	return page, nil
}
