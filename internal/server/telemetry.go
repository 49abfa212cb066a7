package server

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-dev/switchyard/evaluator"
)

// Observer hears of every request the server answers, for metrics;
// switchyard serve gives it the telemetry package's. Served runs on every
// request and must neither block nor allocate.
type Observer interface {
	// Served hears of a request answered: the route pattern it matched
	// ("" when none did), its method, status and how long it took.
	Served(route, method string, status int, elapsed time.Duration)
	// StreamOpened and StreamClosed hear of each /v1/stream.
	StreamOpened()
	StreamClosed()
}

// observe reports every request to the observer and, with the access log
// on, logs it once answered. It is installed only when one of them is.
func (s *server) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	elapsed := time.Since(start)
	if s.observer != nil {
		s.observer.Served(c.FullPath(), c.Request.Method, c.Writer.Status(), elapsed)
	}
	if s.accessLog {
		attrs := []slog.Attr{
			slog.String("method", c.Request.Method), slog.String("path", c.Request.URL.Path),
			slog.String("route", c.FullPath()), slog.Int("status", c.Writer.Status()),
			slog.Duration("duration", elapsed), slog.Int("bytes", max(c.Writer.Size(), 0)),
			slog.String("client", c.ClientIP()), slog.String("request_id", requestID(c)),
		}
		if who := operatorOf(c); who.Name != "" {
			attrs = append(attrs, slog.String("actor", who.Name))
		}
		s.logger.LogAttrs(c.Request.Context(), slog.LevelInfo, "request", attrs...)
	}
}

// targetingKey is OpenFeature's context attribute naming who is
// evaluated, and providerName names Switchyard as the provider of an
// evaluation, as the Go provider's metadata does.
const (
	targetingKey = "targetingKey"
	providerName = "switchyard"
)

// propagator reads the trace context (W3C traceparent, tracestate and
// baggage) a caller sends.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// traceRequests gives every request a server span named after its method
// and route pattern (HTTP when it matched none, so a made-up path or
// method names no span), a child of the caller's trace when it sends one.
// The core's store calls are its children. It is installed only when
// tracing is on: it allocates.
func (s *server) traceRequests(c *gin.Context) {
	ctx := propagator.Extract(c.Request.Context(), propagation.HeaderCarrier(c.Request.Header))
	route, method := c.FullPath(), c.Request.Method
	name := "HTTP"
	if route != "" {
		name = method + " " + route
	}
	ctx, span := s.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		semconv.HTTPRequestMethodKey.String(method), semconv.URLPath(c.Request.URL.Path),
		attribute.String("switchyard.request_id", requestID(c))))
	defer span.End()
	if route != "" {
		span.SetAttributes(semconv.HTTPRoute(route))
	}
	c.Request = c.Request.WithContext(ctx)
	c.Next()
	status := c.Writer.Status()
	span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	if who := operatorOf(c); who.Name != "" {
		span.SetAttributes(attribute.String("switchyard.actor", who.Name))
	}
	if status >= http.StatusInternalServerError {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
}

// maxEvaluationEvents bounds the evaluation events of one span: a bulk
// evaluation of thousands of flags records the first ones.
const maxEvaluationEvents = 128

// traceEvaluation records r, evaluated at revision, on span as a
// feature_flag.evaluation event with OpenTelemetry's feature-flag semantic
// conventions. A span that is not recording (tracing off) costs nothing.
func traceEvaluation(span trace.Span, r evaluator.Result, evalCtx map[string]any, revision int64) {
	if !span.IsRecording() {
		return
	}
	attrs := []attribute.KeyValue{
		semconv.FeatureFlagKey(r.Key),
		semconv.FeatureFlagProviderName(providerName),
		semconv.FeatureFlagResultReasonKey.String(strings.ToLower(string(r.Reason))),
		semconv.FeatureFlagVersion(strconv.FormatInt(revision, 10)),
	}
	if r.Variant != "" {
		attrs = append(attrs, semconv.FeatureFlagResultVariant(r.Variant))
	}
	if id, ok := evalCtx[targetingKey].(string); ok && id != "" {
		attrs = append(attrs, semconv.FeatureFlagContextID(id))
	}
	if r.ErrorCode != "" {
		attrs = append(attrs, semconv.ErrorTypeKey.String(strings.ToLower(string(r.ErrorCode))),
			semconv.FeatureFlagErrorMessage(r.ErrorMessage))
	}
	span.AddEvent("feature_flag.evaluation", trace.WithAttributes(attrs...))
}
