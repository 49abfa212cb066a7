package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
	"github.com/switchyard-dev/switchyard/store/storetest"
)

// unreachableURL is a database address where nothing listens.
const unreachableURL = "postgres://postgres@127.0.0.1:1/x?connect_timeout=1"

// post sends an OFREP evaluation or an admin change and decodes the answer.
func post(t *testing.T, s *process, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return send(t, req)
}

func send(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	return resp.StatusCode, m
}

// A production replica started with its database unreachable serves the
// conservative fallback, says it is degraded, and refuses writes.
func TestServeStartsWithoutTheDatabase(t *testing.T) {
	s := startServe(t, map[string]string{
		"SWITCHYARD_DATABASE_URL": unreachableURL,
		"SWITCHYARD_TOKENS":       "admin:test-admin-secret,viewer:test-viewer-secret",
		"SWITCHYARD_STATE_DIR":    t.TempDir(),
	})
	defer func() {
		if err := s.stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()

	req, _ := http.NewRequest(http.MethodGet, s.url+"/readyz", nil)
	code, body := send(t, req)
	if code != http.StatusServiceUnavailable || body["status"] != "degraded" ||
		!strings.Contains(body["reason"].(string), "conservative fallback") {
		t.Fatalf("readyz = %d %v, want 503 degraded naming the conservative fallback", code, body)
	}
	code, body = post(t, s, "/ofrep/v1/evaluate/flags/FREEZE_UPDATES", "", `{"context":{}}`)
	md, _ := body["metadata"].(map[string]any)
	if code != http.StatusOK || body["value"] != true || body["reason"] != "STALE" || md["fallback"] != "conservative" {
		t.Fatalf("FREEZE_UPDATES = %d %v, want true, STALE, fallback conservative", code, body)
	}
	code, body = post(t, s, "/v1/admin/runtime/flags", "test-admin-secret",
		`{"flag":"EXAM_MODE","value":true,"phrase":"ENABLE EXAM MODE","reason":"exam"}`)
	if code != http.StatusServiceUnavailable {
		t.Fatalf("a write without the database = %d %v, want 503", code, body)
	}
}

// Schema and credential problems are not outages: the start still fails.
func TestProbeDatabase(t *testing.T) {
	tests := []struct {
		name        string
		url         string
		unreachable bool
	}{
		{name: "nothing listens", url: unreachableURL, unreachable: true},
		{name: "not a URL", url: "postgres://%zz", unreachable: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := probeDatabase(context.Background(), tt.url)
			if got := errors.Is(err, errUnreachable); got != tt.unreachable {
				t.Fatalf("probeDatabase(%q) = %v; unreachable %v, want %v", tt.url, err, got, tt.unreachable)
			}
		})
	}
}

// The lazy store answers UNAVAILABLE until it connects, then delegates,
// and hands the server's change listener to the store it connected.
func TestLazyStoreConnectsLater(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lazy := &lazyStore{cause: errUnreachable}
	if _, err := lazy.Current(ctx); evaluator.ErrorCode(err) != evaluator.CodeUnavailable {
		t.Fatalf("Current before connecting = %v, want UNAVAILABLE", err)
	}
	if _, _, err := lazy.Apply(ctx, store.Change{}); evaluator.ErrorCode(err) != evaluator.CodeUnavailable {
		t.Fatalf("Apply before connecting = %v, want UNAVAILABLE", err)
	}
	attempts := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		n := 0
		lazy.run(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Millisecond, func(context.Context) (store.Store, error) {
			if n++; n < 3 {
				return nil, errUnreachable
			}
			close(attempts)
			return memory.NewDemo(), nil
		})
	}()
	<-attempts
	<-done
	rev, err := lazy.Current(ctx)
	if err != nil || rev.Number != 1 {
		t.Fatalf("Current once connected = %v, %v; want revision 1", rev, err)
	}
}

// A replica restarted while its database is unreachable serves the revision
// the previous process wrote to the state directory.
func TestServeRestartsFromTheStateFile(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{
		"SWITCHYARD_DATABASE_URL": testDatabase(t),
		"SWITCHYARD_TOKENS":       "admin:test-admin-secret,viewer:test-viewer-secret",
		"SWITCHYARD_STATE_DIR":    dir,
	}
	first := startServe(t, env)
	code, body := post(t, first, "/v1/admin/runtime/flags", "test-admin-secret",
		`{"flag":"EXAM_MODE","value":true,"phrase":"ENABLE EXAM MODE","reason":"exam"}`)
	if err := first.stop(); err != nil || code != http.StatusOK {
		t.Fatalf("change = %d %v, stop = %v", code, body, err)
	}

	env["SWITCHYARD_DATABASE_URL"] = unreachableURL
	second := startServe(t, env)
	defer func() {
		if err := second.stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	code, body = post(t, second, "/ofrep/v1/evaluate/flags/EXAM_MODE", "", `{"context":{}}`)
	md, _ := body["metadata"].(map[string]any)
	if code != http.StatusOK || body["value"] != true || body["reason"] != "STALE" || md["stale"] != true || md["revision"] != float64(2) {
		t.Fatalf("EXAM_MODE = %d %v, want true, STALE, stale, revision 2 from the state file", code, body)
	}
}

// notifyingStore records the change listeners registered with it.
type notifyingStore struct {
	store.Store
	listeners int
}

func (n *notifyingStore) OnChange(func(int64)) { n.listeners++ }

// A listener registered before the database is reached is handed to the
// store once it is.
func TestLazyStoreHandsOverListeners(t *testing.T) {
	lazy := &lazyStore{cause: errUnreachable}
	lazy.OnChange(func(int64) {})
	inner := &notifyingStore{Store: memory.NewDemo()}
	lazy.run(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), time.Millisecond,
		func(context.Context) (store.Store, error) { return inner, nil })
	lazy.OnChange(func(int64) {})
	if inner.listeners != 2 {
		t.Fatalf("the connected store has %d listeners, want 2", inner.listeners)
	}
}

// A database server that answers with an error is no outage: the probe
// lets the start go on, and the start fails with the real problem.
func TestServeFailsWhenTheDatabaseRefuses(t *testing.T) {
	u, err := url.Parse(storetest.ServiceURL(t, "SWITCHYARD_TEST_DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/switchyard_no_such_database"
	if err := probeDatabase(context.Background(), u.String()); err != nil {
		t.Fatalf("probeDatabase of a missing database = %v, want nil: the server answered", err)
	}
	_, err = runCommand(t, map[string]string{
		"SWITCHYARD_DATABASE_URL": u.String(),
		"SWITCHYARD_TOKENS":       "admin:test-admin-secret",
	}, "serve", "--addr", "127.0.0.1:0")
	if err == nil || !strings.Contains(err.Error(), "migrate") {
		t.Fatalf("serve over a missing database = %v, want the migration's failure", err)
	}
}
