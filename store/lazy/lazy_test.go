package lazy_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/lazy"
	"github.com/switchyard-dev/switchyard/store/memory"
	"github.com/switchyard-dev/switchyard/store/storetest"
)

// errDown stands for the reason the database could not be reached.
var errDown = errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")

var discard = slog.New(slog.DiscardHandler)

// connected returns a lazy store that Run has connected to st.
func connected(t *testing.T, st store.Store) *lazy.Store {
	t.Helper()
	l := lazy.New(errDown, store.Identity{})
	l.Run(t.Context(), discard, time.Millisecond, func(context.Context) (store.Store, error) { return st, nil })
	return l
}

// Once connected, the lazy store keeps the whole store contract.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		mem := memory.NewDemo()
		return storetest.Harness{
			Store: connected(t, mem),
			Tamper: func(t *testing.T, seq int64, reason string) {
				mem.Tamper(seq, func(e *store.AuditEntry) { e.Reason = reason })
			},
		}
	})
}

// Before it connects, every call answers UNAVAILABLE naming why the
// database could not be reached, so a client and an operator see the cause.
func TestUnconnectedCallsAreUnavailable(t *testing.T) {
	l := lazy.New(errDown, store.Identity{})
	ctx := t.Context()
	tests := []struct {
		name string
		call func() error
	}{
		{"Current", func() error { _, err := l.Current(ctx); return err }},
		{"Revision", func() error { _, err := l.Revision(ctx, 1); return err }},
		{"Apply", func() error { _, _, err := l.Apply(ctx, store.Change{}); return err }},
		{"Reject", func() error { _, err := l.Reject(ctx, store.Attempt{}, errors.New("no")); return err }},
		{"Record", func() error { _, err := l.Record(ctx, store.Attempt{}, nil, nil); return err }},
		{"CreateSession", func() error { _, _, err := l.CreateSession(ctx, switchyard.Snapshot{SessionID: "s"}); return err }},
		{"Session", func() error { _, err := l.Session(ctx, "s"); return err }},
		{"Audit", func() error { _, err := l.Audit(ctx, store.AuditQuery{}); return err }},
		{"VerifyAudit", func() error { _, err := l.VerifyAudit(ctx); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if switchyard.ErrorCode(err) != switchyard.CodeUnavailable || !strings.Contains(err.Error(), errDown.Error()) {
				t.Fatalf("%s before connecting = %v, want UNAVAILABLE naming %q", tt.name, err, errDown)
			}
		})
	}
}

// Run retries, logging every failure for the operator, until it connects
// or its context ends; only a connected store serves.
func TestRun(t *testing.T) {
	tests := []struct {
		name string
		// failures is how many attempts fail before one succeeds.
		failures int
		// cancelAfter ends Run's context at that failed attempt; 0 never.
		cancelAfter   int
		wantConnected bool
	}{
		{name: "connects at once", wantConnected: true},
		{name: "connects on the third attempt", failures: 2, wantConnected: true},
		{name: "gives up when its context ends", failures: 1000, cancelAfter: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, nil))
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			l := lazy.New(errDown, store.Identity{})
			attempts := 0
			// Run returns once connected or cancelled, so it runs here.
			l.Run(ctx, logger, time.Millisecond, func(context.Context) (store.Store, error) {
				if attempts++; attempts <= tt.failures {
					if attempts == tt.cancelAfter {
						cancel()
					}
					return nil, errDown
				}
				return memory.NewDemo(), nil
			})
			failed := min(tt.failures, attempts)
			if got := strings.Count(logs.String(), "the database is still not usable; serving without it"); got != failed {
				t.Fatalf("logged %d failures, want %d:\n%s", got, failed, logs.String())
			}
			if got := strings.Contains(logs.String(), "connected to the database"); got != tt.wantConnected {
				t.Fatalf("logged the connection: %v, want %v:\n%s", got, tt.wantConnected, logs.String())
			}
			rev, err := l.Current(t.Context())
			if tt.wantConnected && (err != nil || rev.Number != 1) {
				t.Fatalf("Current once connected = %v, %v; want revision 1", rev, err)
			}
			if !tt.wantConnected && switchyard.ErrorCode(err) != switchyard.CodeUnavailable {
				t.Fatalf("Current after giving up = %v, want UNAVAILABLE", err)
			}
		})
	}
}

// notifying is a connected store that announces revisions to its
// listeners when told to.
type notifying struct {
	store.Store
	listeners []func(*switchyard.Revision)
}

func (n *notifying) OnChange(fn func(*switchyard.Revision)) { n.listeners = append(n.listeners, fn) }

func (n *notifying) announce(rev *switchyard.Revision) {
	for _, fn := range n.listeners {
		fn(rev)
	}
}

// A listener registered before the database is reached hears the connected
// store's announcements, as does one registered after.
func TestListenersHandedOver(t *testing.T) {
	l := lazy.New(errDown, store.Identity{})
	var heard []string
	l.OnChange(func(*switchyard.Revision) { heard = append(heard, "before") })
	inner := &notifying{Store: memory.NewDemo()}
	l.Run(t.Context(), discard, time.Millisecond, func(context.Context) (store.Store, error) { return inner, nil })
	l.OnChange(func(*switchyard.Revision) { heard = append(heard, "after") })
	inner.announce(&switchyard.Revision{Number: 2, ID: switchyard.NewRevisionID()})
	if want := []string{"before", "after"}; !slices.Equal(heard, want) {
		t.Fatalf("listeners that heard of revision 2: %v, want %v", heard, want)
	}
}

// degraded is a connected store that runs degraded.
type degraded struct {
	store.Store
	reason string
}

func (d degraded) Degraded() (string, bool) { return d.reason, true }

// The lazy store reports the connected store's degradation, and none of
// its own: before connecting, every call failing says more.
func TestDegraded(t *testing.T) {
	tests := []struct {
		name       string
		lazy       func(t *testing.T) *lazy.Store
		wantReason string
	}{
		{"not connected", func(*testing.T) *lazy.Store { return lazy.New(errDown, store.Identity{}) }, ""},
		{"connected to a store that reports nothing", func(t *testing.T) *lazy.Store { return connected(t, memory.NewDemo()) }, ""},
		{"connected to a degraded store", func(t *testing.T) *lazy.Store {
			return connected(t, degraded{Store: memory.NewDemo(), reason: "Redis does not answer"})
		}, "Redis does not answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason, isDegraded := tt.lazy(t).Degraded()
			if reason != tt.wantReason || isDegraded != (tt.wantReason != "") {
				t.Fatalf("Degraded() = %q, %v; want %q", reason, isDegraded, tt.wantReason)
			}
		})
	}
}

// identified is a connected store that says which installation it is.
type identified struct {
	store.Store
	id store.Identity
}

func (i identified) Identity() store.Identity { return i.id }

// Before it connects the lazy store is what it was told (the database's
// address, so the replica serves only that database's state file); once
// connected, it is what the connected store says.
func TestIdentity(t *testing.T) {
	told := store.Identity{Address: "db:5432/switchyard"}
	said := store.Identity{Address: "db:5432/switchyard", Installation: "system 42, database switchyard, schema public"}
	tests := []struct {
		name string
		lazy func(t *testing.T) *lazy.Store
		want store.Identity
	}{
		{"not connected", func(*testing.T) *lazy.Store { return lazy.New(errDown, told) }, told},
		{"connected to a store that says", func(t *testing.T) *lazy.Store {
			return connected(t, identified{Store: memory.NewDemo(), id: said})
		}, said},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.lazy(t).Identity(); got != tt.want {
				t.Fatalf("Identity() = %+v, want %+v", got, tt.want)
			}
		})
	}
}
