package provider_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/provider"
	"github.com/switchyard-dev/switchyard/store/memory"
)

// TestEvaluationBudget evaluates the rules of issue #12 that, unbounded,
// take gigabytes (a doubling accumulator over 40 tags) or seconds (an
// accumulator over a context of 1 MB, which still fits an OFREP request
// body) in both modes: the in-process provider evaluates them itself, the
// remote one through the server's OFREP route. Each answers the caller's
// default with ERROR and GENERAL, and a message giving the limit.
func TestEvaluationBudget(t *testing.T) {
	rev := switchyard.InitialRevision(time.Now())
	def := "none"
	rev.Flags = map[string]switchyard.Flag{
		"doubling": {State: switchyard.StateEnabled, Variants: map[string]any{"none": "none"}, DefaultVariant: &def,
			Targeting: json.RawMessage(`{"reduce": [{"var": "tags"}, {"cat": [{"var": "accumulator"}, {"var": "accumulator"}]}, "ab"]}`)},
		"accumulate": {State: switchyard.StateEnabled, Variants: map[string]any{"none": "none"}, DefaultVariant: &def,
			Targeting: json.RawMessage(`{"reduce": [{"var": "tags"}, {"cat": [{"var": "accumulator"}, {"var": "current"}]}, ""]}`)},
	}
	if err := evaluator.Validate(rev); err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, memory.New(rev))
	tags := func(n int) openfeature.EvaluationContext {
		list := make([]any, n)
		for i := range list {
			list[i] = fmt.Sprintf("t%06d", i)
		}
		return openfeature.NewEvaluationContext("user-1", map[string]any{"tags": list})
	}
	tests := []struct {
		flag string
		ctx  openfeature.EvaluationContext
	}{
		{"doubling", tags(40)},
		{"accumulate", tags(100_000)},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			_, c := newClient(t, ts, provider.WithMode(m.mode))
			for _, tt := range tests {
				d, _ := c.StringValueDetails(context.Background(), tt.flag, "fallback", tt.ctx)
				if d.Value != "fallback" || d.Reason != openfeature.ErrorReason || d.ErrorCode != openfeature.GeneralCode ||
					!strings.Contains(d.ErrorMessage, "more than 1048576 bytes") {
					t.Errorf("%s = %q %s %s %.300q, want the default with ERROR, GENERAL and the limit", tt.flag,
						d.Value, d.Reason, d.ErrorCode, d.ErrorMessage)
				}
			}
		})
	}
}
