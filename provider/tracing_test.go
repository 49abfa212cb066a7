package provider_test

import (
	"context"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/switchyard-dev/switchyard/provider"
	"github.com/switchyard-dev/switchyard/store/memory"
)

// TestTracingHook: with the hook, each evaluation an application makes
// inside a span is recorded on it as a feature_flag.evaluation event
// with the feature-flag semantic conventions, in both modes.
func TestTracingHook(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			_, c := newClient(t, newTestServer(t, memory.NewDemo()), provider.WithMode(m.mode))
			c.AddHooks(provider.TracingHook())
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			defer tp.Shutdown(context.Background())

			ctx, span := tp.Tracer("test").Start(context.Background(), "handle request")
			user := openfeature.NewEvaluationContext("user-9", nil)
			if v, _ := c.StringValue(ctx, "module.mastery", "v0", user); v != "v1" {
				t.Fatalf("module.mastery = %q, want v1", v)
			}
			c.BooleanValue(ctx, "no-such-flag", false, user)
			span.End()

			ended := rec.Ended()
			if len(ended) != 1 || len(ended[0].Events()) != 2 {
				t.Fatalf("spans %v; want one with two evaluation events", ended)
			}
			for i, want := range []map[string]string{
				{"feature_flag.key": "module.mastery", "feature_flag.result.variant": "v1", "feature_flag.result.reason": "static",
					"feature_flag.provider.name": "switchyard", "feature_flag.context.id": "user-9", "feature_flag.version": "1"},
				{"feature_flag.key": "no-such-flag", "feature_flag.result.reason": "error", "error.type": "flag_not_found"},
			} {
				ev := ended[0].Events()[i]
				got := map[string]string{}
				for _, kv := range ev.Attributes {
					got[string(kv.Key)] = kv.Value.Emit()
				}
				if ev.Name != "feature_flag.evaluation" {
					t.Errorf("event %d is %q", i, ev.Name)
				}
				for k, v := range want {
					if got[k] != v {
						t.Errorf("event %d: %s = %q, want %q (all: %v)", i, k, got[k], v, got)
					}
				}
			}
		})
	}
}
