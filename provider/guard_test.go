package provider_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/memprovider"
	"github.com/switchyard-dev/switchyard/provider"
	"github.com/switchyard-dev/switchyard/provider/ginguard"
)

// client returns an OpenFeature client over an in-memory provider holding
// the given boolean flags, isolated from other tests by its domain.
func client(t *testing.T, flags map[string]memprovider.InMemoryFlag) *openfeature.Client {
	t.Helper()
	if err := openfeature.SetNamedProviderAndWait(t.Name(), memprovider.NewInMemoryProvider(flags)); err != nil {
		t.Fatal(err)
	}
	return openfeature.NewClient(t.Name())
}

func boolFlag(key string, on bool) memprovider.InMemoryFlag {
	v := "off"
	if on {
		v = "on"
	}
	return memprovider.InMemoryFlag{Key: key, State: memprovider.Enabled, DefaultVariant: v,
		Variants: map[string]any{"on": true, "off": false}}
}

func TestGuards(t *testing.T) {
	tests := []struct {
		name     string
		flags    map[string]memprovider.InMemoryFlag
		guard    func(provider.BooleanClient) *provider.Guard
		wantCode string // empty: allowed
	}{
		{"freeze off allows writes", map[string]memprovider.InMemoryFlag{"FREEZE_UPDATES": boolFlag("FREEZE_UPDATES", false)},
			func(c provider.BooleanClient) *provider.Guard { return provider.RequireMutationsAllowed(c, "mastery") }, ""},
		{"freeze on refuses writes", map[string]memprovider.InMemoryFlag{"FREEZE_UPDATES": boolFlag("FREEZE_UPDATES", true)},
			func(c provider.BooleanClient) *provider.Guard { return provider.RequireMutationsAllowed(c, "mastery") }, "FREEZE_UPDATES_ACTIVE"},
		{"unknown freeze flag fails closed", map[string]memprovider.InMemoryFlag{},
			func(c provider.BooleanClient) *provider.Guard { return provider.RequireMutationsAllowed(c, "mastery") }, "FREEZE_UPDATES_ACTIVE"},
		{"exam off allows heavy work", map[string]memprovider.InMemoryFlag{"EXAM_MODE": boolFlag("EXAM_MODE", false)},
			func(c provider.BooleanClient) *provider.Guard { return provider.RequireNoExamMode(c, "recompute") }, ""},
		{"exam on refuses heavy work", map[string]memprovider.InMemoryFlag{"EXAM_MODE": boolFlag("EXAM_MODE", true)},
			func(c provider.BooleanClient) *provider.Guard { return provider.RequireNoExamMode(c, "recompute") }, "EXAM_MODE_ACTIVE"},
		{"unknown exam flag allows heavy work", map[string]memprovider.InMemoryFlag{},
			func(c provider.BooleanClient) *provider.Guard { return provider.RequireNoExamMode(c, "recompute") }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := tt.guard(client(t, tt.flags))
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
			gin.SetMode(gin.ReleaseMode)
			engine := gin.New()
			engine.POST("/x", ginguard.Middleware(g), func(c *gin.Context) { c.Status(http.StatusNoContent) })
			for name, h := range map[string]http.Handler{"net/http": g.Handler(next), "gin": engine} {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/x", nil))
				if tt.wantCode == "" {
					if rec.Code != http.StatusNoContent {
						t.Fatalf("%s: status %d, want 204 (allowed)", name, rec.Code)
					}
					continue
				}
				var body struct {
					Error struct{ Code, Message string }
				}
				if rec.Code != http.StatusLocked || json.Unmarshal(rec.Body.Bytes(), &body) != nil || body.Error.Code != tt.wantCode {
					t.Fatalf("%s: status %d body %s, want 423 with code %s", name, rec.Code, rec.Body, tt.wantCode)
				}
				if rec.Header().Get("Content-Type") != "application/json" || body.Error.Message == "" {
					t.Fatalf("%s: content type %q message %q", name, rec.Header().Get("Content-Type"), body.Error.Message)
				}
			}
		})
	}
}

// A session pinned before the freeze must not hide it: the guard reads the
// live flag even when the transaction context carries a sessionId.
func TestGuardIgnoresPinnedSession(t *testing.T) {
	pinnedOff := func(f memprovider.InMemoryFlag, ctx openfeature.FlattenedContext) (any, openfeature.ProviderResolutionDetail) {
		if id, _ := ctx["sessionId"].(string); id != "" {
			return false, openfeature.ProviderResolutionDetail{Reason: openfeature.StaticReason, Variant: "off"}
		}
		return true, openfeature.ProviderResolutionDetail{Reason: openfeature.StaticReason, Variant: "on"}
	}
	freeze := memprovider.InMemoryFlag{Key: "FREEZE_UPDATES", State: memprovider.Enabled, DefaultVariant: "on",
		Variants: map[string]any{"on": true, "off": false}, ContextEvaluator: &pinnedOff}
	c := client(t, map[string]memprovider.InMemoryFlag{"FREEZE_UPDATES": freeze})
	ctx := openfeature.WithTransactionContext(context.Background(),
		openfeature.NewTargetlessEvaluationContext(map[string]any{"sessionId": "s-1"}))
	err := provider.RequireMutationsAllowed(c, "mastery").Check(ctx)
	if e, ok := err.(*provider.Error); !ok || e.Code != provider.CodeFreezeUpdatesActive {
		t.Fatalf("Check = %v, want FREEZE_UPDATES_ACTIVE", err)
	}
}
