package storetest

import (
	"context"
	"crypto/rand"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresSchema creates an empty schema in the test database
// (SWITCHYARD_TEST_DATABASE_URL, gated like ServiceURL), drops it when the
// test ends, and returns the database URL with its search_path set to the
// schema (a key=value connection string works too), and the schema's name. Every test gets its own installation, so
// tests run in parallel and leave nothing behind.
func PostgresSchema(t testing.TB) (schemaURL, schema string) {
	t.Helper()
	base := ServiceURL(t, "SWITCHYARD_TEST_DATABASE_URL")
	schema = "switchyard_test_" + strings.ToLower(rand.Text()[:12])
	exec := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	quoted := pgx.Identifier{schema}.Sanitize()
	if err := exec("CREATE SCHEMA " + quoted); err != nil {
		t.Fatalf("create schema %s in the test database: %v", schema, err)
	}
	t.Cleanup(func() {
		if err := exec("DROP SCHEMA " + quoted + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return withSearchPath(t, base, schema), schema
}

// withSearchPath sets search_path on a postgres:// URL or a key=value
// connection string.
func withSearchPath(t testing.TB, conn, schema string) string {
	t.Helper()
	if !strings.HasPrefix(conn, "postgres://") && !strings.HasPrefix(conn, "postgresql://") {
		return conn + " search_path=" + schema
	}
	u, err := url.Parse(conn)
	if err != nil {
		t.Fatalf("parse SWITCHYARD_TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
