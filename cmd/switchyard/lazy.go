package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/store"
)

// reconnectInterval is how often a replica started without its database
// tries to reach it again.
const reconnectInterval = 5 * time.Second

// probeTimeout bounds one reachability probe: a blackholed address must
// not hold the start for pgx's default of minutes.
const probeTimeout = 10 * time.Second

// errUnreachable marks a database that did not answer at all (refused,
// timed out, no route), as opposed to one that answered with an error
// (wrong credentials, no schema), which no waiting fixes.
var errUnreachable = errors.New("the database is unreachable")

// probeDatabase connects to url once and reports errUnreachable when
// nothing answered there. A URL that does not parse, or a server that
// answered with an error, returns nil: the normal start path then reports
// the real problem and stops.
func probeDatabase(ctx context.Context, url string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		return conn.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return nil
	}
	return fmt.Errorf("%w: %v", errUnreachable, err)
}

// lazyStore is the store of a replica started while its database was
// unreachable: until connect succeeds every call answers UNAVAILABLE, so
// the server serves its last-known-good file or the conservative fallback
// and refuses writes with 503; then every call goes to the store connect
// opened, and the service recovers without a restart.
type lazyStore struct {
	inner atomic.Pointer[store.Store]
	// cause is why the database could not be reached at start.
	cause error

	mu       sync.Mutex
	onChange []func(revision int64)
}

var (
	_ store.Store          = (*lazyStore)(nil)
	_ store.Notifier       = (*lazyStore)(nil)
	_ store.HealthReporter = (*lazyStore)(nil)
)

// run calls connect every interval until it succeeds or ctx ends, and
// installs the store it returns. Each failure is logged: an operator must
// see that the replica still has no database.
func (l *lazyStore) run(ctx context.Context, logger *slog.Logger, interval time.Duration, connect func(context.Context) (store.Store, error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := connect(ctx)
		if err != nil {
			logger.Error("the database is still not usable; serving without it", "err", err)
			continue
		}
		l.mu.Lock()
		if n, ok := st.(store.Notifier); ok {
			for _, fn := range l.onChange {
				n.OnChange(fn)
			}
		}
		l.inner.Store(&st)
		l.mu.Unlock()
		logger.Info("connected to the database; the service recovers at the next cache reload")
		return
	}
}

// OnChange implements store.Notifier by registering fn with the store once
// it is connected, so the server hears of revisions committed elsewhere as
// it would have from the start. The lazy store never calls fn itself: the
// connected store delivers, asynchronously as store.Notifier promises.
func (l *lazyStore) OnChange(fn func(revision int64)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p := l.inner.Load(); p != nil {
		if n, ok := (*p).(store.Notifier); ok {
			n.OnChange(fn)
		}
		return
	}
	l.onChange = append(l.onChange, fn)
}

// Degraded reports the connected store's own degradation (Redis down).
// Before the database is reached every read fails, which says more.
func (l *lazyStore) Degraded() (string, bool) {
	if p := l.inner.Load(); p != nil {
		if d, ok := (*p).(store.HealthReporter); ok {
			return d.Degraded()
		}
	}
	return "", false
}

// get returns the connected store, or UNAVAILABLE naming the cause.
func (l *lazyStore) get() (store.Store, error) {
	if p := l.inner.Load(); p != nil {
		return *p, nil
	}
	return nil, evaluator.Errorf(evaluator.CodeUnavailable, "not connected to the database yet: %v", l.cause)
}

// Current implements store.Store.
func (l *lazyStore) Current(ctx context.Context) (*evaluator.Revision, error) {
	st, err := l.get()
	if err != nil {
		return nil, err
	}
	return st.Current(ctx)
}

// Revision implements store.Store.
func (l *lazyStore) Revision(ctx context.Context, n int64) (*evaluator.Revision, error) {
	st, err := l.get()
	if err != nil {
		return nil, err
	}
	return st.Revision(ctx, n)
}

// Apply implements store.Store.
func (l *lazyStore) Apply(ctx context.Context, c store.Change) (*evaluator.Revision, store.AuditEntry, error) {
	st, err := l.get()
	if err != nil {
		return nil, store.AuditEntry{}, err
	}
	return st.Apply(ctx, c)
}

// Reject implements store.Store.
func (l *lazyStore) Reject(ctx context.Context, a store.Attempt, why error) (store.AuditEntry, error) {
	st, err := l.get()
	if err != nil {
		return store.AuditEntry{}, err
	}
	return st.Reject(ctx, a, why)
}

// Record implements store.Store.
func (l *lazyStore) Record(ctx context.Context, a store.Attempt, before, after any) (store.AuditEntry, error) {
	st, err := l.get()
	if err != nil {
		return store.AuditEntry{}, err
	}
	return st.Record(ctx, a, before, after)
}

// CreateSession implements store.Store.
func (l *lazyStore) CreateSession(ctx context.Context, s evaluator.Snapshot) (evaluator.Snapshot, bool, error) {
	st, err := l.get()
	if err != nil {
		return evaluator.Snapshot{}, false, err
	}
	return st.CreateSession(ctx, s)
}

// Session implements store.Store.
func (l *lazyStore) Session(ctx context.Context, id string) (evaluator.Snapshot, error) {
	st, err := l.get()
	if err != nil {
		return evaluator.Snapshot{}, err
	}
	return st.Session(ctx, id)
}

// Audit implements store.Store.
func (l *lazyStore) Audit(ctx context.Context, q store.AuditQuery) ([]store.AuditEntry, error) {
	st, err := l.get()
	if err != nil {
		return nil, err
	}
	return st.Audit(ctx, q)
}

// VerifyAudit implements store.Store.
func (l *lazyStore) VerifyAudit(ctx context.Context) (store.Verification, error) {
	st, err := l.get()
	if err != nil {
		return store.Verification{}, err
	}
	return st.VerifyAudit(ctx)
}
