package provider_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/internal/server"
	"github.com/switchyard-dev/switchyard/provider"
	"github.com/switchyard-dev/switchyard/store/memory"
	"github.com/switchyard-dev/switchyard/store/storetest"
)

// proxied is a test server the provider reaches through a TCP proxy that
// the test cuts, refuses or hangs.
func proxied(t *testing.T) (*testServer, *storetest.Proxy) {
	t.Helper()
	ts := newTestServer(t, memory.NewDemo())
	proxy, url := storetest.Proxied(t, ts.url)
	ts.url = url
	return ts, proxy
}

// register registers p under the test's own domain, waiting for its Init
// whatever it returns, and returns the Init error and a client of that
// domain.
func register(t *testing.T, p *provider.Provider) (error, *openfeature.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := openfeature.SetNamedProviderWithContextAndWait(ctx, t.Name(), p)
	t.Cleanup(p.Shutdown)
	return err, openfeature.NewClient(t.Name())
}

// guarded returns the status a write guarded by RequireMutationsAllowed
// answers now.
func guarded(c *openfeature.Client) int {
	h := provider.RequireMutationsAllowed(c, "mastery").Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/mastery", nil))
	return rec.Code
}

// TestInitRetries: a provider whose Init fails because the server cannot
// be reached answers every evaluation with the caller's default and
// PROVIDER_NOT_READY, and its freeze guard refuses writes; once the server
// answers, the provider becomes READY by itself and serves its values.
func TestInitRetries(t *testing.T) {
	ts, proxy := proxied(t)
	proxy.Refuse()
	p, err := provider.New(ts.url)
	if err != nil {
		t.Fatal(err)
	}
	initErr, c := register(t, p)
	if initErr == nil || c.State() != openfeature.ErrorState {
		t.Fatalf("Init with the server unreachable = %v, state %s; want an error and ERROR", initErr, c.State())
	}
	ready := events(c, openfeature.ProviderReady)
	d, _ := c.BooleanValueDetails(context.Background(), "EXAM_MODE", true, openfeature.EvaluationContext{})
	if !d.Value || d.ErrorCode != openfeature.ProviderNotReadyCode {
		t.Fatalf("before the first flag set: EXAM_MODE = %v %s, want the default with PROVIDER_NOT_READY", d.Value, d.ErrorCode)
	}
	if code := guarded(c); code != http.StatusLocked {
		t.Fatalf("a guarded write before the first flag set = %d, want 423: the freeze guard fails closed", code)
	}

	proxy.Restore()
	restored := time.Now()
	next(t, ready, "ready")
	t.Logf("READY %v after the server became reachable", time.Since(restored).Round(time.Millisecond))
	if c.State() != openfeature.ReadyState {
		t.Fatalf("state after recovery = %s, want READY", c.State())
	}
	d, _ = c.BooleanValueDetails(context.Background(), "EXAM_MODE", true, openfeature.EvaluationContext{})
	if d.Value || d.ErrorCode != "" {
		t.Fatalf("after recovery: EXAM_MODE = %v %s, want the server's false", d.Value, d.ErrorCode)
	}
	if code := guarded(c); code != http.StatusNoContent {
		t.Fatalf("a guarded write after recovery = %d, want 204", code)
	}
}

// TestRefusedTokenIsFatal: a provider refused by the server at Init does
// not retry in the background.
func TestRefusedTokenIsFatal(t *testing.T) {
	var calls int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	p, err := provider.New(srv.URL, provider.WithMaxBackoff(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	initErr, c := register(t, p)
	var pe *openfeature.ProviderInitError
	if !errors.As(initErr, &pe) || pe.ErrorCode != openfeature.ProviderFatalCode || c.State() != openfeature.FatalState {
		t.Fatalf("Init = %v, state %s; want PROVIDER_FATAL", initErr, c.State())
	}
	p.Shutdown()
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Fatalf("%d calls to a server that refused the token, want the one Init made", calls)
	}
}

// TestStaleOnItsOwnTimer: with the server cut off, PROVIDER_STALE comes at
// the end of the grace period, whatever the stream and the polls are
// doing, and PROVIDER_READY within a second of the server answering again
// (the backoff is capped at half of that here, leaving the other half to
// a busy machine).
func TestStaleOnItsOwnTimer(t *testing.T) {
	const grace = 300 * time.Millisecond
	ts, proxy := proxied(t)
	_, c := newClient(t, ts, provider.WithGracePeriod(grace), provider.WithMaxBackoff(500*time.Millisecond))
	stale := events(c, openfeature.ProviderStale)
	ready := events(c, openfeature.ProviderReady)
	// The provider has just heard the stream's first event.
	cut := time.Now()
	proxy.Cut()
	next(t, stale, "stale")
	if took := time.Since(cut); took > grace+time.Second {
		t.Fatalf("STALE %v after the cut, want it within a second of the %v grace period", took, grace)
	}
	d, _ := c.BooleanValueDetails(context.Background(), "EXAM_MODE", true, openfeature.EvaluationContext{})
	if d.Value || string(d.Reason) != "STALE" {
		t.Fatalf("while stale: EXAM_MODE = %v %s, want the last value, false, STALE", d.Value, d.Reason)
	}
	proxy.Restore()
	restored := time.Now()
	next(t, ready, "ready")
	if took := time.Since(restored); took > time.Second {
		t.Fatalf("READY %v after the server answered again, want within a second", took)
	}
}

// TestFirstSightNeverWaits: with the server hung, an evaluation naming a
// session seen for the first time is answered at once from the local flag
// set, pinned to the revision served; the pin reaches the server once it
// answers again.
func TestFirstSightNeverWaits(t *testing.T) {
	ts, proxy := proxied(t)
	_, c := newClient(t, ts)
	proxy.Hang()
	start := time.Now()
	d, _ := c.StringValueDetails(context.Background(), "runtime.profile", "", openfeature.NewTargetlessEvaluationContext(
		map[string]any{provider.SessionIDKey: "s-during-hang"}))
	if took := time.Since(start); took > 100*time.Millisecond || d.Value != "primary" || d.FlagMetadata["pinned"] != true {
		t.Fatalf("a new session during a hang = %q %v after %v, want primary, pinned, at once", d.Value, d.FlagMetadata, took)
	}
	proxy.Restore()
	for deadline := time.Now().Add(10 * time.Second); ts.registered(t, "s-during-hang") != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the session pinned during the hang never reached the server")
		}
	}
}

// TestRemoteCircuit: in remote mode, with the server hung, evaluations
// fail after the timeout until three in a row have; then PROVIDER_ERROR,
// and evaluations fail at once. Once the server answers, a probe finds it
// and PROVIDER_READY follows.
func TestRemoteCircuit(t *testing.T) {
	const timeout = 200 * time.Millisecond
	ts, proxy := proxied(t)
	_, c := newClient(t, ts, provider.WithMode(provider.Remote), provider.WithTimeout(timeout))
	failed := events(c, openfeature.ProviderError)
	ready := events(c, openfeature.ProviderReady)
	ctx := context.Background()
	proxy.Hang()
	for range 3 {
		if v, _ := c.BooleanValue(ctx, "FREEZE_UPDATES", true, openfeature.EvaluationContext{}); !v {
			t.Fatal("an evaluation the server did not answer gave false, want the default")
		}
	}
	next(t, failed, "error")
	start := time.Now()
	for range 20 {
		d, _ := c.BooleanValueDetails(ctx, "FREEZE_UPDATES", true, openfeature.EvaluationContext{})
		if !d.Value || d.ErrorCode != openfeature.GeneralCode {
			t.Fatalf("with the circuit open: %v %s, want the default with GENERAL", d.Value, d.ErrorCode)
		}
	}
	// One of them may have been the probe, which waits for the timeout.
	if took := time.Since(start); took > timeout+100*time.Millisecond {
		t.Fatalf("20 evaluations with the circuit open took %v, want them to fail fast", took)
	}
	proxy.Restore()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if v, err := c.BooleanValue(ctx, "FREEZE_UPDATES", true, openfeature.EvaluationContext{}); err == nil && !v {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server never served FREEZE_UPDATES again")
		}
		time.Sleep(10 * time.Millisecond)
	}
	next(t, ready, "ready")
}

// TestBehindAReplicaNotCaughtUp: a provider that reconnects to a replica
// still serving an older revision of the same history (its cache not yet
// reloaded) keeps the newer revision it has, and reports no change.
func TestBehindAReplicaNotCaughtUp(t *testing.T) {
	st := memory.NewDemo()
	ts := newTestServer(t, st)
	// A replica over the same store that loaded revision 1 and will not
	// reload it for an hour.
	behind := server.New(ts.logger, control.New(ts.logger, control.Config{CacheTTL: time.Hour}, st), server.Config{})
	_, c := newClient(t, ts)
	opened(t, ts, "at Init")
	changes := events(c, openfeature.ProviderConfigChange)
	freezeOn(t, ts)
	until(t, changes, 2)
	// It takes the traffic.
	ts.swap(behind)
	opened(t, ts, "on the replica behind")
	if v, _ := c.BooleanValue(context.Background(), "FREEZE_UPDATES", false, openfeature.EvaluationContext{}); !v {
		t.Fatal("FREEZE_UPDATES off after reconnecting to a replica behind, want revision 2's on")
	}
	select {
	case d := <-changes:
		t.Fatalf("a change reported after reconnecting to a replica behind: %v", d.FlagChanges)
	default:
	}
}
