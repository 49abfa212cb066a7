package provider

import (
	"context"
	"strconv"
	"strings"

	"github.com/open-feature/go-sdk/openfeature"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-dev/switchyard/evaluator"
)

// TracingHook returns an OpenFeature hook that records every evaluation on
// the span of the context it is made with, as a feature_flag.evaluation
// event with OpenTelemetry's feature-flag semantic conventions
// (feature_flag.key, feature_flag.result.variant, feature_flag.result.reason,
// feature_flag.provider.name, feature_flag.context.id, feature_flag.version
// = the revision, error.type), as the server records the evaluations it
// serves. Add it with openfeature.AddHooks or a client's AddHooks; it works
// with any provider, and costs nothing when the span does not record.
func TracingHook() openfeature.Hook { return tracingHook{} }

type tracingHook struct{ openfeature.UnimplementedHook }

// Finally records the evaluation, whatever its outcome.
func (tracingHook) Finally(ctx context.Context, hc openfeature.HookContext, d openfeature.InterfaceEvaluationDetails, _ openfeature.HookHints) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	attrs := []attribute.KeyValue{
		semconv.FeatureFlagKey(hc.FlagKey()),
		semconv.FeatureFlagProviderName(hc.ProviderMetadata().Name),
		semconv.FeatureFlagResultReasonKey.String(strings.ToLower(string(d.Reason))),
	}
	if d.Variant != "" {
		attrs = append(attrs, semconv.FeatureFlagResultVariant(d.Variant))
	}
	if id := hc.EvaluationContext().TargetingKey(); id != "" {
		attrs = append(attrs, semconv.FeatureFlagContextID(id))
	}
	if rev, err := d.FlagMetadata.GetInt(evaluator.MetadataRevision); err == nil {
		attrs = append(attrs, semconv.FeatureFlagVersion(strconv.FormatInt(rev, 10)))
	}
	if d.ErrorCode != "" {
		attrs = append(attrs, semconv.ErrorTypeKey.String(strings.ToLower(string(d.ErrorCode))),
			semconv.FeatureFlagErrorMessage(d.ErrorMessage))
	}
	span.AddEvent("feature_flag.evaluation", trace.WithAttributes(attrs...))
}
