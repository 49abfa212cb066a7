package telemetry

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// The trace and parent span a caller sends in its traceparent header.
const (
	callerTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan   = "00f067aa0ba902b7"
	traceparent  = "00-" + callerTrace + "-" + callerSpan + "-01"
	evaluateSpan = "POST /ofrep/v1/evaluate/flags/:key"
)

// TestTraces: with tracing on, a request is a server span named after its
// route pattern, in the trace its caller's traceparent names; an
// evaluation is recorded on it as a feature_flag.evaluation event with the
// feature-flag semantic conventions; a change's store calls are spans
// inside its request's.
func TestTraces(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	s := newService(t, Options{Tracing: tp})

	if code := s.do(t, http.MethodPost, "/ofrep/v1/evaluate/flags/module.mastery", `{"context":{"targetingKey":"user-7"}}`, "traceparent", traceparent).Code; code != http.StatusOK {
		t.Fatalf("evaluate = %d", code)
	}
	if code := s.do(t, http.MethodPost, "/ofrep/v1/evaluate/flags/nope", `{"context":{}}`).Code; code != http.StatusNotFound {
		t.Fatalf("evaluate an unknown flag = %d", code)
	}
	if code := s.do(t, http.MethodPost, "/v1/admin/system/exam-mode", `{"enabled": true, "phrase": "ENABLE EXAM MODE", "reason": "trace test"}`,
		"Authorization", "Bearer "+adminToken).Code; code != http.StatusOK {
		t.Fatalf("change = %d", code)
	}

	spans := rec.Ended()
	named := func(name string) []sdktrace.ReadOnlySpan {
		var out []sdktrace.ReadOnlySpan
		for _, s := range spans {
			if s.Name() == name {
				out = append(out, s)
			}
		}
		return out
	}
	evals := named(evaluateSpan)
	if len(evals) != 2 {
		t.Fatalf("%d spans named %q, want 2; spans: %v", len(evals), evaluateSpan, names(spans))
	}
	ev := evals[0]
	if got := ev.SpanContext().TraceID().String(); got != callerTrace {
		t.Errorf("evaluation span's trace = %s, want the caller's %s", got, callerTrace)
	}
	if got := ev.Parent().SpanID().String(); got != callerSpan {
		t.Errorf("evaluation span's parent = %s, want the caller's span %s", got, callerSpan)
	}
	wantAttrs(t, "evaluation span", ev.Attributes(), map[string]string{
		"http.request.method": "POST", "http.route": "/ofrep/v1/evaluate/flags/:key", "http.response.status_code": "200",
	})
	if len(ev.Events()) != 1 || ev.Events()[0].Name != "feature_flag.evaluation" {
		t.Fatalf("evaluation span's events = %v, want one feature_flag.evaluation", ev.Events())
	}
	wantAttrs(t, "evaluation event", ev.Events()[0].Attributes, map[string]string{
		"feature_flag.key": "module.mastery", "feature_flag.result.variant": "v1", "feature_flag.result.reason": "static",
		"feature_flag.provider.name": "switchyard", "feature_flag.context.id": "user-7", "feature_flag.version": "1",
	})
	if evals[1].SpanContext().TraceID().String() == callerTrace {
		t.Error("a request without traceparent joined the caller's trace")
	}
	wantAttrs(t, "failed evaluation event", evals[1].Events()[0].Attributes, map[string]string{
		"feature_flag.key": "nope", "feature_flag.result.reason": "error", "error.type": "flag_not_found",
	})

	changes := named("POST /v1/admin/system/exam-mode")
	applies := named("memory apply")
	if len(changes) != 1 || len(applies) != 1 {
		t.Fatalf("spans: %v; want one change and one memory apply", names(spans))
	}
	if applies[0].Parent().SpanID() != changes[0].SpanContext().SpanID() {
		t.Error("the store's apply span is not a child of its request's span")
	}
	wantAttrs(t, "change span", changes[0].Attributes(), map[string]string{"http.response.status_code": "200"})
}

// TestTracingOffByDefault: without OTEL_* variables there is no tracer
// provider; the variables turn it on, and an unsupported exporter or
// protocol is refused rather than ignored.
func TestTracingOffByDefault(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tt := range []struct {
		name    string
		env     map[string]string
		on      bool
		wantErr bool
	}{
		{"nothing set", nil, false, false},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true, false},
		{"traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true, false},
		{"disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}, false, false},
		{"exporter none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"}, false, false},
		{"zipkin", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, false, true},
		{"grpc", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tp, err := Tracing(context.Background(), func(k string) string { return tt.env[k] }, logger)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want one: %v", err, tt.wantErr)
			}
			if (tp != nil) != tt.on {
				t.Fatalf("tracing on = %v, want %v", tp != nil, tt.on)
			}
			if tp != nil {
				_ = tp.Shutdown(context.Background())
			}
		})
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

// wantAttrs checks that attrs hold want, each value as its string.
func wantAttrs(t *testing.T, what string, attrs []attribute.KeyValue, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, kv := range attrs {
		got[string(kv.Key)] = kv.Value.Emit()
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %q, want %q (all: %v)", what, k, got[k], v, got)
		}
	}
}
