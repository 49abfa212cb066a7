package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/gin-gonic/gin"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/openapi"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
	"github.com/switchyard-dev/switchyard/store/storetest"
)

// The tokens every harness server accepts.
const (
	adminToken  = "admin-token-for-tests"
	viewerToken = "viewer-token-for-tests"
	// adminName and viewerName are the operators the tokens name, as the
	// audit log gives them.
	adminName  = "alice"
	viewerName = "victor"
)

// spec is the parsed, validated openapi.yaml and a router over it, shared by
// every test.
var spec = sync.OnceValues(func() (routers.Router, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openapi.Spec)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	return gorillamux.NewRouter(doc)
})

var validation = &openapi3filter.Options{
	AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
	IncludeResponseStatus: true,
	MultiError:            true,
}

// clock is a test clock that moves only when told to.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// pause moves the clock on by a refusal interval, as time passes between
// a person's attempts, so a test making many refusals with one token stays
// within its allowance (control.RefusalBurst).
func (c *clock) pause() { c.advance(control.RefusalInterval) }

// faultyStore is a real store with switchable faults, to show what users
// see when the store is down or broken.
type faultyStore struct {
	store.Store
	down   atomic.Bool
	panics atomic.Bool
	// hang makes Current wait for its caller to give up, as a database
	// that does not answer does, once it has said so on hung.
	hang atomic.Bool
	hung chan struct{}
}

func (f *faultyStore) Current(ctx context.Context) (*switchyard.Revision, error) {
	if f.panics.Load() {
		panic("store bug")
	}
	if f.hang.Load() {
		select {
		case f.hung <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return nil, switchyard.Errorf(switchyard.CodeUnavailable, "read the current revision: the database is unavailable: %v", ctx.Err())
	}
	if f.down.Load() {
		return nil, switchyard.Errorf(switchyard.CodeUnavailable, "the store is down")
	}
	return f.Store.Current(ctx)
}

// Apply refuses every change while the store is down, as a store that did
// not answer before anything was written does.
func (f *faultyStore) Apply(ctx context.Context, c store.Change) (*switchyard.Revision, store.AuditEntry, error) {
	if f.down.Load() {
		return nil, store.AuditEntry{}, switchyard.Errorf(switchyard.CodeUnavailable, "the store is down; the change was not applied")
	}
	return f.Store.Apply(ctx, c)
}

// harness is a server over a fresh demo store, with a test clock.
type harness struct {
	store   *faultyStore
	clock   *clock
	logs    *storetest.LogBuffer
	handler http.Handler
}

type option func(*testConfig)

// testConfig is what a test sets: the core's settings and the server's.
type testConfig struct {
	control.Config
	Tokens         []Token
	MaxBodyBytes   int64
	Heartbeat      time.Duration
	TrustedProxies []string
	// Telemetry holds the server's observer, metrics, tracing and access
	// log settings; the fields above are the rest of its Config.
	Telemetry Config
	// RequireClientToken and the CORS origins are Config's.
	RequireClientToken bool
	CORSOrigins        []string
	CORSAdminOrigins   []string
}

// newHandler builds the core over st with the clock now, and the server
// over it.
func newHandler(logger *slog.Logger, cfg testConfig, st store.Store, now func() time.Time) *gin.Engine {
	cfg.Now = now
	srv := cfg.Telemetry
	srv.Auth, srv.MaxBodyBytes, srv.Heartbeat, srv.TrustedProxies = NewAuthenticator(cfg.Tokens), cfg.MaxBodyBytes, cfg.Heartbeat, cfg.TrustedProxies
	srv.RequireClientToken, srv.CORSOrigins, srv.CORSAdminOrigins = cfg.RequireClientToken, cfg.CORSOrigins, cfg.CORSAdminOrigins
	return newEngine(logger, control.New(logger, cfg.Config, st), srv)
}

func newHarness(t testing.TB, opts ...option) *harness {
	t.Helper()
	h := newStore(t)
	h.start(opts...)
	return h
}

// newStore is a harness over a fresh demo memory store whose server is not
// started yet, so a test can prepare the store (or break it) first.
func newStore(t testing.TB) *harness {
	t.Helper()
	c := newClock()
	return newStoreWith(t, c, memory.NewDemo(memory.WithClock(c.now)))
}

// newStoreWith is newStore over st, whose clock is c.
func newStoreWith(t testing.TB, c *clock, st store.Store) *harness {
	t.Helper()
	if _, err := spec(); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	return &harness{clock: c, logs: &storetest.LogBuffer{}, store: &faultyStore{Store: st, hung: make(chan struct{}, 1)}}
}

// start starts the server over the harness's store.
func (h *harness) start(opts ...option) {
	cfg := testConfig{
		Config: control.Config{Mode: "demo"},
		Tokens: []Token{
			{Operator: switchyard.Operator{Name: adminName, Role: switchyard.RoleAdmin}, Secret: adminToken},
			{Operator: switchyard.Operator{Name: viewerName, Role: switchyard.RoleViewer}, Secret: viewerToken},
		},
	}
	for _, o := range opts {
		o(&cfg)
	}
	h.handler = newHandler(slog.New(slog.NewTextHandler(h.logs, nil)), cfg, h.store, h.clock.now)
}

// serve sends a request straight to the handler, for the few requests no
// spec describes (an unknown route).
func serve(h *harness, method, path, body string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, httptest.NewRequest(method, "http://switchyard.test"+path, strings.NewReader(body)))
	return rec
}

// call is one HTTP request of a test.
type call struct {
	method string
	path   string
	body   string
	token  string
	header map[string]string
	// remoteAddr is the client's address (host:port); httptest's
	// 192.0.2.1:1234 when empty.
	remoteAddr string
	// breaksSpec marks a request that violates openapi.yaml on purpose; the
	// validator must then refuse it too.
	breaksSpec bool
}

// response is what the server answered.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body as a JSON object.
func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

// errorCode returns the code of an error in the API's error shape.
func (r response) errorCode(t testing.TB) string {
	t.Helper()
	e, ok := r.json(t)["error"].(map[string]any)
	if !ok {
		t.Fatalf("response %d %s has no error object", r.status, r.body)
	}
	code, _ := e["code"].(string)
	return code
}

// do sends c through the handler. The request is validated against
// openapi.yaml before it is served and the response after, so every test
// also proves the spec describes what the server does.
func (h *harness) do(t testing.TB, c call) response {
	t.Helper()
	res, err := h.send(c)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// send is do for goroutines, which must not call t.Fatal: it returns what
// went wrong instead.
func (h *harness) send(c call) (response, error) {
	req := httptest.NewRequest(c.method, "http://switchyard.test"+c.path, strings.NewReader(c.body))
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	if c.remoteAddr != "" {
		req.RemoteAddr = c.remoteAddr
	}

	router, _ := spec()
	route, params, err := router.FindRoute(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s is not in openapi.yaml: %w", c.method, c.path, err)
	}
	ctx := context.Background()
	vreq := req.Clone(ctx)
	vreq.Body = io.NopCloser(strings.NewReader(c.body))
	input := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: validation}
	err = openapi3filter.ValidateRequest(ctx, input)
	switch {
	case err != nil && !c.breaksSpec:
		return response{}, fmt.Errorf("%s %s: request does not match openapi.yaml: %w", c.method, c.path, err)
	case err == nil && c.breaksSpec:
		return response{}, fmt.Errorf("%s %s: request is marked as breaking openapi.yaml, but the spec accepts it", c.method, c.path)
	}

	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	res := response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	if err := openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
		RequestValidationInput: input,
		Status:                 res.status,
		Header:                 res.header,
		Body:                   io.NopCloser(bytes.NewReader(res.body)),
		Options:                validation,
	}); err != nil {
		return response{}, fmt.Errorf("%s %s: response %d %s does not match openapi.yaml: %w", c.method, c.path, res.status, res.body, err)
	}
	if res.header.Get(headerRequestID) == "" {
		return response{}, fmt.Errorf("%s %s: response has no X-Request-Id", c.method, c.path)
	}
	return res, nil
}

// mustJSON encodes v for a request body.
func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// evaluate evaluates one flag over OFREP and fails unless it succeeds.
func (h *harness) evaluate(t testing.TB, key string, evalCtx map[string]any) map[string]any {
	t.Helper()
	if evalCtx == nil {
		evalCtx = map[string]any{}
	}
	res := h.do(t, call{method: "POST", path: "/ofrep/v1/evaluate/flags/" + key, body: mustJSON(t, map[string]any{"context": evalCtx})})
	if res.status != http.StatusOK {
		t.Fatalf("evaluate %s: %d %s", key, res.status, res.body)
	}
	return res.json(t)
}

// admin sends an admin change and fails unless it is applied.
func (h *harness) admin(t testing.TB, method, path string, body map[string]any) map[string]any {
	t.Helper()
	res := h.do(t, call{method: method, path: path, body: mustJSON(t, body), token: adminToken})
	if res.status != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, path, res.status, res.body)
	}
	return res.json(t)
}

// audit returns the whole audit log, newest first, read from the store.
func (h *harness) audit(t testing.TB) []store.AuditEntry {
	t.Helper()
	entries, err := h.store.Audit(context.Background(), store.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// current returns the store's current revision.
func (h *harness) current(t testing.TB) *switchyard.Revision {
	t.Helper()
	rev, err := h.store.Current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rev
}
