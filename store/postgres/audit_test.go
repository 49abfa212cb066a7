package postgres

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/store"
)

func applyFlag(t *testing.T, s *Store, name string, on bool) store.AuditEntry {
	t.Helper()
	_, e, err := s.Apply(testContext(t), store.Change{
		Attempt:  store.Attempt{Actor: "alice", Role: "admin", Reason: "test", RequestID: "req"},
		Mutation: switchyard.SetSystemFlag(name, on)})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// TestAuditAppendOnly proves the log cannot be rewritten: the service's
// role lacks the privilege, and even the owner hits the trigger.
func TestAuditAppendOnly(t *testing.T) {
	f := newFixture(t)
	applyFlag(t, f.store, switchyard.ExamMode, true)
	applyFlag(t, f.store, switchyard.ExamMode, false)
	cur, err := f.store.Current(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.store.CreateSession(testContext(t), evaluator.NewSnapshot("s-1", "u", cur, time.Now(), time.Hour)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, sql string
		// ownerError is the trigger's message the owner gets.
		ownerError string
	}{
		{"update audit", "UPDATE switch_audit_log SET reason = 'edited'", "switch_audit_log is append-only: UPDATE refused"},
		{"delete audit", "DELETE FROM switch_audit_log WHERE seq = 1", "switch_audit_log is append-only: DELETE refused"},
		{"truncate audit", "TRUNCATE switch_audit_log", "switch_audit_log is append-only: TRUNCATE refused"},
		{"update snapshot", "UPDATE session_runtime_snapshot SET revision = 2", "session_runtime_snapshot is append-only: UPDATE refused"},
		{"update revision", "UPDATE revisions SET state = '{}'", "revisions is append-only: UPDATE refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			_, err := f.store.pool.Exec(ctx, tt.sql)
			if pgCode(err) != "42501" {
				t.Errorf("as %s: error = %v, want permission denied (42501)", ServiceRole, err)
			}
			_, err = f.owner.Exec(ctx, tt.sql)
			if pgCode(err) != "P0001" || !strings.Contains(err.Error(), tt.ownerError) {
				t.Errorf("as the owner: error = %v, want the trigger's %q", err, tt.ownerError)
			}
		})
	}
	v, err := f.store.VerifyAudit(testContext(t))
	if err != nil || !v.OK || v.Entries != 2 {
		t.Fatalf("verify after the refused edits = %+v, %v; want ok with 2 entries", v, err)
	}
}

// TestTamperNamed edits the log behind the store's back in the ways an
// owner could, and checks verification names the first bad entry.
func TestTamperNamed(t *testing.T) {
	tests := []struct {
		name     string
		sql      string
		firstBad int64
		problem  string
	}{
		{"reason edited", "UPDATE %s SET reason = 'routine' WHERE seq = 3", 3, "hash does not match"},
		{"time moved", "UPDATE %s SET created_at = created_at - interval '1 hour' WHERE seq = 2", 2, "hash does not match"},
		{"after edited", `UPDATE %s SET after = '{"EXAM_MODE":true}' WHERE seq = 4`, 4, "hash does not match"},
		{"row deleted", "DELETE FROM %s WHERE seq = 2", 3, "sequence jumps from 1 to 3"},
		{"row rehashed alone", "UPDATE %s SET reason = 'x', hash = md5('x') WHERE seq = 3", 3, "hash does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			for i := range 5 {
				applyFlag(t, f.store, switchyard.ExamMode, i%2 == 0)
			}
			f.tamper(t, strings.Replace(tt.sql, "%s", f.table("switch_audit_log"), 1))
			v, err := f.store.VerifyAudit(testContext(t))
			if err != nil {
				t.Fatal(err)
			}
			if v.FirstBad != tt.firstBad || v.OK != (tt.firstBad == 0) || !strings.Contains(v.Problem, tt.problem) {
				t.Fatalf("verify = %+v, want first bad entry %d (%q)", v, tt.firstBad, tt.problem)
			}
		})
	}
}

// recorder is a slog handler keeping the records, to read the service log.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// heads returns the (seq, hash) pairs the store logged, in order.
func (r *recorder) heads() (seqs []int64, hashes []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.records {
		rec.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "seq":
				seqs = append(seqs, a.Value.Int64())
			case "hash":
				hashes = append(hashes, a.Value.String())
			}
			return true
		})
	}
	return seqs, hashes
}

// TestServiceLogCarriesHead checks every write logs the newest (seq,
// hash), which then catches an owner who rewrites the whole chain: the
// rewritten chain verifies, but its head no longer matches the log.
func TestServiceLogCarriesHead(t *testing.T) {
	rec := &recorder{}
	f := newFixture(t, WithLogger(slog.New(rec)))
	applyFlag(t, f.store, switchyard.ExamMode, true)
	if _, err := f.store.Reject(testContext(t), store.Attempt{Actor: "eve", Role: "viewer"},
		switchyard.Errorf(switchyard.CodeForbidden, "viewers cannot change the runtime")); err != nil {
		t.Fatal(err)
	}
	_, _, err := f.store.Apply(testContext(t), store.Change{Expected: 1, Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, false)})
	if switchyard.ErrorCode(err) != switchyard.CodeRevisionConflict {
		t.Fatalf("stale change error = %v, want REVISION_CONFLICT", err)
	}
	seqs, hashes := rec.heads()
	v, err := f.store.VerifyAudit(testContext(t))
	if err != nil || !v.OK {
		t.Fatalf("verify = %+v, %v", v, err)
	}
	if len(seqs) != 3 || seqs[2] != 3 || len(hashes) != 3 || hashes[2] != v.HeadHash {
		t.Fatalf("logged heads %v %v, want seq 1..3 ending in the verified head %s", seqs, hashes, v.HeadHash)
	}
}

// TestCanonicalEncoding checks the database hashes exactly as
// store.ChainHash does, whatever the text and the session's time zone.
func TestCanonicalEncoding(t *testing.T) {
	u, schema, owner := newSchema(t)
	f := openFixture(t, withParam(t, u, "timezone", "America/St_Johns"), schema, owner)
	attempts := []store.Attempt{
		{},
		{Actor: "Zoë", Role: "admin", Action: "set_flag", Target: "EXAM_MODE", Reason: "Grüße 🚦 — \"quoted\"\nnew line; 12:34;",
			Phrase: "ENABLE EXAM MODE", RequestID: "req-∑"},
		{Actor: strings.Repeat("a", switchyard.MaxNameLength), Reason: strings.Repeat("ä", switchyard.MaxReasonLength),
			Phrase: `\x00 is not a NUL, and {"json": "looking"}`},
	}
	prev := ""
	for i, a := range attempts {
		e, err := f.store.Reject(testContext(t), a, switchyard.Errorf(switchyard.CodeForbidden, "attempt %d", i))
		if err != nil {
			t.Fatal(err)
		}
		if e.PrevHash != prev || store.ChainHash(prev, e) != e.Hash || e.Reason != a.Reason || e.Actor != a.Actor || e.Phrase != a.Phrase {
			t.Fatalf("entry %d = %+v: the database's hash differs from store.ChainHash", i, e)
		}
		prev = e.Hash
	}
	next := applyFlag(t, f.store, switchyard.FreezeUpdates, true)
	if store.ChainHash(prev, next) != next.Hash || string(next.After) != `{"FREEZE_UPDATES":true}` {
		t.Fatalf("applied entry %+v: hash or after differs", next)
	}
	if v, err := f.store.VerifyAudit(testContext(t)); err != nil || !v.OK || v.Entries != 4 {
		t.Fatalf("verify = %+v, %v", v, err)
	}
}
