// Package postgres is the production Store: PostgreSQL through pgx v5, the
// audited truth. Revisions are immutable rows, every change is one
// transaction that also appends a hash-chained audit row (chained by the
// database itself), and the service works as a role that cannot rewrite
// the audit log. Every call carries a deadline, so a dead database costs a
// bounded wait and an UNAVAILABLE error, never a hang.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
)

var _ store.Store = (*Store)(nil)

// ServiceRole is the role every pooled connection switches to. The
// migrations create it with read and append rights on the audit log only,
// so nothing the service runs can update, delete or truncate the log.
const ServiceRole = "switchyard_app"

// RevisionChannel is the LISTEN/NOTIFY channel a committed change announces
// its revision number on. Postgres delivers notifications only at commit,
// so a listener never hears of a change that was rolled back.
const RevisionChannel = "switchyard_revision"

// DefaultTimeout bounds every database call unless WithTimeout says
// otherwise. pgx's own defaults wait minutes on a dead server.
const DefaultTimeout = 5 * time.Second

// Store is the Postgres store.Store. Create it with Open; it is safe for
// concurrent use.
type Store struct {
	pool *pgxpool.Pool
	cfg  config
	// identity is the URL's address and the installation the database
	// said it is at Open.
	identity store.Identity
	// latest caches the newest revision read or written: revisions are
	// immutable, so the cached one is reused while the head still names it.
	latest atomic.Pointer[switchyard.Revision]
	// creates batches concurrent CreateSession calls.
	creates creates
	// live is, with WithMaxSessions, the live sessions counted last plus
	// the sessions this store has created or is creating since.
	live atomic.Int64
}

type config struct {
	timeout     time.Duration
	log         *slog.Logger
	now         func() time.Time
	maxSessions int64
}

// Option configures Open and Migrate.
type Option func(*config)

// WithTimeout sets the deadline of each database call (DefaultTimeout when
// unset). It also bounds connecting.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithLogger sets the logger that receives the newest audit (seq, hash)
// after every write and the sweeper's reports; slog.Default when unset.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithClock sets the clock that stamps revisions and judges session expiry;
// tests use it to move time. Audit times come from the database's clock.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithMaxSessions bounds the live sessions to about n: while the store
// counts n, creating a new session answers SESSION_LIMIT_REACHED (a session
// that exists is still returned). The store counts the table when it opens
// and after every sweep (RunSweeper), and adds the sessions it creates in
// between; the sessions other replicas create in between are not seen
// until the next count, so the table may hold more by that much. Without
// it (or with n <= 0) every session is stored.
func WithMaxSessions(n int) Option { return func(c *config) { c.maxSessions = int64(n) } }

func newConfig(opts []Option) config {
	c := config{timeout: DefaultTimeout, log: slog.Default(), now: time.Now}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// idleInTransaction is how long the database lets a transaction of the
// store sit idle before ending it: far above the longest pause between a
// change's statements (its validation), far below forever.
const idleInTransaction = "60s"

// poolConfig parses url and bounds connecting and health checks, so pgx's
// lazy connections never wait longer than the timeout.
func poolConfig(url string, c config) (*pgxpool.Config, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message masks the URL's password.
		return nil, switchyard.Errorf(switchyard.CodeInvalidRequest, "database URL: %v", err)
	}
	if pc.ConnConfig.ConnectTimeout == 0 || pc.ConnConfig.ConnectTimeout > c.timeout {
		pc.ConnConfig.ConnectTimeout = c.timeout
	}
	// pgx's default pool (4 connections on a small machine) starves
	// concurrent session creates, whose cost is mostly the commit: more
	// commits in flight share each WAL flush. The URL's pool_max_conns
	// still wins.
	if !strings.Contains(url, "pool_max_conns") {
		pc.MaxConns = max(pc.MaxConns, int32(4*runtime.GOMAXPROCS(0)))
	}
	pc.HealthCheckPeriod = 15 * time.Second
	pc.MaxConnIdleTime = 5 * time.Minute
	// A change holds the runtime head's lock for its whole transaction: if
	// the process stops between two of its statements (frozen, or cut off
	// with the socket still open), the database ends the transaction after
	// this long, rather than leave every other replica's writes waiting.
	// The URL's own setting wins.
	if _, ok := pc.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"]; !ok {
		pc.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = idleInTransaction
	}
	return pc, nil
}

// Open connects to the database at url, checks that it has been migrated
// (run Migrate first) and returns the store. Every pooled connection works
// as ServiceRole. Pool settings come from the URL (pool_max_conns, ...);
// without pool_max_conns the pool holds up to four connections per CPU.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	c := newConfig(opts)
	pc, err := poolConfig(url, c)
	if err != nil {
		return nil, err
	}
	address, err := Address(url)
	if err != nil {
		return nil, err
	}
	pc.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "SET ROLE "+pgx.Identifier{ServiceRole}.Sanitize())
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, switchyard.Errorf(switchyard.CodeInvalidRequest, "database URL: %v", err)
	}
	s := &Store{pool: pool, cfg: c}
	if err := s.check(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	s.identity = store.Identity{Address: address, Installation: s.installation(ctx)}
	if err := s.countSessions(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// check pings the database and compares its schema version with the
// migrations built into the binary, so a missing `migrate up` is reported
// at start, not as a mysterious failure on the first request.
func (s *Store) check(ctx context.Context) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var version int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(version_id), 0) FROM goose_db_version`).Scan(&version)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "42P01": // undefined_table
			return switchyard.Errorf(switchyard.CodeUnavailable,
				"the database has no Switchyard schema: run `switchyard migrate up` first")
		case "22023", "42501": // no such role; not a member of it, or it lacks its grants
			return switchyard.Errorf(switchyard.CodeUnavailable,
				"cannot work as role %s (%s): run `switchyard migrate up` as the database owner, "+
					"and connect as the owner or a member of %s", ServiceRole, pgErr.Message, ServiceRole)
		}
	}
	if err != nil {
		return dbError("connect to the database", err)
	}
	want, err := latestMigration()
	if err != nil {
		return err
	}
	if version < want {
		return switchyard.Errorf(switchyard.CodeUnavailable,
			"the database schema is at version %d, this binary needs %d: run `switchyard migrate up`", version, want)
	}
	if _, err := s.Current(ctx); err != nil {
		return fmt.Errorf("read the current revision: %w", err)
	}
	return nil
}

// PoolStat returns the connection pool's statistics, for metrics.
func (s *Store) PoolStat() *pgxpool.Stat { return s.pool.Stat() }

// Close releases the pool's connections.
func (s *Store) Close() { s.pool.Close() }

// deadline bounds one store call.
func (s *Store) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.timeout)
}

// dbError turns a database failure into what callers branch on: a dead or
// overloaded database (connection errors, timeouts, shutdowns) is
// UNAVAILABLE, so the API answers 503; text Postgres cannot store is
// INVALID_REQUEST; a call its caller cancelled is still context.Canceled
// (CANCELED: nothing failed); anything else is an internal error with
// context.
func dbError(op string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "22021" || pgErr.Code == "22P05":
			return switchyard.Errorf(switchyard.CodeInvalidRequest, "%s: text must be valid UTF-8 without NUL characters", op)
		case pgErr.Code == "23503":
			return switchyard.Errorf(switchyard.CodeInvalidRequest, "%s: it refers to a row that does not exist (%s)", op, pgErr.Detail)
		case strings.HasPrefix(pgErr.Code, "08"), strings.HasPrefix(pgErr.Code, "53"),
			strings.HasPrefix(pgErr.Code, "57"):
			return switchyard.Errorf(switchyard.CodeUnavailable, "%s: the database is unavailable: %s", op, pgErr.Message)
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	if errors.Is(err, pgx.ErrNoRows) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return switchyard.Errorf(switchyard.CodeUnavailable, "%s: the database is unavailable: %v", op, err)
}

// Current implements store.Store. The head and its row are read in one
// round trip; the row's state is sent only when its revision is not the
// one already cached (compared by ID, so a database restored from an
// earlier backup never answers with a revision of the lost history), and
// a delta from the cached revision is applied to it. Any other row takes
// a second round trip, to read its chain.
func (s *Store) Current(ctx context.Context) (*switchyard.Revision, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	cached := s.latest.Load()
	var cachedID string
	if cached != nil {
		cachedID = cached.ID
	}
	var number int64
	var id string
	var whole bool
	var state []byte
	err := s.pool.QueryRow(ctx, `
		SELECT h.revision, r.id, r.base IS NULL, CASE WHEN r.id = $1 THEN NULL ELSE r.state END
		FROM runtime_head h JOIN revisions r ON r.number = h.revision`, cachedID).Scan(&number, &id, &whole, &state)
	if err != nil {
		return nil, dbError("read the current revision", err)
	}
	var r *switchyard.Revision
	switch {
	case state == nil:
		return cached, nil
	case whole:
		if r, err = decodeRevision(number, id, state); err != nil {
			return nil, err
		}
	case cached != nil && cached.Number == number-1:
		d, err := decodeDelta(number, id, state)
		if err != nil {
			return nil, err
		}
		// A delta records its parent's ID: the cached revision may be the
		// one numbered just below in a history this database no longer
		// holds.
		if d.Parent == cached.ID {
			r = applyDeltas(cached, []*delta{d})
		}
	}
	if r == nil {
		if r, err = s.revision(ctx, s.pool, number, id); err != nil {
			return nil, err
		}
	}
	// The head replaces whatever is cached, an older revision or one of a
	// history the database no longer holds.
	s.latest.Store(r)
	return r, nil
}

// remember caches r as the newest revision unless a newer one is cached.
// Only what Current reads replaces a newer one: the head of the database
// is the newest revision of the history it holds, whatever its number.
func (s *Store) remember(r *switchyard.Revision) {
	for {
		old := s.latest.Load()
		if old != nil && old.Number > r.Number {
			return
		}
		if s.latest.CompareAndSwap(old, r) {
			return
		}
	}
}

// querier is what both the pool and a single connection offer.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Revision implements store.Store.
func (s *Store) Revision(ctx context.Context, n int64) (*switchyard.Revision, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	return s.revision(ctx, s.pool, n, "")
}

// revision reads revision n through q, or from the cache when n is the
// cached revision and id, its ID as the caller just read it, says it is
// the same one. Otherwise, in one round trip, it reads the rows of n's
// chain from its whole row on, or from the cached revision on when that
// revision is in the chain: the database says so by matching its ID, and
// sends it no state. When the cached revision is not of this history a
// chain read from it would start mid-chain; it is then read again from its
// whole row.
func (s *Store) revision(ctx context.Context, q querier, n int64, id string) (*switchyard.Revision, error) {
	cached := s.latest.Load()
	if cached != nil && cached.Number == n && id != "" && cached.ID == id {
		return cached, nil
	}
	var from *switchyard.Revision
	if cached != nil && cached.Number <= n {
		from = cached
	}
	r, err := s.readChain(ctx, q, n, from)
	if errors.Is(err, errMidChain) {
		r, err = s.readChain(ctx, q, n, nil)
	}
	if err != nil {
		return nil, err
	}
	s.remember(r)
	return r, nil
}

// errMidChain says that a chain read from a cached revision started with
// a delta from a revision it did not read: the cached revision is not the
// one this database holds under its number.
var errMidChain = errors.New("the chain read starts with a delta from a revision not read")

// readChain reads revision n in one round trip: the rows of its chain
// from its whole row on, or from cached on, when cached is set and not
// before that whole row.
func (s *Store) readChain(ctx context.Context, q querier, n int64, cached *switchyard.Revision) (*switchyard.Revision, error) {
	var from int64
	var cachedID string
	if cached != nil {
		from, cachedID = cached.Number, cached.ID
	}
	rows, err := q.Query(ctx, `
		SELECT r.number, r.id, r.base IS NULL, CASE WHEN r.id = $3 THEN NULL ELSE r.state END
		FROM revisions r, (SELECT coalesce(base, number) AS base FROM revisions WHERE number = $1) c
		WHERE r.number BETWEEN greatest(c.base, $2) AND $1
		ORDER BY r.number`, n, from, cachedID)
	if err != nil {
		return nil, dbError(fmt.Sprintf("read revision %d", n), err)
	}
	defer rows.Close()
	var r *switchyard.Revision
	var ds []*delta
	for rows.Next() {
		var number int64
		var id string
		var whole bool
		var state []byte
		if err := rows.Scan(&number, &id, &whole, &state); err != nil {
			return nil, dbError(fmt.Sprintf("read revision %d", n), err)
		}
		switch {
		case state == nil:
			r = cached
		case whole:
			if r, err = decodeRevision(number, id, state); err != nil {
				return nil, err
			}
		case r == nil:
			if cached == nil {
				return nil, fmt.Errorf("read revision %d: its chain starts with revision %d, a delta", n, number)
			}
			return nil, errMidChain
		default:
			d, err := decodeDelta(number, id, state)
			if err != nil {
				return nil, err
			}
			ds = append(ds, d)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(fmt.Sprintf("read revision %d", n), err)
	}
	if r == nil {
		return nil, switchyard.Errorf(switchyard.CodeNotFound, "revision %d does not exist", n)
	}
	return applyDeltas(r, ds), nil
}

// decodeRevision decodes the whole revision stored as revision n under
// id. The row's number and ID are the revision's; its parent is what the
// state records (nothing, in rows stored before IDs were).
func decodeRevision(n int64, id string, state []byte) (*switchyard.Revision, error) {
	var r switchyard.Revision
	if err := json.Unmarshal(state, &r); err != nil {
		return nil, fmt.Errorf("decode revision %d: %w", n, err)
	}
	r.Number, r.ID = n, id
	return normalize(&r), nil
}

// normalize gives a decoded revision what a stored one always has: its
// time in UTC and an overrides map.
func normalize(r *switchyard.Revision) *switchyard.Revision {
	r.CreatedAt = r.CreatedAt.UTC()
	if r.Overrides == nil {
		r.Overrides = map[string]switchyard.Override{}
	}
	return r
}
