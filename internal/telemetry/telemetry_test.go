package telemetry

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/internal/server"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
)

const adminToken = "admin-token-for-telemetry-tests"

// cuttable is a store whose reads of the current revision fail while it
// is cut, as a store behind a dead link does.
type cuttable struct {
	store.Store
	cut atomic.Bool
}

func (s *cuttable) Current(ctx context.Context) (*switchyard.Revision, error) {
	if s.cut.Load() {
		return nil, switchyard.Errorf(switchyard.CodeUnavailable, "the store is cut off")
	}
	return s.Store.Current(ctx)
}

// clock moves only when told to.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// service is a demo server with metrics, over a store the test may cut.
type service struct {
	m       *Metrics
	store   *cuttable
	clock   *clock
	handler http.Handler
}

func newService(t *testing.T, o Options) *service {
	t.Helper()
	c := &clock{}
	c.ns.Store(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC).UnixNano())
	m := New(o)
	st := &cuttable{Store: m.Store(memory.NewDemo(memory.WithClock(c.now)), "memory")}
	logger := slog.New(slog.DiscardHandler)
	core := control.New(logger, control.Config{Now: c.now, Observer: m}, st)
	m.Watch(core)
	h := server.New(logger, core, server.Config{
		Auth:     server.NewAuthenticator([]server.Token{{Operator: switchyard.Operator{Name: "alice", Role: switchyard.RoleAdmin}, Secret: adminToken}}),
		Observer: m, Metrics: m.Handler(), Tracing: o.Tracing,
	})
	return &service{m: m, store: st, clock: c, handler: h}
}

// do sends one request and returns the status.
func (s *service) do(t *testing.T, method, path, body string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, "http://switchyard.test"+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	return rec
}

// scrape returns GET /metrics as Prometheus serves it.
func (s *service) scrape(t *testing.T) string {
	t.Helper()
	rec := s.do(t, http.MethodGet, "/metrics", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", rec.Code)
	}
	return rec.Body.String()
}

// sample returns the value of the series name{labels} in a scrape, where
// labels are name, value pairs, or -1 when the scrape has no such series.
func sample(t *testing.T, scrape, name string, labels ...string) float64 {
	t.Helper()
	for line := range strings.SplitSeq(scrape, "\n") {
		series, value, ok := strings.Cut(line, " ")
		if !ok || (series != name && !strings.HasPrefix(series, name+"{")) {
			continue
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains(series, labels[i]+`="`+labels[i+1]+`"`) {
				match = false
			}
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("series %s: value %q: %v", series, value, err)
		}
		return v
	}
	return -1
}

// TestMetricsAfterTraffic: after known traffic, /metrics says what
// happened: evaluations by flag and reason, a bulk evaluation answered
// 304, a refused change and an applied one, and the stale period while
// the store is cut, during which evaluations go on from the last known
// revision.
func TestMetricsAfterTraffic(t *testing.T) {
	s := newService(t, Options{FlagLabels: DefaultFlagLabels})
	eval := func(key string) int {
		return s.do(t, http.MethodPost, "/ofrep/v1/evaluate/flags/"+key, `{"context":{"targetingKey":"user-1"}}`).Code
	}
	if code := eval("module.mastery"); code != http.StatusOK {
		t.Fatalf("evaluate module.mastery = %d", code)
	}
	if code := eval("no-such-flag"); code != http.StatusNotFound {
		t.Fatalf("evaluate no-such-flag = %d", code)
	}
	bulk := s.do(t, http.MethodPost, "/ofrep/v1/evaluate/flags", `{"context":{}}`)
	if code := s.do(t, http.MethodPost, "/ofrep/v1/evaluate/flags", `{"context":{}}`, "If-None-Match", bulk.Header().Get("ETag")).Code; code != http.StatusNotModified {
		t.Fatalf("bulk evaluation with its ETag = %d", code)
	}
	change := func(phrase string) int {
		return s.do(t, http.MethodPost, "/v1/admin/system/exam-mode",
			`{"enabled": true, "phrase": "`+phrase+`", "reason": "metrics test"}`, "Authorization", "Bearer "+adminToken).Code
	}
	if code := change("PLEASE"); code != http.StatusBadRequest {
		t.Fatalf("change with a wrong phrase = %d", code)
	}
	if code := change("ENABLE EXAM MODE"); code != http.StatusOK {
		t.Fatalf("change = %d", code)
	}
	m := s.scrape(t)
	for _, tt := range []struct {
		name   string
		labels []string
		want   float64
	}{
		// One evaluation of its own, and one in each bulk evaluation.
		{"switchyard_evaluations_total", []string{"flag", "module.mastery", "reason", "STATIC", "pinned", "false"}, 3},
		{"switchyard_evaluations_total", []string{"flag", "other", "error_code", "FLAG_NOT_FOUND"}, 1},
		{"switchyard_http_requests_total", []string{"route", "/ofrep/v1/evaluate/flags", "code", "304"}, 1},
		{"switchyard_http_requests_total", []string{"route", "/ofrep/v1/evaluate/flags/:key", "method", "POST", "code", "404"}, 1},
		{"switchyard_changes_total", []string{"action", "set_flag", "outcome", "refused", "code", "PHRASE_MISMATCH"}, 1},
		{"switchyard_changes_total", []string{"action", "set_flag", "outcome", "applied"}, 1},
		{"switchyard_audit_appends_total", []string{"outcome", "rejected"}, 1},
		{"switchyard_audit_appends_total", []string{"outcome", "applied"}, 1},
		{"switchyard_revision", []string{"mode", "demo"}, 2},
		{"switchyard_revision_propagation_seconds_count", nil, 1},
		{"switchyard_system_flag", []string{"flag", "EXAM_MODE"}, 1},
		{"switchyard_system_mode", []string{"mode", "demo"}, 1},
		{"switchyard_serving_source", []string{"source", "store"}, 1},
		{"switchyard_store_calls_total", []string{"store", "memory", "operation", "apply", "outcome", "ok"}, 1},
	} {
		if got := sample(t, m, tt.name, tt.labels...); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}

	// The store is cut: once the cache TTL has passed, the reload fails
	// and evaluations go on from the last known revision, which the
	// scrape says.
	s.store.cut.Store(true)
	s.clock.advance(time.Minute)
	if code := eval("EXAM_MODE"); code != http.StatusOK {
		t.Fatalf("evaluate with the store cut = %d", code)
	}
	m = s.scrape(t)
	for source, want := range map[string]float64{"last_known": 1, "store": 0} {
		if got := sample(t, m, "switchyard_serving_source", "source", source); got != want {
			t.Errorf("serving_source{%s} with the store cut = %v, want %v", source, got, want)
		}
	}
	if got := sample(t, m, "switchyard_revision", "mode", "demo"); got != 2 {
		t.Errorf("revision served with the store cut = %v, want 2", got)
	}

	// The store answers again: the next reload recovers.
	s.store.cut.Store(false)
	s.clock.advance(time.Minute)
	eval("EXAM_MODE")
	m = s.scrape(t)
	if got := sample(t, m, "switchyard_serving_source", "source", "store"); got != 1 {
		t.Errorf("serving_source{store} once the store answers = %v, want 1", got)
	}
}

// TestFlagLabelsAreBounded: the runtime's own flags always have a label,
// general flags have one up to the limit, and every other key, made-up
// ones first of all, is counted as other.
func TestFlagLabelsAreBounded(t *testing.T) {
	m := New(Options{FlagLabels: 2})
	for _, key := range []string{"EXAM_MODE", "module.mastery", "checkout", "search-v2", "banner", "EXAM_MODE", "banner"} {
		m.Evaluated(key, evaluator.ReasonStatic, "", false)
	}
	for i := range 1000 {
		m.Evaluated("made-up-"+strconv.Itoa(i), evaluator.ReasonError, evaluator.FlagNotFound, false)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	scrape := rec.Body.String()
	for _, tt := range []struct {
		flag, code string
		want       float64
	}{
		{"EXAM_MODE", "", 2},
		{"module.mastery", "", 1},
		{"checkout", "", 1},
		{"search-v2", "", 1},
		{"banner", "", -1},
		{"other", "", 2},
		{"other", "FLAG_NOT_FOUND", 1000},
	} {
		if got := sample(t, scrape, "switchyard_evaluations_total", "flag", tt.flag, "error_code", tt.code); got != tt.want {
			t.Errorf("evaluations{flag=%q, error_code=%q} = %v, want %v", tt.flag, tt.code, got, tt.want)
		}
	}
	if n := strings.Count(scrape, "switchyard_evaluations_total{"); n != 6 {
		t.Errorf("%d evaluation series, want 6:\n%s", n, scrape)
	}
}

// TestUnknownMethodsAndRoutesAreBounded: a made-up method or path does not
// make a series of its own.
func TestUnknownMethodsAndRoutesAreBounded(t *testing.T) {
	s := newService(t, Options{})
	for i := range 50 {
		s.do(t, "BREW"+strconv.Itoa(i), "/ofrep/v1/evaluate/flags/x", "")
		s.do(t, http.MethodGet, "/random/"+strconv.Itoa(i), "")
	}
	m := s.scrape(t)
	if got := sample(t, m, "switchyard_http_requests_total", "route", "unmatched", "method", "other"); got != 50 {
		t.Errorf("requests with made-up methods = %v, want 50", got)
	}
	if got := sample(t, m, "switchyard_http_requests_total", "route", "unmatched", "method", "GET", "code", "404"); got != 50 {
		t.Errorf("requests to made-up paths = %v, want 50", got)
	}
}
