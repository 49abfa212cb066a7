package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/migrations"
)

// MigrateTimeout bounds a whole migration run, including waiting for
// another replica's run to finish; DDL on a large table may take a while.
const MigrateTimeout = 10 * time.Minute

// MigrationState is one embedded migration and whether the database has it.
type MigrationState struct {
	Version   int64     `json:"version"`
	Name      string    `json:"name"`
	Applied   bool      `json:"applied"`
	AppliedAt time.Time `json:"applied_at,omitzero"`
}

// Migrate applies the pending embedded migrations to the database at url
// and returns the names of those it applied (none when it is up to date).
// It works as the URL's role, which must own the schema (the first of the
// search_path); the migrations grant ServiceRole its limited rights. A
// Postgres advisory lock makes replicas that start at once migrate exactly
// once: the others wait, then find nothing to do. A database without
// revisions then gets revision 1, the defaults of a new install: the
// default catalog, the three profiles, primary active, every flag off.
// (On a database never migrated before, goose checks for pending
// migrations before taking the lock, so a replica racing the first one
// may retry creating goose's version table once, a second later.)
func Migrate(ctx context.Context, url string, opts ...Option) ([]string, error) {
	c := newConfig(opts)
	ctx, cancel := context.WithTimeout(ctx, MigrateTimeout)
	defer cancel()
	pool, p, err := openProvider(ctx, url, c)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	defer p.Close()
	results, err := p.Up(ctx)
	if err != nil {
		return nil, dbError("migrate the database", err)
	}
	applied := make([]string, len(results))
	for i, r := range results {
		applied[i] = path.Base(r.Source.Path)
	}
	if err := seed(ctx, pool, c); err != nil {
		return applied, err
	}
	return applied, nil
}

// MigrationStatus lists the embedded migrations and which of them the
// database at url has applied.
func MigrationStatus(ctx context.Context, url string, opts ...Option) ([]MigrationState, error) {
	c := newConfig(opts)
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	pool, p, err := openProvider(ctx, url, c)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	defer p.Close()
	status, err := p.Status(ctx)
	if err != nil {
		return nil, dbError("read the migration status", err)
	}
	out := make([]MigrationState, len(status))
	for i, s := range status {
		out[i] = MigrationState{
			Version:   s.Source.Version,
			Name:      path.Base(s.Source.Path),
			Applied:   s.State == goose.StateApplied,
			AppliedAt: s.AppliedAt,
		}
	}
	return out, nil
}

// SchemaVersion reads the schema version of the database at url and
// returns it with the version this binary needs, changing nothing: a
// database never migrated is at version 0. It is the read-only check
// behind production's requirements, where MigrationStatus would create
// goose's bookkeeping table.
func SchemaVersion(ctx context.Context, url string, opts ...Option) (have, want int64, err error) {
	c := newConfig(opts)
	if want, err = latestMigration(); err != nil {
		return 0, 0, err
	}
	pc, err := poolConfig(url, c)
	if err != nil {
		return 0, want, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, pc.ConnConfig)
	if err != nil {
		return 0, want, dbError("connect to the database", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	err = conn.QueryRow(ctx, `SELECT coalesce(max(version_id), 0) FROM goose_db_version`).Scan(&have)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table: never migrated
		return 0, want, nil
	}
	if err != nil {
		return 0, want, dbError("read the schema version", err)
	}
	return have, want, nil
}

// openProvider connects as the URL's own role (no SET ROLE: migrations
// need the owner's rights) and prepares goose over the embedded files.
func openProvider(ctx context.Context, url string, c config) (*pgxpool.Pool, *goose.Provider, error) {
	pc, err := poolConfig(url, c)
	if err != nil {
		return nil, nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, nil, switchyard.Errorf(switchyard.CodeInvalidRequest, "database URL: %v", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, stdlib.OpenDBFromPool(pool), migrations.FS,
		goose.WithSessionLocker(schemaLocker{}), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("load the embedded migrations: %w", err)
	}
	return pool, p, nil
}

// schemaLocker serializes migrations of one schema with a session-level
// advisory lock keyed by the schema's name. Unlike goose's stock locker,
// which polls, it blocks in pg_advisory_lock, so a waiting replica starts
// the moment the first one finishes, and its wait is bounded by the
// context. Installations in different schemas do not wait on each other.
type schemaLocker struct{}

var _ lock.SessionLocker = schemaLocker{}

// migrateLockClass names the migration lock's class among advisory locks.
const migrateLockClass = 1937339234

// SessionLock implements lock.SessionLocker.
func (schemaLocker) SessionLock(ctx context.Context, conn *sql.Conn) error {
	_, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1, hashtext(coalesce(current_schema(), '')))`, migrateLockClass)
	if err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	return nil
}

// SessionUnlock implements lock.SessionLocker.
func (schemaLocker) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	var released bool
	err := conn.QueryRowContext(ctx, `SELECT pg_advisory_unlock($1, hashtext(coalesce(current_schema(), '')))`, migrateLockClass).Scan(&released)
	if err != nil {
		return fmt.Errorf("release the migration lock: %w", err)
	}
	if !released {
		return fmt.Errorf("release the migration lock: this session did not hold it")
	}
	return nil
}

// seed writes revision 1 unless the database has one. Concurrent seeders
// are safe: the revision insert's conflict check lets one of them through,
// and the others then do nothing.
func seed(ctx context.Context, pool *pgxpool.Pool, c config) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	tx, err := pool.Begin(ctx)
	if err != nil {
		return dbError("seed the first revision", err)
	}
	defer tx.Rollback(ctx)
	first := switchyard.InitialRevision(c.now().UTC().Truncate(time.Microsecond))
	first.ID = switchyard.NewRevisionID()
	state, err := jsonState(first)
	if err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, `INSERT INTO revisions (number, id, created_at, state) VALUES (1, $1, $2, $3) ON CONFLICT DO NOTHING`,
		first.ID, first.CreatedAt, state)
	if err != nil {
		return dbError("seed the first revision", err)
	}
	if tag.RowsAffected() == 0 {
		return nil
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO runtime_head (revision) VALUES (1)`)
	if err := queueTables(b, nil, first); err != nil {
		return err
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return dbError("seed the first revision", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return dbError("seed the first revision", err)
	}
	return nil
}

// latestMigration returns the highest version among the embedded
// migrations: the schema version this binary needs.
func latestMigration() (int64, error) {
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		return 0, fmt.Errorf("list the embedded migrations: %w", err)
	}
	var latest int64
	for _, f := range files {
		prefix, _, _ := strings.Cut(f, "_")
		v, err := strconv.ParseInt(prefix, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("migration %q: the name must start with its version number", f)
		}
		latest = max(latest, v)
	}
	return latest, nil
}
