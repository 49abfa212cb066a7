package rediscache_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/postgres"
	"github.com/switchyard-dev/switchyard/store/rediscache"
	"github.com/switchyard-dev/switchyard/store/storetest"
)

// pgSchema migrates a fresh schema in the database named by
// SWITCHYARD_TEST_DATABASE_URL, dropped when the test ends, and returns
// its URL and a connection as the URL's (owner) role.
func pgSchema(t *testing.T) (string, *pgx.Conn) {
	t.Helper()
	base := storetest.ServiceURL(t, "SWITCHYARD_TEST_DATABASE_URL")
	schema := "switchyard_cache_test_" + strings.ToLower(rand.Text()[:12])
	owner, err := pgx.Connect(ctx(t), base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Exec(ctx(t), "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := owner.Exec(c, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		owner.Close(c)
	})
	if _, err := owner.Exec(ctx(t), "SET search_path TO "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	if _, err := postgres.Migrate(ctx(t), u.String(), postgres.WithLogger(slog.New(slog.DiscardHandler))); err != nil {
		t.Fatal(err)
	}
	return u.String(), owner
}

func openPG(t *testing.T, u string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(ctx(t), u, postgres.WithLogger(slog.New(slog.DiscardHandler)), postgres.WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestContractPostgresRealRedis(t *testing.T) {
	storetest.ServiceURL(t, "SWITCHYARD_TEST_DATABASE_URL")
	realRedis(t)
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		u, owner := pgSchema(t)
		rdb, p := realRedis(t)
		return storetest.Harness{Store: rediscache.New(openPG(t, u), rdb, rediscache.WithPrefix(p)),
			Tamper: func(t *testing.T, seq int64, reason string) {
				// As an owner with write access: lift the append-only
				// trigger, edit, restore, all in one transaction.
				tx, err := owner.Begin(ctx(t))
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback(ctx(t))
				for _, sql := range []string{
					"ALTER TABLE switch_audit_log DISABLE TRIGGER switch_audit_log_append_only",
					"UPDATE switch_audit_log SET reason = $1 WHERE seq = $2",
					"ALTER TABLE switch_audit_log ENABLE TRIGGER switch_audit_log_append_only",
				} {
					var args []any
					if strings.HasPrefix(sql, "UPDATE") {
						args = []any{reason, seq}
					}
					if _, err := tx.Exec(ctx(t), sql, args...); err != nil {
						t.Fatalf("tamper: %s: %v", sql, err)
					}
				}
				if err := tx.Commit(ctx(t)); err != nil {
					t.Fatal(err)
				}
			}}
	})
}

// TestPostgresFeedAnnounces wires the Postgres revision feed to a cache as
// the server does, and checks that a commit by another replica reaches it
// through the feed alone (the writer uses another Redis prefix, so no
// Redis announcement can reach the watcher).
func TestPostgresFeedAnnounces(t *testing.T) {
	u, _ := pgSchema(t)
	rdb, p := realRedis(t)
	writer := rediscache.New(openPG(t, u), rdb, rediscache.WithPrefix(p+"writer:"))
	pg := openPG(t, u)
	watcher := rediscache.New(pg, rdb, rediscache.WithPrefix(p+"watcher:"))
	heard := make(chan int64, 16)
	watcher.OnChange(func(rev *switchyard.Revision) { heard <- rev.Number })
	c, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pg.Listen(c, func(rev *switchyard.Revision) { watcher.Announce(c, rev) }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Listen = %v", err)
		}
	})
	waitFor(t, heard, 1)
	if _, _, err := writer.Apply(ctx(t), store.Change{Attempt: store.Attempt{Actor: "a"},
		Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, heard, 2)
	if rev, err := watcher.Current(ctx(t)); err != nil || !rev.System.ExamMode {
		t.Fatalf("watcher's Current = %+v, %v", rev, err)
	}
}
