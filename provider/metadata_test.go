package provider_test

import (
	"context"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-dev/switchyard/provider"
)

// A result's metadata belongs to the caller: parts of the SDK (the
// multi-provider's strategies) write into it, and that must neither race
// with other evaluations nor show up in later results.
func TestResultMetadataIsTheCallers(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			p, _ := newClient(t, newTestServer(t, generalStore(t)), provider.WithMode(m.mode))
			ctx := context.Background()
			first := p.IntEvaluation(ctx, "retries", 0, openfeature.FlattenedContext{})
			first.FlagMetadata["strategy"] = "comparison"
			second := p.IntEvaluation(ctx, "retries", 0, openfeature.FlattenedContext{})
			if _, leaked := second.FlagMetadata["strategy"]; leaked {
				t.Fatal("a key written into one result's metadata appeared in the next result")
			}
			if second.FlagMetadata["owner"] != "payments" || second.Value != 3 {
				t.Fatalf("second result = %+v", second)
			}
		})
	}
}
