// Package lazy is the store of a replica started while its database was
// unreachable. Until it connects every call answers UNAVAILABLE, so the
// server serves its last-known-good file or the conservative fallback and
// refuses writes with 503; once Run has connected, every call goes to the
// store it opened, and the service recovers without a restart.
package lazy

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
)

var (
	_ store.Store          = (*Store)(nil)
	_ store.Notifier       = (*Store)(nil)
	_ store.HealthReporter = (*Store)(nil)
	_ store.Identifier     = (*Store)(nil)
)

// Store is a store.Store that is not connected yet. Create it with New and
// connect it with Run; it is safe for concurrent use.
type Store struct {
	inner atomic.Pointer[store.Store]
	// cause is why the database could not be reached at start; every call
	// before connecting names it.
	cause error
	// id is what the store is known to be before it connects: its
	// address.
	id store.Identity

	// mu orders registrations with the hand-over in Run, so no listener
	// registered meanwhile is lost.
	mu       sync.Mutex
	onChange []func(rev *switchyard.Revision)
}

// New returns a store that answers UNAVAILABLE naming cause until Run
// connects it. id is what the store is known to be meanwhile (the address
// of the database it will connect to), so the replica serves only a
// last-known-good file written from that database.
func New(cause error, id store.Identity) *Store { return &Store{cause: cause, id: id} }

// Run calls connect every interval until it succeeds or ctx ends, and
// installs the store it returns, handing it the OnChange listeners
// registered so far. Each failure is logged: an operator must see that the
// replica still has no database.
func (l *Store) Run(ctx context.Context, logger *slog.Logger, interval time.Duration, connect func(context.Context) (store.Store, error)) {
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
		l.onChange = nil
		l.inner.Store(&st)
		l.mu.Unlock()
		logger.Info("connected to the database; the service recovers at the next cache reload")
		return
	}
}

// OnChange implements store.Notifier by registering fn with the store once
// it is connected, so the server hears of revisions committed elsewhere as
// it would have from the start. The lazy store never calls fn itself: the
// connected store delivers, asynchronously as store.Notifier promises. A
// connected store that is no Notifier announces nothing, so fn hears
// nothing.
func (l *Store) OnChange(fn func(rev *switchyard.Revision)) {
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

// Degraded implements store.HealthReporter with the connected store's own
// degradation (Redis down). Before the database is reached every call
// fails, which says more.
func (l *Store) Degraded() (reason string, degraded bool) {
	if p := l.inner.Load(); p != nil {
		if h, ok := (*p).(store.HealthReporter); ok {
			return h.Degraded()
		}
	}
	return "", false
}

// Identity implements store.Identifier: the connected store's identity, or
// before it connects the one New was given.
func (l *Store) Identity() store.Identity {
	if p := l.inner.Load(); p != nil {
		if id, ok := (*p).(store.Identifier); ok {
			return id.Identity()
		}
	}
	return l.id
}

// get returns the connected store, or UNAVAILABLE naming the cause.
func (l *Store) get() (store.Store, error) {
	if p := l.inner.Load(); p != nil {
		return *p, nil
	}
	return nil, switchyard.Errorf(switchyard.CodeUnavailable, "not connected to the database yet: %v", l.cause)
}

// Current implements store.Store.
func (l *Store) Current(ctx context.Context) (*switchyard.Revision, error) {
	st, err := l.get()
	if err != nil {
		return nil, err
	}
	return st.Current(ctx)
}

// Revision implements store.Store.
func (l *Store) Revision(ctx context.Context, n int64) (*switchyard.Revision, error) {
	st, err := l.get()
	if err != nil {
		return nil, err
	}
	return st.Revision(ctx, n)
}

// Apply implements store.Store.
func (l *Store) Apply(ctx context.Context, c store.Change) (*switchyard.Revision, store.AuditEntry, error) {
	st, err := l.get()
	if err != nil {
		return nil, store.AuditEntry{}, err
	}
	return st.Apply(ctx, c)
}

// Reject implements store.Store.
func (l *Store) Reject(ctx context.Context, a store.Attempt, why error) (store.AuditEntry, error) {
	st, err := l.get()
	if err != nil {
		return store.AuditEntry{}, err
	}
	return st.Reject(ctx, a, why)
}

// Record implements store.Store.
func (l *Store) Record(ctx context.Context, a store.Attempt, before, after any) (store.AuditEntry, error) {
	st, err := l.get()
	if err != nil {
		return store.AuditEntry{}, err
	}
	return st.Record(ctx, a, before, after)
}

// Keyed implements store.Store.
func (l *Store) Keyed(ctx context.Context, key string) (store.Keyed, error) {
	st, err := l.get()
	if err != nil {
		return store.Keyed{}, err
	}
	return st.Keyed(ctx, key)
}

// CreateSession implements store.Store.
func (l *Store) CreateSession(ctx context.Context, s switchyard.Snapshot) (switchyard.Snapshot, bool, error) {
	st, err := l.get()
	if err != nil {
		return switchyard.Snapshot{}, false, err
	}
	return st.CreateSession(ctx, s)
}

// Session implements store.Store.
func (l *Store) Session(ctx context.Context, id string) (switchyard.Snapshot, error) {
	st, err := l.get()
	if err != nil {
		return switchyard.Snapshot{}, err
	}
	return st.Session(ctx, id)
}

// Audit implements store.Store.
func (l *Store) Audit(ctx context.Context, q store.AuditQuery) ([]store.AuditEntry, error) {
	st, err := l.get()
	if err != nil {
		return nil, err
	}
	return st.Audit(ctx, q)
}

// VerifyAudit implements store.Store.
func (l *Store) VerifyAudit(ctx context.Context) (store.Verification, error) {
	st, err := l.get()
	if err != nil {
		return store.Verification{}, err
	}
	return st.VerifyAudit(ctx)
}
