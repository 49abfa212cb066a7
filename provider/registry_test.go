package provider_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/provider"
	"github.com/switchyard-dev/switchyard/store/memory"
)

// bridgeCounts counts each bridge's runs per user.
type bridgeCounts struct {
	mu   sync.Mutex
	runs map[string]int
}

func (b *bridgeCounts) fn(name string) provider.BridgeFunc {
	return func(_ context.Context, user string) error {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.runs[name+" "+user]++
		return nil
	}
}

func (b *bridgeCounts) get(name, user string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.runs[name+" "+user]
}

// masteryRegistry registers mastery v0 and v1 (as their names) and both
// bridges, counted.
func masteryRegistry(t *testing.T) (*provider.Registry[string], *bridgeCounts) {
	t.Helper()
	reg := provider.NewRegistry[string]()
	counts := &bridgeCounts{runs: map[string]int{}}
	for _, err := range []error{
		reg.Register("mastery", "v0", "mastery-v0"),
		reg.Register("mastery", "v1", "mastery-v1"),
		reg.RegisterBridge("mastery", "v1", "v0", counts.fn("v1->v0")),
		reg.RegisterBridge("mastery", "v0", "v1", counts.fn("v0->v1")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return reg, counts
}

func sessionOf(user, id string) openfeature.EvaluationContext {
	return openfeature.NewEvaluationContext(user, map[string]any{provider.SessionIDKey: id})
}

// TestRegistryFollowsProfile resolves against a real Switchyard: primary
// serves v1; after a switch to fallback a new session gets v0 and the
// user's v1->v0 bridge runs exactly once however many calls race, while a
// session pinned before the switch keeps v1 and bridges nothing.
func TestRegistryFollowsProfile(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ts := newTestServer(t, memory.NewDemo())
			p, c := newClient(t, ts, provider.WithMode(m.mode))
			changes := events(c, openfeature.ProviderConfigChange)
			ctx := context.Background()
			reg, counts := masteryRegistry(t)
			if err := reg.Validate(ctx, p); err != nil {
				t.Fatal(err)
			}
			resolve := func(evalCtx openfeature.EvaluationContext) string {
				t.Helper()
				impl, err := reg.Resolve(ctx, c, "mastery", evalCtx)
				if err != nil {
					t.Fatal(err)
				}
				return impl
			}
			if got := resolve(sessionOf("ann", "s-ann-1")); got != "mastery-v1" {
				t.Fatalf("under primary: %s, want mastery-v1", got)
			}
			if got := resolve(sessionOf("bob", "s-bob-1")); got != "mastery-v1" {
				t.Fatalf("bob under primary: %s, want mastery-v1", got)
			}
			ts.admin(t, "/v1/admin/runtime/profile", map[string]any{"profile_name": "fallback", "phrase": "SET PROFILE FALLBACK", "reason": "roll back"})
			if m.mode == provider.InProcess {
				// A new session is pinned to what the provider serves.
				next(t, changes, "configuration changed")
			}

			const n = 20
			got := make([]string, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					impl, err := reg.Resolve(ctx, c, "mastery", sessionOf("ann", "s-ann-2"))
					if err != nil {
						t.Error(err)
					}
					got[i] = impl
				})
			}
			wg.Wait()
			for i, g := range got {
				if g != "mastery-v0" {
					t.Fatalf("call %d in the new session: %s, want mastery-v0", i, g)
				}
			}
			if got := resolve(sessionOf("bob", "s-bob-1")); got != "mastery-v1" {
				t.Fatalf("bob's pinned session: %s, want mastery-v1", got)
			}
			for _, tt := range []struct {
				bridge, user string
				want         int
			}{{"v1->v0", "ann", 1}, {"v0->v1", "ann", 0}, {"v1->v0", "bob", 0}, {"v0->v1", "bob", 0}} {
				if got := counts.get(tt.bridge, tt.user); got != tt.want {
					t.Errorf("bridge %s for %s ran %d times, want %d", tt.bridge, tt.user, got, tt.want)
				}
			}
		})
	}
}

// TestRegistryDisabledModule: a module an operator disabled resolves to
// ErrModuleDisabled, which callers branch on.
func TestRegistryDisabledModule(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ts := newTestServer(t, memory.NewDemo())
			_, c := newClient(t, ts, provider.WithMode(m.mode))
			changes := events(c, openfeature.ProviderConfigChange)
			reg, _ := masteryRegistry(t)
			ts.admin(t, "/v1/admin/runtime/override", map[string]any{"module": "mastery", "is_enabled": false, "phrase": "DISABLE MODULE mastery", "reason": "bad scores"})
			if m.mode == provider.InProcess {
				// A new session is pinned to what the provider serves.
				next(t, changes, "configuration changed")
			}
			_, err := reg.Resolve(context.Background(), c, "mastery", sessionOf("ann", "s-after"))
			if !errors.Is(err, provider.ErrModuleDisabled) {
				t.Fatalf("disabled mastery: %v, want ErrModuleDisabled", err)
			}
		})
	}
}

// TestRegistryValidate: registrations the catalog does not know fail at
// start-up, in Validate or, once validated, in Register itself.
func TestRegistryValidate(t *testing.T) {
	catalog := provider.CatalogFunc(func(context.Context) ([]switchyard.Module, error) {
		return switchyard.DefaultCatalog(), nil
	})
	noop := func(context.Context, string) error { return nil }
	tests := []struct {
		name string
		// before runs before Validate, after after it; the first error
		// of either is the outcome.
		before, after func(*provider.Registry[int]) error
		wantErr       bool
	}{
		{name: "known versions", before: func(r *provider.Registry[int]) error {
			return errors.Join(r.Register("mastery", "v0", 0), r.Register("mastery", "v1", 1), r.RegisterBridge("mastery", "v1", "v0", noop))
		}},
		{name: "unknown version", wantErr: true, before: func(r *provider.Registry[int]) error { return r.Register("mastery", "v2", 2) }},
		{name: "unknown module", wantErr: true, before: func(r *provider.Registry[int]) error { return r.Register("masteryy", "v1", 1) }},
		{name: "bridge to an unknown version", wantErr: true, before: func(r *provider.Registry[int]) error {
			return r.RegisterBridge("mastery", "v1", "v9", noop)
		}},
		{name: "unknown version after Validate", wantErr: true, after: func(r *provider.Registry[int]) error { return r.Register("mastery", "v2", 2) }},
		{name: "known version after Validate", after: func(r *provider.Registry[int]) error { return r.Register("mastery", "v1", 1) }},
		{name: "registered twice", wantErr: true, before: func(r *provider.Registry[int]) error {
			return errors.Join(r.Register("mastery", "v1", 1), r.Register("mastery", "v1", 1))
		}},
		{name: "bridge to itself", wantErr: true, before: func(r *provider.Registry[int]) error { return r.RegisterBridge("mastery", "v1", "v1", noop) }},
		{name: "bridge without a function", wantErr: true, before: func(r *provider.Registry[int]) error { return r.RegisterBridge("mastery", "v1", "v0", nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := provider.NewRegistry[int]()
			var err error
			if tt.before != nil {
				err = tt.before(r)
			}
			if err == nil {
				err = r.Validate(context.Background(), catalog)
			}
			if err == nil && tt.after != nil {
				err = tt.after(r)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want one: %v", err, tt.wantErr)
			}
		})
	}
}

// TestRegistryValidateUnknownAgainstServer: Validate reads the catalog
// from the provider, so a version the server does not know stops start-up.
func TestRegistryValidateUnknownAgainstServer(t *testing.T) {
	ts := newTestServer(t, memory.NewDemo())
	p, _ := newClient(t, ts)
	reg := provider.NewRegistry[string]()
	if err := reg.Register("mastery", "v3", "mastery-v3"); err != nil {
		t.Fatal(err)
	}
	if err := reg.Validate(context.Background(), p); err == nil {
		t.Fatal("Validate accepted mastery v3, which the server's catalog lacks")
	}
}

// stubClient answers every evaluation with the same details.
type stubClient struct {
	details openfeature.StringEvaluationDetails
	err     error
}

func (s stubClient) StringValueDetails(context.Context, string, string, openfeature.EvaluationContext, ...openfeature.Option) (openfeature.StringEvaluationDetails, error) {
	return s.details, s.err
}

func served(version string, reason openfeature.Reason) openfeature.StringEvaluationDetails {
	return openfeature.StringEvaluationDetails{Value: version,
		EvaluationDetails: openfeature.EvaluationDetails{ResolutionDetail: openfeature.ResolutionDetail{Reason: reason}}}
}

// TestRegistryResolveErrors: every way Resolve can fail, each telling the
// caller what it needs.
func TestRegistryResolveErrors(t *testing.T) {
	reg, _ := masteryRegistry(t)
	tests := []struct {
		name   string
		client stubClient
		check  func(error) bool
	}{
		{"disabled", stubClient{details: served("", openfeature.DisabledReason)}, func(err error) bool { return errors.Is(err, provider.ErrModuleDisabled) }},
		{"unregistered version", stubClient{details: served("v2", openfeature.StaticReason)}, func(err error) bool {
			var u *provider.UnregisteredError
			return errors.As(err, &u) && u.Module == "mastery" && u.Version == "v2"
		}},
		{"evaluation error", stubClient{details: served("", openfeature.ErrorReason), err: errors.New("flag not found")}, func(err error) bool {
			return err != nil && !errors.Is(err, provider.ErrModuleDisabled)
		}},
		{"no version", stubClient{details: served("", openfeature.DefaultReason)}, func(err error) bool { return err != nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			impl, err := reg.Resolve(context.Background(), tt.client, "mastery", sessionOf("ann", "s-1"))
			if !tt.check(err) || impl != "" {
				t.Fatalf("Resolve = %q, %v", impl, err)
			}
		})
	}
}

// TestRegistryBridgeFailureRetries: a failed bridge leaves the user at the
// old version, so the next Resolve runs the bridge again.
func TestRegistryBridgeFailureRetries(t *testing.T) {
	reg := provider.NewRegistry[string](provider.WithVersionStore(provider.NewMemoryVersionStore(10)))
	var calls atomic.Int64
	for _, err := range []error{
		reg.Register("mastery", "v0", "mastery-v0"),
		reg.Register("mastery", "v1", "mastery-v1"),
		reg.RegisterBridge("mastery", "v1", "v0", func(context.Context, string) error {
			if calls.Add(1) == 1 {
				return errors.New("state store down")
			}
			return nil
		}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	v1, v0 := stubClient{details: served("v1", openfeature.StaticReason)}, stubClient{details: served("v0", openfeature.StaticReason)}
	steps := []struct {
		client    stubClient
		wantErr   bool
		wantCalls int64
	}{{v1, false, 0}, {v0, true, 1}, {v0, false, 2}, {v0, false, 2}}
	for i, s := range steps {
		_, err := reg.Resolve(ctx, s.client, "mastery", sessionOf("ann", "s-1"))
		if (err != nil) != s.wantErr || calls.Load() != s.wantCalls {
			t.Fatalf("step %d: error %v, %d bridge calls; want error %v, %d calls", i, err, calls.Load(), s.wantErr, s.wantCalls)
		}
	}
}
