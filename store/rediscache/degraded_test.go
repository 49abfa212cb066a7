package rediscache

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
)

func TestDegradedFollowsHealth(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name     string
		fail     bool
		recover  bool
		degraded bool
		want     string
	}{
		{name: "up", degraded: false},
		{name: "down", fail: true, degraded: true, want: "Redis does not answer since 2026-01-02T03:04:05Z (dial tcp: refused)"},
		{name: "back", fail: true, recover: true, degraded: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Store{}
			if tt.fail {
				s.health.fail(errors.New("dial tcp: refused"), start, time.Second)
			}
			if tt.recover {
				s.health.ok(start.Add(time.Minute))
			}
			reason, degraded := s.Degraded()
			if degraded != tt.degraded || !strings.HasPrefix(reason, tt.want) {
				t.Errorf("Degraded() = %q, %v; want prefix %q, %v", reason, degraded, tt.want, tt.degraded)
			}
		})
	}
}

// identified is a store that says which installation it is.
type identified struct {
	store.Store
	id store.Identity
}

func (i identified) Identity() store.Identity { return i.id }

// A cache is the installation of the store it wraps.
func TestIdentityIsTheWrappedStores(t *testing.T) {
	id := store.Identity{Address: "db:5432/switchyard", Installation: "system 42, database switchyard, schema public"}
	tests := []struct {
		name  string
		inner store.Store
		want  store.Identity
	}{
		{"a store that says", identified{Store: memory.NewDemo(), id: id}, id},
		{"a store that does not", memory.NewDemo(), store.Identity{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (&Store{inner: tt.inner}).Identity(); got != tt.want {
				t.Fatalf("Identity() = %+v, want %+v", got, tt.want)
			}
		})
	}
}
