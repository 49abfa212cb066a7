// Command migration runs a team's old flag provider and Switchyard side by
// side behind the OpenFeature SDK's multi-provider, comparison strategy:
// every flag is evaluated by both, the application gets the old provider's
// value, and every disagreement is logged with the flag and both values.
// Once the log stays quiet, the application switches to Switchyard alone.
//
//	switchyard import --from flagd --reason "moving to Switchyard" examples/migration/flags.json
//	go run ./examples/migration -switchyard http://127.0.0.1:8080
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/memprovider"
	"github.com/open-feature/go-sdk/openfeature/multi"

	"github.com/switchyard-dev/switchyard/provider"
)

func main() {
	endpoint := flag.String("switchyard", "", "Switchyard's base URL; OFREP_ENDPOINT when empty")
	token := flag.String("token", os.Getenv("SWITCHYARD_TOKEN"), "bearer token, when the server requires one [SWITCHYARD_TOKEN]")
	flag.Parse()

	var opts []provider.Option
	if *token != "" {
		opts = append(opts, provider.WithToken(*token))
	}
	sw, err := provider.New(*endpoint, opts...)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	client, err := connect(ctx, oldProvider(), sw, logger)
	if err != nil {
		log.Fatal(err)
	}
	defer openfeature.Shutdown()
	for _, user := range users {
		for _, c := range checks {
			v, err := evaluate(ctx, client, c.flag, c.def, user)
			if err != nil {
				fmt.Printf("%-4s %-15s error: %v\n", user.TargetingKey(), c.flag, err)
				continue
			}
			fmt.Printf("%-4s %-15s %v\n", user.TargetingKey(), c.flag, v)
		}
	}
}

// The names the multi-provider knows the two providers by; they name the
// values in the disagreement log.
const (
	oldName        = "old"
	switchyardName = "switchyard"
	// bothAnswered is the multi-provider's list of the providers that
	// answered (sorted, comma-separated) when both knew the flag.
	bothAnswered = oldName + ", " + switchyardName
)

// domain is the OpenFeature domain the side-by-side provider is registered
// under; the application's clients use it.
const domain = "migration"

// users are the evaluation contexts the program evaluates every flag for.
var users = []openfeature.EvaluationContext{
	openfeature.NewEvaluationContext("ann", map[string]any{"email": "ann@example.com"}),
	openfeature.NewEvaluationContext("bob", map[string]any{"email": "bob@elsewhere.org"}),
}

// checks are the flags the application reads, each with the default it
// passes, whose type picks the typed evaluation.
var checks = []struct {
	flag string
	def  any
}{
	{"new-checkout", false},
	{"checkout-theme", "light"},
	{"max-cart-items", int64(10)},
	{"discount-rate", 0.0},
	{"promo-banner", map[string]any{}},
	{"holiday-mode", false},
}

// oldProvider stands in for the team's old vendor SDK. In real use it is
// their flagd, LaunchDarkly or other OpenFeature provider, unchanged; here
// it is the SDK's memprovider holding the flags of flags.json, the file
// exported from the old system and imported into Switchyard. Two changes
// were made in the old system after the export, as happens while a
// migration runs, and the side-by-side log catches both: checkout-theme's
// default became dark, and holiday-mode was created.
func oldProvider() *memprovider.InMemoryProvider {
	// employees is flags.json's targeting of new-checkout, in Go.
	employees := func(f memprovider.InMemoryFlag, c openfeature.FlattenedContext) (any, openfeature.ProviderResolutionDetail) {
		email, _ := c["email"].(string)
		variant := "off"
		if strings.HasSuffix(email, "@example.com") {
			variant = "on"
		}
		return f.Variants[variant], openfeature.ProviderResolutionDetail{Reason: openfeature.TargetingMatchReason, Variant: variant}
	}
	flags := []memprovider.InMemoryFlag{
		{Key: "new-checkout", DefaultVariant: "off", Variants: map[string]any{"on": true, "off": false}, ContextEvaluator: &employees},
		{Key: "checkout-theme", DefaultVariant: "dark", Variants: map[string]any{"light": "light", "dark": "dark"}},
		{Key: "max-cart-items", DefaultVariant: "large", Variants: map[string]any{"small": int64(25), "large": int64(100)}},
		{Key: "discount-rate", DefaultVariant: "spring", Variants: map[string]any{"none": 0.0, "spring": 0.15}},
		{Key: "promo-banner", DefaultVariant: "sale", Variants: map[string]any{
			"sale": map[string]any{"text": "Spring sale", "color": "green"}, "none": map[string]any{}}},
		{Key: "holiday-mode", DefaultVariant: "on", Variants: map[string]any{"on": true, "off": false}},
	}
	byKey := make(map[string]memprovider.InMemoryFlag, len(flags))
	for _, f := range flags {
		f.State = memprovider.Enabled
		byKey[f.Key] = f
	}
	return memprovider.NewInMemoryProvider(byKey)
}

// connect registers the side-by-side provider under domain, starting both
// providers, and returns a client of it.
func connect(ctx context.Context, old openfeature.FeatureProvider, sw *provider.Provider, logger *slog.Logger) (*openfeature.Client, error) {
	mp, err := sideBySide(old, sw, logger)
	if err != nil {
		return nil, fmt.Errorf("side-by-side provider: %w", err)
	}
	if err := openfeature.SetNamedProviderWithContextAndWait(ctx, domain, mp); err != nil {
		return nil, fmt.Errorf("start the old provider and switchyard: %w", err)
	}
	return openfeature.NewClient(domain), nil
}

// sideBySide returns the multi-provider with the comparison strategy over
// the old provider and Switchyard. Values that agree are served as they
// are; on a disagreement the referee logs both values and serves the old
// provider's, which stays the truth until the switch. The gap hook logs
// what the comparison itself passes over.
func sideBySide(old openfeature.FeatureProvider, sw *provider.Provider, logger *slog.Logger) (*multi.Provider, error) {
	sides := []named{{FeatureProvider: old, name: oldName}, {FeatureProvider: sw, name: switchyardName}}
	return multi.NewProvider(multi.StrategyComparison,
		multi.WithProvider(sides[0].name, sides[0].FeatureProvider),
		multi.WithProvider(sides[1].name, sides[1].FeatureProvider),
		multi.WithFallbackProvider(&referee{sides: sides, logger: logger}),
		multi.WithCustomComparator(agree),
		multi.WithGlobalHooks(gapHook{logger: logger}),
	)
}

// agree says whether the providers' values are equal. Without a comparator
// of its own the strategy refuses object flags (Go maps are not
// comparable); reflect.DeepEqual compares every type alike.
func agree(values []any) bool {
	if len(values) == 0 {
		return false
	}
	for _, v := range values[1:] {
		if !reflect.DeepEqual(v, values[0]) {
			return false
		}
	}
	return true
}

// named is a provider with the name the multi-provider knows it by, so the
// referee can evaluate it with the SDK's own typed multi.Evaluate.
type named struct {
	openfeature.FeatureProvider
	name string
}

var _ multi.NamedProvider = named{}

// Name returns the provider's name in the side-by-side setup.
func (n named) Name() string { return n.name }

// referee is the comparison's fallback provider. The strategy calls it
// only when the providers disagree, and tells it nothing of their values,
// so the referee evaluates the flag in each again (both evaluate locally:
// no network call), logs the flag and every value, and serves the old
// provider's result.
type referee struct {
	sides  []named // the old provider first
	logger *slog.Logger
}

var _ openfeature.FeatureProvider = (*referee)(nil)

// Metadata names the referee, which the SDK shows as the fallback.
func (r *referee) Metadata() openfeature.Metadata { return openfeature.Metadata{Name: "referee"} }

// Hooks returns no hooks: the referee needs none.
func (r *referee) Hooks() []openfeature.Hook { return nil }

// BooleanEvaluation judges a boolean flag the providers disagree on.
func (r *referee) BooleanEvaluation(ctx context.Context, flag string, defaultValue bool, flatCtx openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
	d := judge(r, ctx, flag, defaultValue, flatCtx)
	return openfeature.BoolResolutionDetail{Value: d.Value, ProviderResolutionDetail: d.ProviderResolutionDetail}
}

// StringEvaluation judges a string flag the providers disagree on.
func (r *referee) StringEvaluation(ctx context.Context, flag string, defaultValue string, flatCtx openfeature.FlattenedContext) openfeature.StringResolutionDetail {
	d := judge(r, ctx, flag, defaultValue, flatCtx)
	return openfeature.StringResolutionDetail{Value: d.Value, ProviderResolutionDetail: d.ProviderResolutionDetail}
}

// FloatEvaluation judges a float flag the providers disagree on.
func (r *referee) FloatEvaluation(ctx context.Context, flag string, defaultValue float64, flatCtx openfeature.FlattenedContext) openfeature.FloatResolutionDetail {
	d := judge(r, ctx, flag, defaultValue, flatCtx)
	return openfeature.FloatResolutionDetail{Value: d.Value, ProviderResolutionDetail: d.ProviderResolutionDetail}
}

// IntEvaluation judges an integer flag the providers disagree on.
func (r *referee) IntEvaluation(ctx context.Context, flag string, defaultValue int64, flatCtx openfeature.FlattenedContext) openfeature.IntResolutionDetail {
	d := judge(r, ctx, flag, defaultValue, flatCtx)
	return openfeature.IntResolutionDetail{Value: d.Value, ProviderResolutionDetail: d.ProviderResolutionDetail}
}

// ObjectEvaluation judges an object flag the providers disagree on.
func (r *referee) ObjectEvaluation(ctx context.Context, flag string, defaultValue any, flatCtx openfeature.FlattenedContext) openfeature.InterfaceResolutionDetail {
	d := judge(r, ctx, flag, defaultValue, flatCtx)
	return openfeature.InterfaceResolutionDetail{Value: d.Value, ProviderResolutionDetail: d.ProviderResolutionDetail}
}

// judge evaluates flag in every provider, logs the disagreement with each
// provider's value, and returns the old provider's result.
func judge[T multi.FlagTypes](r *referee, ctx context.Context, flag string, defaultValue T, flatCtx openfeature.FlattenedContext) openfeature.GenericResolutionDetail[T] {
	attrs := []slog.Attr{slog.String("flag", flag), slog.Any("targetingKey", flatCtx[openfeature.TargetingKey])}
	var served openfeature.GenericResolutionDetail[T]
	for i, side := range r.sides {
		d := multi.Evaluate(ctx, side, flag, defaultValue, flatCtx)
		attrs = append(attrs, slog.Any(side.name, d.Value))
		if i == 0 {
			served = d
		}
	}
	r.logger.LogAttrs(ctx, slog.LevelWarn, "flag disagreement", attrs...)
	return served
}

// gapHook logs what the comparison strategy passes over. It leaves a
// provider that does not know the flag out of the comparison, so a flag
// missing on one side (never imported, or created in the old system since)
// agrees with itself: the result's metadata names who answered. And an
// error from either provider ends the evaluation with the caller's default.
type gapHook struct {
	openfeature.UnimplementedHook
	logger *slog.Logger
}

// After logs a flag that only one provider knows.
func (h gapHook) After(ctx context.Context, hc openfeature.HookContext, d openfeature.InterfaceEvaluationDetails, _ openfeature.HookHints) error {
	// On a disagreement the fallback answers and the list is absent.
	answered, _ := d.FlagMetadata[multi.MetadataSuccessfulProviderNames].(string)
	if answered != "" && answered != bothAnswered {
		h.logger.LogAttrs(ctx, slog.LevelWarn, "flag known to one provider only",
			slog.String("flag", hc.FlagKey()), slog.String("provider", answered), slog.Any("value", d.Value))
	}
	return nil
}

// Error logs an evaluation that failed in either provider.
func (h gapHook) Error(ctx context.Context, hc openfeature.HookContext, err error, _ openfeature.HookHints) {
	h.logger.LogAttrs(ctx, slog.LevelError, "side-by-side evaluation failed",
		slog.String("flag", hc.FlagKey()), slog.Any("err", err))
}

// evaluate reads flag through c with the typed evaluation that def's type
// picks.
func evaluate(ctx context.Context, c *openfeature.Client, flag string, def any, ec openfeature.EvaluationContext) (any, error) {
	switch d := def.(type) {
	case bool:
		return c.BooleanValue(ctx, flag, d, ec)
	case string:
		return c.StringValue(ctx, flag, d, ec)
	case int64:
		return c.IntValue(ctx, flag, d, ec)
	case float64:
		return c.FloatValue(ctx, flag, d, ec)
	default:
		return c.ObjectValue(ctx, flag, d, ec)
	}
}
