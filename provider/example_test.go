package provider_test

import (
	"context"
	"log"
	"net/http"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-dev/switchyard/provider"
)

// A service evaluates in process (the default), pins each learner's session
// and guards its state writes.
func ExampleNew() {
	p, err := provider.New("http://switchyard:8080", provider.WithToken("app-token"))
	if err != nil {
		log.Fatal(err)
	}
	// Init fetches the flag set; READY once it is local.
	if err := openfeature.SetProviderAndWait(p); err != nil {
		log.Fatal(err)
	}
	client := openfeature.NewDefaultClient()
	ctx := context.Background()

	// Every flag read with this session ID comes from its snapshot: a
	// change made mid-session never reaches it.
	if err := p.StartSession(ctx, "s-123", "learner-9"); err != nil {
		log.Print(err) // Evaluations would pin it at first sight anyway.
	}
	session := openfeature.NewEvaluationContext("learner-9", map[string]any{provider.SessionIDKey: "s-123"})
	version, _ := client.StringValue(ctx, "module.mastery", "v0", session)
	log.Print("mastery ", version)

	// Writes are refused with 423 while FREEZE_UPDATES is on.
	http.Handle("POST /mastery", provider.RequireMutationsAllowed(client, "mastery").Handler(http.NotFoundHandler()))
}

// Remote mode makes one OFREP call per evaluation and keeps no local state;
// OFREP_ENDPOINT, OFREP_HEADERS and OFREP_TIMEOUT_MS configure it.
func ExampleNew_remote() {
	p, err := provider.New("", provider.WithMode(provider.Remote))
	if err != nil {
		log.Fatal(err)
	}
	if err := openfeature.SetNamedProviderAndWait("remote", p); err != nil {
		log.Fatal(err)
	}
}
