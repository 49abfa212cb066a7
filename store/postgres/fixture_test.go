package postgres

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchyard-dev/switchyard/store/storetest"
)

// fixture is one test's private installation: a fresh schema in the test
// database, migrated, with a store open on it.
type fixture struct {
	store  *Store
	url    string // the test database, search_path set to the schema
	schema string
	// owner connects as the URL's role (the superuser in tests), without
	// ServiceRole: what a database owner or attacker with owner rights sees.
	owner *pgxpool.Pool
}

// testContext bounds a test's database work.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// quiet is the logger tests hand the store: the service log is asserted on
// where it matters and noise elsewhere.
var quiet = slog.New(slog.DiscardHandler)

// newSchema creates an empty schema that is dropped when the test ends and
// returns the test database's URL with search_path pointing at it, and a
// pool connected as the URL's own role (the owner).
func newSchema(t testing.TB) (schemaURL, schema string, owner *pgxpool.Pool) {
	t.Helper()
	schemaURL, schema = storetest.PostgresSchema(t)
	owner, err := pgxpool.New(testContext(t), schemaURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(owner.Close)
	return schemaURL, schema, owner
}

// withParam sets a connection parameter on a postgres:// URL or a
// key=value connection string.
func withParam(t testing.TB, conn, key, value string) string {
	t.Helper()
	if !strings.HasPrefix(conn, "postgres://") && !strings.HasPrefix(conn, "postgresql://") {
		return conn + " " + key + "=" + value
	}
	u, err := url.Parse(conn)
	if err != nil {
		t.Fatalf("parse SWITCHYARD_TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// newFixture migrates a fresh schema and opens a store on it.
func newFixture(t testing.TB, opts ...Option) *fixture {
	t.Helper()
	u, schema, owner := newSchema(t)
	return openFixture(t, u, schema, owner, opts...)
}

func openFixture(t testing.TB, u, schema string, owner *pgxpool.Pool, opts ...Option) *fixture {
	t.Helper()
	ctx := testContext(t)
	opts = append([]Option{WithLogger(quiet)}, opts...)
	if _, err := Migrate(ctx, u, opts...); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	s, err := Open(ctx, u, opts...)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(s.Close)
	return &fixture{store: s, url: u, schema: schema, owner: owner}
}

// table returns the schema-qualified, quoted name of one of its tables.
func (f *fixture) table(name string) string { return pgx.Identifier{f.schema, name}.Sanitize() }

// tamper runs statements as the owner with the audit log's append-only
// trigger disabled, as an attacker with owner rights would, and enables it
// again, all in one transaction.
func (f *fixture) tamper(t testing.TB, sql string, args ...any) {
	t.Helper()
	ctx := testContext(t)
	tx, err := f.owner.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	log := f.table("switch_audit_log")
	for _, stmt := range []struct {
		sql  string
		args []any
	}{
		{"ALTER TABLE " + log + " DISABLE TRIGGER switch_audit_log_append_only", nil},
		{sql, args},
		{"ALTER TABLE " + log + " ENABLE TRIGGER switch_audit_log_append_only", nil},
	} {
		if _, err := tx.Exec(ctx, stmt.sql, stmt.args...); err != nil {
			t.Fatalf("tamper: %s: %v", stmt.sql, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// count returns the number of rows in one of the fixture's tables.
func (f *fixture) count(t testing.TB, name string) int {
	t.Helper()
	var n int
	if err := f.owner.QueryRow(testContext(t), "SELECT count(*) FROM "+f.table(name)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
