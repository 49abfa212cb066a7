package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/storetest"
)

// chainLock is the advisory lock the audit trigger takes, as the owner can
// take it too: holding it parks any writer inside its transaction, right
// at the audit insert, after the revision and head have been written.
type chainLock struct {
	conn  *pgxpool.Conn
	table string
}

const chainLockClass = 1937339233

func holdChainLock(t *testing.T, f *fixture) *chainLock {
	t.Helper()
	ctx := testContext(t)
	conn, err := f.owner.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l := &chainLock{conn: conn, table: f.table("switch_audit_log")}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, $2::regclass::oid::int)`, chainLockClass, l.table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.release)
	return l
}

func (l *chainLock) release() {
	if l.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1, $2::regclass::oid::int)`, chainLockClass, l.table)
	l.conn.Release()
	l.conn = nil
}

// waiter returns the backend waiting for the lock, once there is one.
func (l *chainLock) waiter(t *testing.T) int32 {
	t.Helper()
	ctx := testContext(t)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		var pids []int32
		err := l.conn.QueryRow(ctx, `
			SELECT coalesce(array_agg(pid), '{}') FROM pg_locks
			WHERE locktype = 'advisory' AND NOT granted
			  AND classid = $1::int8::oid AND objid = $2::regclass::oid AND objsubid = 2`,
			chainLockClass, l.table).Scan(&pids)
		if err != nil {
			t.Fatal(err)
		}
		if len(pids) > 0 {
			return pids[0]
		}
		select {
		case <-ctx.Done():
			t.Fatal("no writer ever waited for the audit chain lock")
		case <-tick.C:
		}
	}
}

// TestKilledConnectionLeavesNothing kills the store's connection in the
// middle of a change (revision and head written, audit row pending) and
// checks nothing of it survives and the store carries on.
func TestKilledConnectionLeavesNothing(t *testing.T) {
	f := newFixture(t)
	lock := holdChainLock(t, f)
	done := make(chan error, 1)
	go func() {
		_, _, err := f.store.Apply(testContext(t), store.Change{Attempt: store.Attempt{Actor: "alice"},
			Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)})
		done <- err
	}()
	pid := lock.waiter(t)
	var killed bool
	if err := f.owner.QueryRow(testContext(t), `SELECT pg_terminate_backend($1)`, pid).Scan(&killed); err != nil || !killed {
		t.Fatalf("terminate backend %d: %v, %v", pid, killed, err)
	}
	if err := <-done; switchyard.ErrorCode(err) != switchyard.CodeUnavailable {
		t.Fatalf("Apply on a killed connection = %v, want UNAVAILABLE", err)
	}
	lock.release()

	for table, want := range map[string]int{"revisions": 1, "switch_audit_log": 0} {
		if n := f.count(t, table); n != want {
			t.Errorf("%s has %d rows after the failed change, want %d", table, n, want)
		}
	}
	var head int64
	var exam bool
	err := f.owner.QueryRow(testContext(t), `SELECT (SELECT revision FROM `+f.table("runtime_head")+`),
		(SELECT enabled FROM `+f.table("system_flags")+` WHERE name = 'EXAM_MODE')`).Scan(&head, &exam)
	if err != nil || head != 1 || exam {
		t.Fatalf("head %d, EXAM_MODE %v, %v; want revision 1 with exam mode off", head, exam, err)
	}
	next, _, err := f.store.Apply(testContext(t), store.Change{Attempt: store.Attempt{Actor: "alice"}, Expected: 1,
		Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)})
	if err != nil || next.Number != 2 {
		t.Fatalf("the change after the failure = %v, %v; want revision 2", next, err)
	}
	if v, err := f.store.VerifyAudit(testContext(t)); err != nil || !v.OK || v.Entries != 1 {
		t.Fatalf("verify = %+v, %v", v, err)
	}
}

// TestCallDeadline checks a call stuck in the database gives up at the
// store's timeout with UNAVAILABLE, instead of hanging.
func TestCallDeadline(t *testing.T) {
	f := newFixture(t)
	const timeout = time.Second
	s, err := Open(testContext(t), f.url, WithLogger(quiet), WithTimeout(timeout))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	holdChainLock(t, f)
	start := time.Now()
	_, err = s.Reject(testContext(t), store.Attempt{Actor: "eve"}, switchyard.Errorf(switchyard.CodeForbidden, "no"))
	if switchyard.ErrorCode(err) != switchyard.CodeUnavailable {
		t.Fatalf("Reject while the chain is locked = %v, want UNAVAILABLE", err)
	}
	if took := time.Since(start); took < timeout || took > 5*timeout {
		t.Fatalf("Reject gave up after %v with a %v timeout", took, timeout)
	}
}

// TestCancelledCall checks a call its caller gives up on while it waits
// in the database is CANCELED, not UNAVAILABLE: the database did not fail,
// so nothing may be logged or counted as if it had.
func TestCancelledCall(t *testing.T) {
	f := newFixture(t)
	l := holdChainLock(t, f)
	ctx, cancel := context.WithCancel(testContext(t))
	done := make(chan error, 1)
	go func() {
		_, err := f.store.Reject(ctx, store.Attempt{Actor: "eve"}, switchyard.Errorf(switchyard.CodeForbidden, "no"))
		done <- err
	}()
	l.waiter(t)
	cancel()
	if err := <-done; switchyard.AsError(err).Code != switchyard.CodeCanceled {
		t.Fatalf("Reject cancelled while it waits = %v, want CANCELED", err)
	}
}

// silentServer accepts connections and never answers, like a hung
// database or a black-holed network.
func silentServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 64)
	go func() {
		defer close(conns)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- conn
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for conn := range conns {
			conn.Close()
		}
	})
	return ln.Addr().String()
}

// closedPort returns an address nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestDeadDatabase checks Open and Migrate fail fast with UNAVAILABLE on a
// server that refuses or never answers.
func TestDeadDatabase(t *testing.T) {
	tests := []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"silent", silentServer},
		{"refused", closedPort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := "postgres://postgres@" + tt.addr(t) + "/test?sslmode=disable"
			opts := []Option{WithLogger(quiet), WithTimeout(300 * time.Millisecond)}
			start := time.Now()
			_, err := Open(testContext(t), u, opts...)
			if switchyard.ErrorCode(err) != switchyard.CodeUnavailable {
				t.Errorf("Open = %v, want UNAVAILABLE", err)
			}
			_, err = Migrate(testContext(t), u, opts...)
			if switchyard.ErrorCode(err) != switchyard.CodeUnavailable {
				t.Errorf("Migrate = %v, want UNAVAILABLE", err)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %v with a 300ms timeout", took)
			}
		})
	}
}

// TestOpenNeedsMigrations checks Open tells the operator to migrate rather
// than failing on the first request.
func TestOpenNeedsMigrations(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, u string, f *fixture)
		want  string
	}{
		{"empty schema", func(*testing.T, string, *fixture) {}, "has no Switchyard schema"},
		{"user outside the service role", func(t *testing.T, u string, f *fixture) {
			if _, err := Migrate(testContext(t), u, WithLogger(quiet)); err != nil {
				t.Fatal(err)
			}
			f.url = loginAs(t, f.owner, u)
		}, `cannot work as role switchyard_app (permission denied to set role "switchyard_app")`},
		{"old schema", func(t *testing.T, u string, f *fixture) {
			if _, err := Migrate(testContext(t), u, WithLogger(quiet)); err != nil {
				t.Fatal(err)
			}
			if _, err := f.owner.Exec(testContext(t), `DELETE FROM `+f.table("goose_db_version")+` WHERE version_id > 0`); err != nil {
				t.Fatal(err)
			}
		}, "schema is at version 0, this binary needs " + strconv.FormatInt(mustLatest(), 10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u, schema, owner := newSchema(t)
			f := &fixture{url: u, schema: schema, owner: owner}
			tt.setup(t, u, f)
			_, err := Open(testContext(t), f.url, WithLogger(quiet))
			if switchyard.ErrorCode(err) != switchyard.CodeUnavailable || !strings.Contains(err.Error(), tt.want) ||
				!strings.Contains(err.Error(), "switchyard migrate up") {
				t.Fatalf("Open = %v, want UNAVAILABLE saying %q and to run `switchyard migrate up`", err, tt.want)
			}
		})
	}
}

func mustLatest() int64 {
	v, err := latestMigration()
	if err != nil {
		panic(err)
	}
	return v
}

// loginAs creates a login role that is not a member of ServiceRole,
// dropped when the test ends, and returns u with it as the user.
func loginAs(t *testing.T, owner *pgxpool.Pool, u string) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	role := "switchyard_test_" + hex.EncodeToString(b[:])
	if _, err := owner.Exec(testContext(t), "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := owner.Exec(ctx, "DROP ROLE "+pgx.Identifier{role}.Sanitize()); err != nil {
			t.Errorf("drop role %s: %v", role, err)
		}
	})
	if !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		return withParam(t, u, "user", role)
	}
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	parsed.User = url.User(role)
	return parsed.String()
}

// TestUnacknowledgedCommit parks a change inside its committing round trip
// (its audit row waits for the chain lock), through a proxy, until its
// deadline passes, so the store cannot tell from its own connection
// whether the COMMIT took. Apply must answer what the database did: the
// change committed but its answer was lost (applied, and logged), the
// change cancelled when the store gave up (UNAVAILABLE, not applied), or
// the database unreachable when the store asks (OUTCOME_UNKNOWN, saying to
// retry with the same key). Whatever the answer, a retry with the same key
// leaves the change applied exactly once.
func TestUnacknowledgedCommit(t *testing.T) {
	tests := []struct {
		name string
		// fault breaks the link once the change is parked, and
		// unpark ends the parked change while Apply waits, or, with
		// after set, only once Apply has answered.
		fault  func(p *storetest.Proxy)
		unpark bool
		code   switchyard.Code
		want   string
		// revision and entries are the current revision and the audit
		// log's length once Apply has answered and the lock is released.
		revision int64
		entries  int
	}{
		{"committed, answer lost", (*storetest.Proxy).Mute, true, "", "", 2, 1},
		{"cancelled when the store gave up", func(*storetest.Proxy) {}, false,
			switchyard.CodeUnavailable, "the change was not applied", 1, 0},
		{"database unreachable", func(p *storetest.Proxy) { p.Mute(); p.Refuse() }, false,
			switchyard.CodeOutcomeUnknown, "send the request again with the same Idempotency-Key", 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			proxy, u := storetest.Proxied(t, f.url)
			var logs storetest.LogBuffer
			s, err := Open(testContext(t), u, WithTimeout(time.Second), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			lock := holdChainLock(t, f)
			change := store.Change{Attempt: store.Attempt{Actor: "alice", RequestID: "req-1", IdempotencyKey: "key-1", RequestHash: "h"},
				Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)}
			type result struct {
				rev   *switchyard.Revision
				entry store.AuditEntry
				err   error
			}
			done := make(chan result, 1)
			go func() {
				rev, entry, err := s.Apply(testContext(t), change)
				done <- result{rev, entry, err}
			}()
			lock.waiter(t)
			tt.fault(proxy)
			if tt.unpark {
				lock.release()
			}
			r := <-done
			lock.release()
			proxy.Restore()
			switch {
			case tt.code == "" && r.err != nil:
				t.Fatalf("Apply = %v, want the change applied", r.err)
			case tt.code == "" && (r.rev.Number != 2 || r.entry.Seq != 1 || r.entry.Outcome != store.OutcomeApplied):
				t.Fatalf("Apply = revision %d, entry %+v; want revision 2 applied as entry 1", r.rev.Number, r.entry)
			case tt.code == "" && !strings.Contains(logs.String(), `msg="audit appended" seq=1 `):
				t.Fatalf("the applied change is not in the service log:\n%s", logs.String())
			case tt.code != "" && (switchyard.ErrorCode(r.err) != tt.code || !strings.Contains(r.err.Error(), tt.want)):
				t.Fatalf("Apply = %v, want %s saying %q", r.err, tt.code, tt.want)
			}
			retry := change
			retry.RequestID = "req-2"
			// The retry waits for the parked transaction, still running
			// when the database was unreachable, to end.
			next, entry, err := s.Apply(testContext(t), retry)
			if err != nil || next.Number != 2 || !next.System.ExamMode || entry.Seq != 1 {
				t.Fatalf("retry with the same key = %v, %+v, %v; want revision 2 as entry 1", next, entry, err)
			}
			if n := f.count(t, "switch_audit_log"); n != 1 {
				t.Fatalf("audit log holds %d entries after the retry, want 1: applied once", n)
			}
		})
	}
}

// TestLookupWaitsForTheChange checks the lookup that settles a commit
// without an answer waits for the change's transaction, which holds the
// runtime head, and then reads what it committed: asked while the change
// is still on its way, it never answers "not applied" too early.
func TestLookupWaitsForTheChange(t *testing.T) {
	f := newFixture(t)
	ctx := testContext(t)
	tx, err := f.owner.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var pid int32
	if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT FROM `+f.table("runtime_head")+` FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+f.table("switch_audit_log")+
		` (actor, role, action, target, reason, phrase, request_id, outcome, why, revision)
		VALUES ('alice', 'admin', 'set_flag', 'EXAM_MODE', 'r', 'p', 'req-1', 'applied', '', 2)`); err != nil {
		t.Fatal(err)
	}
	type result struct {
		found bool
		err   error
	}
	done := make(chan result, 1)
	go func() {
		_, found, err := f.store.findApplied(ctx, store.Attempt{RequestID: "req-1", Action: "set_flag"}, 2)
		done <- result{found, err}
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for waiting := 0; waiting == 0; {
		if err := f.owner.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, pid).
			Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-done:
			t.Fatalf("the lookup answered %+v without waiting for the change", r)
		case <-ctx.Done():
			t.Fatal("the lookup never waited for the change")
		case <-tick.C:
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.err != nil || !r.found {
		t.Fatalf("lookup after the commit = %+v, want the applied entry found", r)
	}
}

// TestIdleTransactionsEnd: the store's sessions ask the database to end a
// transaction left idle (by a process frozen in the middle of a change,
// holding the runtime head), unless the URL says otherwise.
func TestIdleTransactionsEnd(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct{ url, want string }{
		{f.url, "1min"},
		{withParam(t, f.url, "idle_in_transaction_session_timeout", "5s"), "5s"},
	} {
		s, err := Open(testContext(t), tc.url, WithLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		var got string
		err = s.pool.QueryRow(testContext(t), `SHOW idle_in_transaction_session_timeout`).Scan(&got)
		s.Close()
		if err != nil || got != tc.want {
			t.Errorf("idle_in_transaction_session_timeout = %q, %v; want %q", got, err, tc.want)
		}
	}
}
