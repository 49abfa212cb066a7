// Package telemetry exports what Switchyard does: Prometheus metrics and
// OpenTelemetry traces. The core (internal/control) and the transport
// (internal/server) know nothing of either: they call small observer
// interfaces of their own, which Metrics implements, and the core's state
// is read when Prometheus scrapes, never pushed on the path of a request.
// A store call becomes a metric and a span through the store wrapper
// (Metrics.Store) and the Redis hook (Metrics.RedisHook).
package telemetry

import (
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/internal/control"
)

// namespace prefixes every metric of Switchyard's own.
const namespace = "switchyard"

// DefaultFlagLabels is how many general flags get a label of their own in
// switchyard_evaluations_total unless Options says otherwise.
const DefaultFlagLabels = 50

// otherLabel stands for every flag, route or method without a label of
// its own, so what a caller sends cannot grow the number of series.
const otherLabel = "other"

// Options configures New.
type Options struct {
	// FlagLabels is how many general flags get a label of their own in
	// switchyard_evaluations_total: the first ones evaluated that exist.
	// The runtime's own flags always have one; every other key is counted
	// as "other".
	FlagLabels int
	// Tracing provides the tracer of store calls; nil: no spans.
	Tracing trace.TracerProvider
}

// Metrics is Switchyard's Prometheus registry and what feeds it. It
// implements control.Observer and the server's observer; its methods are
// safe for concurrent use, and those called per request do not allocate
// once the series they touch exists.
type Metrics struct {
	reg    *prometheus.Registry
	tracer trace.Tracer

	evaluations   *evaluations
	requests      *requests
	streams       prometheus.Gauge
	propagation   prometheus.Histogram
	announcements *prometheus.CounterVec
	changes       *prometheus.CounterVec
	audit         *prometheus.CounterVec
	storeCalls    *prometheus.CounterVec
	storeSeconds  *prometheus.HistogramVec
	// own lists Switchyard's own collectors, every one of which the
	// README's Monitoring section lists (a test checks).
	own []prometheus.Collector

	// serving reads the core's state at scrape time; nil until Watch.
	serving atomic.Pointer[servingSource]
	// pools reads the connection pools of the production store open now.
	pools atomic.Pointer[poolSources]
	// poolsMu orders WatchPools and its undo.
	poolsMu sync.Mutex
}

var _ control.Observer = (*Metrics)(nil)

// New returns the metrics, registered with the Go runtime's and the
// process's own.
func New(o Options) *Metrics {
	tp := o.Tracing
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	m := &Metrics{
		reg:    prometheus.NewRegistry(),
		tracer: tp.Tracer("github.com/switchyard-dev/switchyard/internal/telemetry"),
		evaluations: newEvaluations(prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "evaluations_total",
			Help: "Flag evaluations served over OFREP (each flag of a bulk evaluation counts), by flag, reason, error code and whether a session's pin served them. " +
				`Flags beyond the runtime's own and the first general ones are counted as flag="other".`,
		}, []string{"flag", "reason", "error_code", "pinned"}), o.FlagLabels),
		requests: newRequests(
			prometheus.NewCounterVec(prometheus.CounterOpts{
				Namespace: namespace, Name: "http_requests_total",
				Help: "HTTP requests answered, by route pattern, method and status code.",
			}, []string{"route", "method", "code"}),
			prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Namespace: namespace, Name: "http_request_duration_seconds",
				Help:    "Time to answer an HTTP request, by route pattern and method; a stream counts when it ends.",
				Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
			}, []string{"route", "method"})),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "streams_open",
			Help: "Open /v1/stream connections (server-sent events to in-process providers and web clients).",
		}),
		propagation: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "revision_propagation_seconds",
			Help: "Time from a revision's commit to its installation on this replica, for every revision it installs. " +
				"Replicas' clocks must agree for it to mean anything across them.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		announcements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "announcements_total",
			Help: "Revision announcements received, by channel: notify (Postgres LISTEN/NOTIFY), pubsub (the Redis channel), poll (the shared version key showed a newer revision).",
		}, []string{"channel"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "changes_total",
			Help: "Admin changes answered, by action, outcome (applied, refused, or unknown when the store could not say) and the refusal's code.",
		}, []string{"action", "outcome", "code"}),
		audit: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "audit_appends_total",
			Help: "Entries this replica appended to the audit log, by outcome (applied or rejected).",
		}, []string{"outcome"}),
		storeCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "store_calls_total",
			Help: "Calls to a store (memory, postgres, redis), by operation and outcome (ok, miss, not_found, error).",
		}, []string{"store", "operation", "outcome"}),
		storeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "store_call_duration_seconds",
			Help:    "Time a store call took, by store and operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"store", "operation"}),
	}
	m.own = []prometheus.Collector{
		m.evaluations.vec, m.requests.count, m.requests.seconds, m.streams, m.propagation,
		m.announcements, m.changes, m.audit, m.storeCalls, m.storeSeconds,
		servingCollector{m}, poolCollector{m},
	}
	m.reg.MustRegister(m.own...)
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in Prometheus' text format, for GET /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Evaluated implements control.Observer.
func (m *Metrics) Evaluated(key string, reason evaluator.Reason, code evaluator.ResolutionError, pinned bool) {
	m.evaluations.inc(key, reason, code, pinned)
}

// Installed implements control.Observer: the revision's commit time to its
// installation is its propagation; a clock behind the committer's counts 0.
func (m *Metrics) Installed(rev *switchyard.Revision, at time.Time) {
	m.propagation.Observe(max(at.Sub(rev.CreatedAt).Seconds(), 0))
}

// Changed implements control.Observer.
func (m *Metrics) Changed(action string, code switchyard.Code) {
	outcome := "refused"
	switch code {
	case "":
		outcome = "applied"
	case switchyard.CodeOutcomeUnknown:
		outcome = "unknown"
	}
	m.changes.WithLabelValues(action, outcome, string(code)).Inc()
}

// Audited implements control.Observer.
func (m *Metrics) Audited(outcome string) { m.audit.WithLabelValues(outcome).Inc() }

// Announced counts a revision announcement received on channel: notify,
// pubsub or poll.
func (m *Metrics) Announced(channel string) { m.announcements.WithLabelValues(channel).Inc() }

// Served counts one HTTP request: route is the pattern it matched ("" for
// none).
func (m *Metrics) Served(route, method string, status int, elapsed time.Duration) {
	m.requests.observe(route, method, status, elapsed)
}

// StreamOpened counts a stream opened; StreamClosed counts it closed.
func (m *Metrics) StreamOpened() { m.streams.Inc() }

// StreamClosed counts a stream closed.
func (m *Metrics) StreamClosed() { m.streams.Dec() }

// evaluations counts evaluations by flag, reason, error code and pinned.
// Its counters are found through an immutable map swapped whole when a
// series is added, so counting an evaluation takes two map lookups and an
// atomic add: no lock, no allocation.
type evaluations struct {
	vec *prometheus.CounterVec
	// limit bounds the general flags given a label of their own.
	limit int
	state atomic.Pointer[evalState]
	// mu orders the writers of state.
	mu sync.Mutex
}

type evalState struct {
	counters map[evalKey]prometheus.Counter
	// labeled holds the flags with a label of their own; general counts
	// the general flags among them.
	labeled map[string]bool
	general int
}

type evalKey struct {
	flag   string
	reason evaluator.Reason
	code   evaluator.ResolutionError
	pinned bool
}

func newEvaluations(vec *prometheus.CounterVec, limit int) *evaluations {
	e := &evaluations{vec: vec, limit: limit}
	e.state.Store(&evalState{counters: map[evalKey]prometheus.Counter{}, labeled: map[string]bool{}})
	return e
}

func (e *evaluations) inc(key string, reason evaluator.Reason, code evaluator.ResolutionError, pinned bool) {
	s := e.state.Load()
	k := evalKey{flag: key, reason: reason, code: code, pinned: pinned}
	if !s.labeled[key] {
		if e.mayLabel(s, key, code) {
			e.add(k, true).Inc()
			return
		}
		k.flag = otherLabel
	}
	if c, ok := s.counters[k]; ok {
		c.Inc()
		return
	}
	e.add(k, false).Inc()
}

// mayLabel says whether key, not labeled yet, may get a label of its own:
// it names a flag that exists (a caller asking for made-up keys gets
// FLAG_NOT_FOUND), and it is one of the runtime's own, or a general flag
// while fewer than the limit have a label.
func (e *evaluations) mayLabel(s *evalState, key string, code evaluator.ResolutionError) bool {
	if code == evaluator.FlagNotFound || key == otherLabel {
		return false
	}
	return switchyard.IsRuntimeFlagKey(key) || s.general < e.limit
}

// add returns the counter of k, adding its series (and, with label set,
// k.flag's label) when it is new.
func (e *evaluations) add(k evalKey, label bool) prometheus.Counter {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.state.Load()
	if label && !s.labeled[k.flag] {
		if !e.mayLabel(s, k.flag, k.code) {
			k.flag = otherLabel
		} else {
			next := &evalState{counters: s.counters, labeled: maps.Clone(s.labeled), general: s.general}
			next.labeled[strings.Clone(k.flag)] = true
			if !switchyard.IsRuntimeFlagKey(k.flag) {
				next.general++
			}
			s = next
			e.state.Store(s)
		}
	}
	if c, ok := s.counters[k]; ok {
		return c
	}
	// The key may point into a request's memory, which the map outlives.
	k.flag = strings.Clone(k.flag)
	c := e.vec.WithLabelValues(k.flag, string(k.reason), string(k.code), strconv.FormatBool(k.pinned))
	next := *s
	next.counters = maps.Clone(s.counters)
	next.counters[k] = c
	e.state.Store(&next)
	return c
}

// requests counts HTTP requests by route, method and status, and times
// them by route and method, through an immutable map like evaluations'.
type requests struct {
	count   *prometheus.CounterVec
	seconds *prometheus.HistogramVec
	series  atomic.Pointer[map[requestKey]requestSeries]
	mu      sync.Mutex
}

type requestKey struct {
	route, method string
	status        int
}

type requestSeries struct {
	count   prometheus.Counter
	seconds prometheus.Observer
}

func newRequests(count *prometheus.CounterVec, seconds *prometheus.HistogramVec) *requests {
	r := &requests{count: count, seconds: seconds}
	r.series.Store(&map[requestKey]requestSeries{})
	return r
}

// knownMethods are the methods with a label of their own; the routes are
// the server's, a fixed set, and the statuses the server's own.
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodDelete: true, http.MethodPatch: true, http.MethodOptions: true,
}

func (r *requests) observe(route, method string, status int, elapsed time.Duration) {
	if !knownMethods[method] {
		method = otherLabel
	}
	k := requestKey{route: route, method: method, status: status}
	s, ok := (*r.series.Load())[k]
	if !ok {
		s = r.add(k)
	}
	s.count.Inc()
	s.seconds.Observe(elapsed.Seconds())
}

func (r *requests) add(k requestKey) requestSeries {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := *r.series.Load()
	if s, ok := cur[k]; ok {
		return s
	}
	k.route = strings.Clone(k.route)
	route := k.route
	if route == "" {
		route = "unmatched"
	}
	s := requestSeries{
		count:   r.count.WithLabelValues(route, k.method, strconv.Itoa(k.status)),
		seconds: r.seconds.WithLabelValues(route, k.method),
	}
	next := maps.Clone(cur)
	next[k] = s
	r.series.Store(&next)
	return s
}
