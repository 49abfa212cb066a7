package provider_test

import (
	"context"
	"errors"
	"log"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-dev/switchyard/provider"
)

// Scorer is what every version of a mastery module implements.
type Scorer interface {
	Score(correct, answered int) float64
}

type ratio struct{}

func (ratio) Score(correct, answered int) float64 {
	return float64(correct) / float64(max(answered, 1))
}

// A service registers each version of a module, checks them against the
// server's catalog before serving, and picks the implementation per
// request; the bridge moves a learner's state when their version changes.
func ExampleRegistry() {
	p, err := provider.New("http://switchyard:8080")
	if err != nil {
		log.Fatal(err)
	}
	if err := openfeature.SetNamedProviderAndWait("quiz", p); err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	mastery := provider.NewRegistry[Scorer]()
	if err := errors.Join(
		mastery.Register("mastery", "v0", ratio{}),
		mastery.Register("mastery", "v1", ratio{}),
		mastery.RegisterBridge("mastery", "v1", "v0", func(ctx context.Context, user string) error {
			return nil // Convert user's v1 state into v0's form here.
		}),
		// A version the server's catalog lacks stops the service here.
		mastery.Validate(ctx, p),
	); err != nil {
		log.Fatal(err)
	}

	learner := openfeature.NewEvaluationContext("learner-9", map[string]any{provider.SessionIDKey: "s-123"})
	scorer, err := mastery.Resolve(ctx, openfeature.NewClient("quiz"), "mastery", learner)
	switch {
	case errors.Is(err, provider.ErrModuleDisabled):
		log.Print("mastery is off: skip scoring")
	case err != nil:
		log.Print(err)
	default:
		log.Print("score ", scorer.Score(3, 4))
	}
}
