package provider_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/internal/server"
	"github.com/switchyard-dev/switchyard/provider"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
)

// memoryBackends lets a test server switch live between fresh demo
// fixtures and one memory store standing for production.
type memoryBackends struct{ production store.Store }

func (b memoryBackends) Requirements(context.Context) []control.Requirement {
	return []control.Requirement{{Name: "database", Why: "the truth", Met: true}}
}

func (b memoryBackends) Open(_ context.Context, mode string) (store.Store, func(), error) {
	if mode == switchyard.ModeDemo {
		return memory.NewDemo(), func() {}, nil
	}
	return b.production, func() {}, nil
}

// A live switch of the server's mode reaches the provider although the new
// mode's store is at the same revision number: the provider resyncs on the
// mode, reports every flag changed, and pins sessions afresh in the new
// mode, whose store is the only one that knows them now.
func TestServerModeSwitch(t *testing.T) {
	rev := switchyard.InitialRevision(time.Now())
	rev.System.ExamMode = true
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ts := newTestServerWith(t, control.Config{Backends: memoryBackends{production: memory.New(rev)}, AllowLiveSwitch: true}, server.Config{}, memory.NewDemo())
			_, c := newClient(t, ts, provider.WithMode(m.mode))
			changes := events(c, openfeature.ProviderConfigChange)
			ctx := context.Background()
			session := openfeature.NewEvaluationContext("u-1", map[string]any{provider.SessionIDKey: "s-before"})
			if on, _ := c.BooleanValue(ctx, "EXAM_MODE", true, session); on {
				t.Fatal("EXAM_MODE is on in demo")
			}

			ts.admin(t, "/system-mode/toggle", map[string]any{"target_mode": "production", "phrase": "SWITCH TO PRODUCTION MODE", "reason": "go live"})
			if m.mode == provider.InProcess {
				d := next(t, changes, "configuration changed")
				if !slices.Contains(d.FlagChanges, switchyard.SystemModeKey) || !slices.Contains(d.FlagChanges, switchyard.ExamMode) {
					t.Fatalf("changed flags = %v, want SYSTEM_MODE and EXAM_MODE among them", d.FlagChanges)
				}
			}
			if mode, _ := c.StringValue(ctx, switchyard.SystemModeKey, "", openfeature.EvaluationContext{}); mode != switchyard.ModeProduction {
				t.Fatalf("SYSTEM_MODE = %q, want production", mode)
			}
			for _, ec := range []openfeature.EvaluationContext{{}, session} {
				if on, _ := c.BooleanValue(ctx, "EXAM_MODE", false, ec); !on {
					t.Fatalf("EXAM_MODE with %v = off, want production's on", ec.Attributes())
				}
			}
		})
	}
}
