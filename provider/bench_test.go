package provider_test

import (
	"context"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/memprovider"

	"github.com/switchyard-dev/switchyard/provider"
	"github.com/switchyard-dev/switchyard/store/memory"
)

// BenchmarkProvider measures in-process evaluations at the provider level,
// where a pinned session's boolean flag should cost no allocation.
func BenchmarkProvider(b *testing.B) {
	ts := newTestServer(b, memory.NewDemo())
	p, err := provider.New(ts.url)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := p.InitWithContext(ctx, openfeature.EvaluationContext{}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Shutdown)
	if err := p.StartSession(ctx, "s-bench", "u-1"); err != nil {
		b.Fatal(err)
	}
	pinned := openfeature.FlattenedContext{provider.SessionIDKey: "s-bench", openfeature.TargetingKey: "u-1"}
	live := openfeature.FlattenedContext{openfeature.TargetingKey: "u-1"}
	b.Run("pinned boolean", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if d := p.BooleanEvaluation(ctx, "EXAM_MODE", true, pinned); d.Value {
				b.Fatal(d)
			}
		}
	})
	b.Run("live boolean", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if d := p.BooleanEvaluation(ctx, "EXAM_MODE", true, live); d.Value {
				b.Fatal(d)
			}
		}
	})
	remote, err := provider.New(ts.url, provider.WithMode(provider.Remote))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("remote pinned boolean", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if d := remote.BooleanEvaluation(ctx, "EXAM_MODE", true, pinned); d.Value {
				b.Fatal(d)
			}
		}
	})
	b.Run("pinned string", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if d := p.StringEvaluation(ctx, "module.mastery", "", pinned); d.Value != "v1" {
				b.Fatal(d)
			}
		}
	})
}

// BenchmarkClient compares a pinned boolean through the SDK client, our
// provider against the SDK's in-memory provider (the floor of the SDK's
// own cost), bare and returning the same flag metadata ours does: the SDK
// clones a result's metadata on every evaluation.
func BenchmarkClient(b *testing.B) {
	ts := newTestServer(b, memory.NewDemo())
	p, err := provider.New(ts.url)
	if err != nil {
		b.Fatal(err)
	}
	mem := memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{"EXAM_MODE": {
		Key: "EXAM_MODE", State: memprovider.Enabled, DefaultVariant: "off", Variants: map[string]any{"on": true, "off": false}}})
	b.Cleanup(p.Shutdown)
	withMetadata := func(flag memprovider.InMemoryFlag, _ openfeature.FlattenedContext) (any, openfeature.ProviderResolutionDetail) {
		return false, openfeature.ProviderResolutionDetail{Reason: openfeature.StaticReason, Variant: "off",
			FlagMetadata: openfeature.FlagMetadata{"revision": int64(1), "pinned": true}}
	}
	memMD := memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{"EXAM_MODE": {
		Key: "EXAM_MODE", State: memprovider.Enabled, DefaultVariant: "off", Variants: map[string]any{"on": true, "off": false},
		ContextEvaluator: &withMetadata}})
	ctx := context.Background()
	evalCtx := openfeature.NewEvaluationContext("u-1", map[string]any{provider.SessionIDKey: "s-bench"})
	for _, tt := range []struct {
		name string
		p    openfeature.FeatureProvider
	}{{"switchyard", p}, {"memprovider", mem}, {"memprovider with metadata", memMD}} {
		if err := openfeature.SetNamedProviderAndWait("bench-"+tt.name, tt.p); err != nil {
			b.Fatal(err)
		}
		c := openfeature.NewClient("bench-" + tt.name)
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if v, err := c.BooleanValue(ctx, "EXAM_MODE", true, evalCtx); v || err != nil {
					b.Fatal(v, err)
				}
			}
		})
	}
}
