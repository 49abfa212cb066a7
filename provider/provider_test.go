package provider_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/internal/server"
	"github.com/switchyard-dev/switchyard/provider"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
	"github.com/switchyard-dev/switchyard/store/storetest"
)

const adminToken = "admin-token-for-provider-tests"

// testServer is the real Switchyard server over a memory store, behind a
// switch that takes it down: requests then get 503 and open streams end.
type testServer struct {
	url     string
	logger  *slog.Logger
	handler http.Handler
	down    atomic.Bool
	// noStream answers /v1/stream 404, as a server without it would.
	noStream atomic.Bool
	// sessionCalls counts POST /v1/sessions.
	sessionCalls atomic.Int64
	// streams receives a value for each GET /v1/stream, up to its buffer.
	streams chan struct{}

	mu   sync.Mutex
	kill context.Context
	cut  context.CancelFunc
}

func newTestServer(t testing.TB, st store.Store) *testServer {
	t.Helper()
	return newTestServerWith(t, control.Config{}, server.Config{}, st)
}

// newTestServerWith is newTestServer with the core's settings cfg (demo
// mode unless it says otherwise) and the server's scfg, with the tests'
// admin token.
func newTestServerWith(t testing.TB, cfg control.Config, scfg server.Config, st store.Store) *testServer {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	scfg.Auth = server.NewAuthenticator([]server.Token{{Operator: switchyard.Operator{Name: "admin", Role: switchyard.RoleAdmin}, Secret: adminToken}})
	ts := &testServer{logger: logger, handler: server.New(logger, control.New(logger, cfg, st), scfg), streams: make(chan struct{}, 16)}
	ts.kill, ts.cut = context.WithCancel(context.Background())
	srv := httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(srv.Close)
	ts.url = srv.URL
	return ts
}

func (ts *testServer) serve(w http.ResponseWriter, r *http.Request) {
	if ts.down.Load() {
		http.Error(w, "down for the test", http.StatusServiceUnavailable)
		return
	}
	if r.Method == http.MethodPost && r.URL.Path == "/v1/sessions" {
		ts.sessionCalls.Add(1)
	}
	if r.URL.Path == "/v1/stream" {
		if ts.noStream.Load() {
			http.NotFound(w, r)
			return
		}
		select {
		case ts.streams <- struct{}{}:
		default:
		}
	}
	ts.mu.Lock()
	kill, handler := ts.kill, ts.handler
	ts.mu.Unlock()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(kill, cancel)()
	handler.ServeHTTP(w, r.WithContext(ctx))
}

// swap makes h serve the requests from now on, as another replica behind
// a load balancer would, and ends the streams open on the one before.
func (ts *testServer) swap(h http.Handler) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.handler = h
	ts.cut()
	ts.kill, ts.cut = context.WithCancel(context.Background())
}

// opened waits for a stream to be opened on ts; what says when, for the
// failure.
func opened(t *testing.T, ts *testServer, what string) {
	t.Helper()
	select {
	case <-ts.streams:
	case <-time.After(10 * time.Second):
		t.Fatalf("no stream opened %s", what)
	}
}

// setDown takes the server down (ending open streams) or brings it back.
func (ts *testServer) setDown(down bool) {
	ts.down.Store(down)
	if down {
		ts.mu.Lock()
		ts.cut()
		ts.kill, ts.cut = context.WithCancel(context.Background())
		ts.mu.Unlock()
	}
}

// admin applies an admin change straight through the server's handler, so
// it works while the test server is down.
func (ts *testServer) admin(t *testing.T, path string, body map[string]any) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+adminToken)
	rec := httptest.NewRecorder()
	ts.mu.Lock()
	handler := ts.handler
	ts.mu.Unlock()
	handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("POST %s: %d %s", path, rec.Code, rec.Body)
	}
}

// registered returns the revision the server pinned session id to, or 0
// when it has no such session; it asks the handler straight, so it counts
// no session call.
func (ts *testServer) registered(t *testing.T, id string) int64 {
	t.Helper()
	rec := httptest.NewRecorder()
	ts.mu.Lock()
	handler := ts.handler
	ts.mu.Unlock()
	handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/sessions/"+id, nil))
	if rec.Code == http.StatusNotFound {
		return 0
	}
	var snap switchyard.Snapshot
	if err := json.Unmarshal(rec.Body.Bytes(), &snap); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("GET /v1/sessions/%s: %d %s", id, rec.Code, rec.Body)
	}
	return snap.Revision
}

// The admin changes the tests make.
var (
	examOn = func(t *testing.T, ts *testServer) {
		ts.admin(t, "/v1/admin/runtime/flags", map[string]any{"flag": "EXAM_MODE", "value": true, "phrase": "ENABLE EXAM MODE", "reason": "exam"})
	}
	freezeOn = func(t *testing.T, ts *testServer) {
		ts.admin(t, "/v1/admin/runtime/flags", map[string]any{"flag": "FREEZE_UPDATES", "value": true, "phrase": "ENABLE FREEZE UPDATES", "reason": "migration"})
	}
	profileShadow = func(t *testing.T, ts *testServer) {
		ts.admin(t, "/v1/admin/runtime/profile", map[string]any{"profile_name": "shadow", "phrase": "SET PROFILE SHADOW", "reason": "canary"})
	}
	overrideSearch = func(t *testing.T, ts *testServer) {
		ts.admin(t, "/v1/admin/runtime/override", map[string]any{"module": "elasticsearch", "version": "v0", "phrase": "OVERRIDE MODULE elasticsearch TO v0", "reason": "bug"})
	}
)

// modes are the provider's two modes, for tests that hold for both.
var modes = []struct {
	name string
	mode provider.Mode
}{{"in-process", provider.InProcess}, {"remote", provider.Remote}}

// newClient registers a provider for ts under the test's own domain and
// returns the provider and a client of that domain.
func newClient(t *testing.T, ts *testServer, opts ...provider.Option) (*provider.Provider, *openfeature.Client) {
	t.Helper()
	p, err := provider.New(ts.url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := openfeature.SetNamedProviderWithContextAndWait(ctx, t.Name(), p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Shutdown)
	return p, openfeature.NewClient(t.Name())
}

// events returns a channel of the client's events of type et.
func events(c *openfeature.Client, et openfeature.EventType) <-chan openfeature.EventDetails {
	ch := make(chan openfeature.EventDetails, 16)
	cb := func(d openfeature.EventDetails) { ch <- d }
	c.AddHandler(et, &cb)
	return ch
}

// next waits for the next event on ch.
func next(t *testing.T, ch <-chan openfeature.EventDetails, what string) openfeature.EventDetails {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s event", what)
	}
	return openfeature.EventDetails{}
}

// until waits for the change event of revision n on ch, past those of
// the revisions before it.
func until(t *testing.T, ch <-chan openfeature.EventDetails, n int64) {
	t.Helper()
	for {
		if next(t, ch, "configuration changed").EventMetadata["revision"] == n {
			return
		}
	}
}

// generalStore is a demo store whose revision 1 also has general flags.
func generalStore(t *testing.T) store.Store {
	t.Helper()
	rev := switchyard.InitialRevision(time.Now())
	def := func(s string) *string { return &s }
	rev.Flags = map[string]switchyard.Flag{
		"retries": {State: switchyard.StateEnabled, Variants: map[string]any{"few": 3.0, "many": 10.0}, DefaultVariant: def("few"),
			Metadata: map[string]any{"owner": "payments", "ticket": 4711.0}},
		"ratio": {State: switchyard.StateEnabled, Variants: map[string]any{"half": 0.5}, DefaultVariant: def("half")},
		"theme": {State: switchyard.StateEnabled, Variants: map[string]any{"dark": map[string]any{"bg": "black"}}, DefaultVariant: def("dark")},
		"new-checkout": {State: switchyard.StateEnabled, Variants: map[string]any{"on": true, "off": false}, DefaultVariant: def("off"),
			Targeting: json.RawMessage(`{"if":[{"ends_with":[{"var":"email"},"@example.com"]},"on","off"]}`)},
		"no-default": {State: switchyard.StateEnabled, Variants: map[string]any{"a": "a"}},
	}
	if err := evaluator.Validate(rev); err != nil {
		t.Fatal(err)
	}
	return memory.New(rev)
}

func TestEvaluate(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			_, c := newClient(t, newTestServer(t, generalStore(t)), provider.WithMode(m.mode))
			ctx := context.Background()
			staff := openfeature.NewEvaluationContext("u-1", map[string]any{"email": "ann@example.com"})
			tests := []struct {
				name        string
				eval        func() (any, openfeature.EvaluationDetails)
				want        any
				wantReason  openfeature.Reason
				wantCode    openfeature.ErrorCode
				wantVariant string
			}{
				{"system flag", func() (any, openfeature.EvaluationDetails) {
					d, _ := c.BooleanValueDetails(ctx, "EXAM_MODE", true, openfeature.EvaluationContext{})
					return d.Value, d.EvaluationDetails
				}, false, openfeature.StaticReason, "", "off"},
				{"module version", func() (any, openfeature.EvaluationDetails) {
					d, _ := c.StringValueDetails(ctx, "module.mastery", "v0", openfeature.EvaluationContext{})
					return d.Value, d.EvaluationDetails
				}, "v1", openfeature.StaticReason, "", "v1"},
				{"integer", func() (any, openfeature.EvaluationDetails) {
					d, _ := c.IntValueDetails(ctx, "retries", 1, openfeature.EvaluationContext{})
					return d.Value, d.EvaluationDetails
				}, int64(3), openfeature.StaticReason, "", "few"},
				{"float", func() (any, openfeature.EvaluationDetails) {
					d, _ := c.FloatValueDetails(ctx, "ratio", 1, openfeature.EvaluationContext{})
					return d.Value, d.EvaluationDetails
				}, 0.5, openfeature.StaticReason, "", "half"},
				{"object", func() (any, openfeature.EvaluationDetails) {
					d, _ := c.ObjectValueDetails(ctx, "theme", nil, openfeature.EvaluationContext{})
					return d.Value, d.EvaluationDetails
				}, map[string]any{"bg": "black"}, openfeature.StaticReason, "", "dark"},
				{"targeting match", func() (any, openfeature.EvaluationDetails) {
					d, _ := c.BooleanValueDetails(ctx, "new-checkout", false, staff)
					return d.Value, d.EvaluationDetails
				}, true, openfeature.TargetingMatchReason, "", "on"},
				{"no default variant: the caller's default", func() (any, openfeature.EvaluationDetails) {
					d, _ := c.StringValueDetails(ctx, "no-default", "mine", openfeature.EvaluationContext{})
					return d.Value, d.EvaluationDetails
				}, "mine", openfeature.DefaultReason, "", ""},
				{"disabled module: the caller's default", func() (any, openfeature.EvaluationDetails) {
					d, _ := c.StringValueDetails(ctx, "module.nothing", "v9", openfeature.EvaluationContext{})
					return d.Value, d.EvaluationDetails
				}, "v9", openfeature.ErrorReason, openfeature.FlagNotFoundCode, ""},
				{"type mismatch", func() (any, openfeature.EvaluationDetails) {
					d, _ := c.StringValueDetails(ctx, "EXAM_MODE", "x", openfeature.EvaluationContext{})
					return d.Value, d.EvaluationDetails
				}, "x", openfeature.ErrorReason, openfeature.TypeMismatchCode, ""},
				{"a session ID the server refuses", func() (any, openfeature.EvaluationDetails) {
					d, _ := c.BooleanValueDetails(ctx, "EXAM_MODE", true, openfeature.NewTargetlessEvaluationContext(
						map[string]any{provider.SessionIDKey: "a b"}))
					return d.Value, d.EvaluationDetails
				}, true, openfeature.ErrorReason, openfeature.InvalidContextCode, ""},
				{"fraction as integer", func() (any, openfeature.EvaluationDetails) {
					d, _ := c.IntValueDetails(ctx, "ratio", 7, openfeature.EvaluationContext{})
					return d.Value, d.EvaluationDetails
				}, int64(7), openfeature.ErrorReason, openfeature.TypeMismatchCode, ""},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					v, d := tt.eval()
					if !equal(v, tt.want) || d.Reason != tt.wantReason || d.ErrorCode != tt.wantCode || d.Variant != tt.wantVariant {
						t.Fatalf("= %#v %s %q variant %q, want %#v %s %q variant %q (%s)", v, d.Reason, d.ErrorCode, d.Variant,
							tt.want, tt.wantReason, tt.wantCode, tt.wantVariant, d.ErrorMessage)
					}
				})
			}
			d, _ := c.IntValueDetails(ctx, "retries", 1, openfeature.EvaluationContext{})
			if d.FlagMetadata["ticket"] != int64(4711) || d.FlagMetadata["revision"] != int64(1) ||
				d.FlagMetadata["pinned"] != false || d.FlagMetadata["owner"] != "payments" {
				t.Fatalf("metadata = %#v, want integral numbers as int64", d.FlagMetadata)
			}
		})
	}
}

func equal(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb) && (a == nil) == (b == nil) && sameKind(a, b)
}

func sameKind(a, b any) bool {
	switch a.(type) {
	case int64:
		_, ok := b.(int64)
		return ok
	case float64:
		_, ok := b.(float64)
		return ok
	}
	return true
}

// TestSessionPinning proves that a profile switch, an override and
// EXAM_MODE made mid-session do not reach an open session, explicit or
// pinned at first sight, and do reach a new one. In process, a session
// seen for the first time is pinned to the revision the provider serves,
// so the test waits for the provider to serve the changes.
func TestSessionPinning(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ts := newTestServer(t, memory.NewDemo())
			p, c := newClient(t, ts, provider.WithMode(m.mode))
			changes := events(c, openfeature.ProviderConfigChange)
			ctx := context.Background()
			if err := p.StartSession(ctx, "s-explicit", "u-1"); err != nil {
				t.Fatal(err)
			}
			session := func(id string) openfeature.EvaluationContext {
				return openfeature.NewTargetlessEvaluationContext(map[string]any{provider.SessionIDKey: id})
			}
			// An unknown session is pinned at first sight.
			if v, _ := c.BooleanValue(ctx, "EXAM_MODE", true, session("s-implicit")); v {
				t.Fatal("EXAM_MODE on before any change")
			}
			examOn(t, ts)
			profileShadow(t, ts)
			overrideSearch(t, ts)
			if m.mode == provider.InProcess {
				until(t, changes, 4)
			}

			type view struct {
				exam          bool
				profile, es   string
				pinned        bool
				revision, esV any
			}
			read := func(id string) view {
				exam, _ := c.BooleanValue(ctx, "EXAM_MODE", false, session(id))
				profile, _ := c.StringValue(ctx, "runtime.profile", "", session(id))
				es, _ := c.StringValueDetails(ctx, "module.elasticsearch", "", session(id))
				return view{exam: exam, profile: profile, es: es.Value, pinned: es.FlagMetadata["pinned"] == true, revision: es.FlagMetadata["revision"]}
			}
			old := view{exam: false, profile: "primary", es: "v1", pinned: true, revision: int64(1)}
			fresh := view{exam: true, profile: "shadow", es: "v0", pinned: true, revision: int64(4)}
			for _, tt := range []struct {
				id   string
				want view
			}{{"s-explicit", old}, {"s-implicit", old}, {"s-new", fresh}} {
				if got := read(tt.id); got != tt.want {
					t.Errorf("session %s sees %+v, want %+v", tt.id, got, tt.want)
				}
			}
			// A new session explicitly started now sees the changes too.
			if err := p.StartSession(ctx, "s-new-explicit", ""); err != nil {
				t.Fatal(err)
			}
			if got := read("s-new-explicit"); got != fresh {
				t.Errorf("new explicit session sees %+v, want %+v", got, fresh)
			}
		})
	}
}

// TestNewSessionBurst: evaluations arriving together for a session seen
// for the first time share one fetch of its snapshot.
func TestNewSessionBurst(t *testing.T) {
	ts := newTestServer(t, memory.NewDemo())
	_, c := newClient(t, ts)
	session := openfeature.NewTargetlessEvaluationContext(map[string]any{provider.SessionIDKey: "s-burst"})
	const n = 20
	start := make(chan struct{})
	var wg sync.WaitGroup
	var wrong atomic.Int64
	for range n {
		wg.Go(func() {
			<-start
			d, _ := c.StringValueDetails(context.Background(), "runtime.profile", "", session)
			if d.Value != "primary" || d.FlagMetadata["pinned"] != true {
				wrong.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if wrong.Load() != 0 {
		t.Fatalf("%d of %d evaluations did not get the pinned profile", wrong.Load(), n)
	}
	// The pin is registered in the background: once the server has the
	// session, it has had exactly one call for it.
	for deadline := time.Now().Add(10 * time.Second); ts.registered(t, "s-burst") == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the session pinned at first sight never reached the server")
		}
	}
	if calls := ts.sessionCalls.Load(); calls != 1 {
		t.Fatalf("%d session calls for %d evaluations of one new session, want 1", calls, n)
	}
}

// TestConfigurationChanged follows changes over the stream: each admin
// change emits PROVIDER_CONFIGURATION_CHANGED with exactly the changed
// flags, after which live evaluations see it.
func TestConfigurationChanged(t *testing.T) {
	ts := newTestServer(t, memory.NewDemo())
	_, c := newClient(t, ts)
	changes := events(c, openfeature.ProviderConfigChange)
	ctx := context.Background()
	tests := []struct {
		change func(*testing.T, *testServer)
		want   []string
		check  func() bool
	}{
		{examOn, []string{"EXAM_MODE"}, func() bool {
			v, _ := c.BooleanValue(ctx, "EXAM_MODE", false, openfeature.EvaluationContext{})
			return v
		}},
		{overrideSearch, []string{"module.elasticsearch"}, func() bool {
			v, _ := c.StringValue(ctx, "module.elasticsearch", "", openfeature.EvaluationContext{})
			return v == "v0"
		}},
		{profileShadow, []string{"module.adaptive", "module.difficulty", "module.mastery", "module.mistakes", "module.revision", "module.search", "runtime.profile"},
			func() bool {
				v, _ := c.StringValue(ctx, "runtime.profile", "", openfeature.EvaluationContext{})
				return v == "shadow"
			}},
	}
	for i, tt := range tests {
		tt.change(t, ts)
		d := next(t, changes, "configuration changed")
		if !slices.Equal(d.FlagChanges, tt.want) || d.EventMetadata["revision"] != int64(i+2) {
			t.Fatalf("change %d: event %v %v, want %v at revision %d", i, d.FlagChanges, d.EventMetadata, tt.want, i+2)
		}
		if !tt.check() {
			t.Fatalf("change %d: not visible after the event", i)
		}
	}
}

// TestPollingWithoutStream: where the stream is unavailable the provider
// polls the bundle and still reports each change, without going STALE.
func TestPollingWithoutStream(t *testing.T) {
	ts := newTestServer(t, memory.NewDemo())
	ts.noStream.Store(true)
	_, c := newClient(t, ts, provider.WithPollInterval(time.Millisecond), provider.WithGracePeriod(time.Hour))
	changes := events(c, openfeature.ProviderConfigChange)
	examOn(t, ts)
	if d := next(t, changes, "configuration changed"); !slices.Equal(d.FlagChanges, []string{"EXAM_MODE"}) {
		t.Fatalf("changed %v, want [EXAM_MODE]", d.FlagChanges)
	}
	d, _ := c.BooleanValueDetails(context.Background(), "EXAM_MODE", false, openfeature.EvaluationContext{})
	if !d.Value || d.Reason != openfeature.StaticReason {
		t.Fatalf("after the change: %v %s, want true STATIC", d.Value, d.Reason)
	}
}

// TestSilentStreamIsLost: a stream whose connection stays open but carries
// nothing more (the link died after the server's answer began) is lost
// once the heartbeats the server advertises stop: the provider closes it,
// opens another and hears the changes made since.
func TestSilentStreamIsLost(t *testing.T) {
	ts := newTestServerWith(t, control.Config{}, server.Config{Heartbeat: 50 * time.Millisecond}, memory.NewDemo())
	// The provider reaches the server through the proxy.
	proxy, url := storetest.Proxied(t, ts.url)
	ts.url = url
	_, c := newClient(t, ts, provider.WithPollInterval(time.Millisecond), provider.WithGracePeriod(time.Hour))
	changes := events(c, openfeature.ProviderConfigChange)
	heard := func(change func(*testing.T, *testServer), flag string) {
		t.Helper()
		change(t, ts)
		if d := next(t, changes, "configuration changed"); !slices.Equal(d.FlagChanges, []string{flag}) {
			t.Fatalf("changed %v, want [%s]", d.FlagChanges, flag)
		}
	}
	opened(t, ts, "at Init")
	// A change heard shows the stream is up, its answer begun.
	heard(freezeOn, "FREEZE_UPDATES")
	proxy.Mute()
	opened(t, ts, "after the first went silent")
	heard(examOn, "EXAM_MODE")
}

// TestStaleAndRecovery takes the server down: past the grace period the
// provider reports STALE and keeps serving the last flag set with reason
// STALE; back up, it reports READY, then the change made meanwhile.
func TestStaleAndRecovery(t *testing.T) {
	ts := newTestServer(t, memory.NewDemo())
	// A grace period many polls long: STALE comes soon after the server
	// goes down, and a poll delayed by a busy machine (or -race) does not
	// make the recovered provider stale again before it is asked.
	_, c := newClient(t, ts, provider.WithGracePeriod(300*time.Millisecond), provider.WithPollInterval(5*time.Millisecond))
	stale := events(c, openfeature.ProviderStale)
	ready := events(c, openfeature.ProviderReady)
	changes := events(c, openfeature.ProviderConfigChange)
	ctx := context.Background()

	ts.setDown(true)
	next(t, stale, "stale")
	d, _ := c.BooleanValueDetails(ctx, "EXAM_MODE", true, openfeature.EvaluationContext{})
	if d.Value || d.Reason != openfeature.Reason(evaluator.ReasonStale) || d.ErrorCode != "" {
		t.Fatalf("while stale: %v %s %s, want false STALE", d.Value, d.Reason, d.ErrorCode)
	}
	examOn(t, ts)
	ts.setDown(false)
	next(t, ready, "ready")
	if d := next(t, changes, "configuration changed"); !slices.Equal(d.FlagChanges, []string{"EXAM_MODE"}) {
		t.Fatalf("after recovery: changed %v, want [EXAM_MODE]", d.FlagChanges)
	}
	d, _ = c.BooleanValueDetails(ctx, "EXAM_MODE", false, openfeature.EvaluationContext{})
	if !d.Value || d.Reason != openfeature.StaticReason {
		t.Fatalf("after recovery: %v %s, want true STATIC", d.Value, d.Reason)
	}
}

// TestGuardWithProvider: freeze on through the admin API, and the guard of
// a client backed by this provider answers 423.
func TestGuardWithProvider(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ts := newTestServer(t, memory.NewDemo())
			_, c := newClient(t, ts, provider.WithMode(m.mode))
			changes := events(c, openfeature.ProviderConfigChange)
			h := provider.RequireMutationsAllowed(c, "mastery").Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusNoContent)
			}))
			post := func() *httptest.ResponseRecorder {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/mastery", nil))
				return rec
			}
			if rec := post(); rec.Code != http.StatusNoContent {
				t.Fatalf("before the freeze: %d %s", rec.Code, rec.Body)
			}
			freezeOn(t, ts)
			if m.mode == provider.InProcess {
				next(t, changes, "configuration changed")
			}
			if rec := post(); rec.Code != http.StatusLocked || !strings.Contains(rec.Body.String(), provider.CodeFreezeUpdatesActive) {
				t.Fatalf("during the freeze: %d %s, want 423 %s", rec.Code, rec.Body, provider.CodeFreezeUpdatesActive)
			}
		})
	}
}

// TestInitFailures: Init succeeds only with a usable flag set, and a
// refused token is fatal.
func TestInitFailures(t *testing.T) {
	tests := []struct {
		name      string
		mode      provider.Mode
		status    int
		body      string
		wantFatal bool
	}{
		{"in-process unauthorized", provider.InProcess, http.StatusUnauthorized, `{}`, true},
		{"in-process forbidden", provider.InProcess, http.StatusForbidden, `{}`, true},
		{"in-process unavailable", provider.InProcess, http.StatusServiceUnavailable, `{}`, false},
		{"in-process unusable bundle", provider.InProcess, http.StatusOK, `{"revision":{"number":1},"mode":"demo"}`, false},
		{"in-process not JSON", provider.InProcess, http.StatusOK, `<html>`, false},
		{"remote unauthorized", provider.Remote, http.StatusUnauthorized, `{}`, true},
		{"remote unavailable", provider.Remote, http.StatusServiceUnavailable, `{}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			p, err := provider.New(srv.URL, provider.WithMode(tt.mode), provider.WithToken("t"))
			if err != nil {
				t.Fatal(err)
			}
			err = openfeature.SetNamedProviderAndWait(t.Name(), p)
			var initErr *openfeature.ProviderInitError
			fatal := errors.As(err, &initErr) && initErr.ErrorCode == openfeature.ProviderFatalCode
			if err == nil || fatal != tt.wantFatal {
				t.Fatalf("Init = %v, want an error (fatal %v)", err, tt.wantFatal)
			}
		})
	}
}
