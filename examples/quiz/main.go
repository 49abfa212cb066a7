// Command quiz is a small quiz service built on Switchyard, to copy from:
// it pins each quiz to a session so an operator's change never reaches a
// quiz in progress, picks its algorithms from flags, and refuses writes
// while FREEZE_UPDATES is on and heavy work while EXAM_MODE is on.
//
//	quiz -switchyard http://localhost:8080 -addr :8081
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-dev/switchyard/provider"
)

func main() {
	addr := flag.String("addr", ":8081", "the address to listen on")
	endpoint := flag.String("switchyard", "", "Switchyard's base URL; OFREP_ENDPOINT when empty")
	remote := flag.Bool("remote", false, "evaluate remotely (one OFREP call per flag) instead of in process")
	flag.Parse()

	mode := provider.InProcess
	if *remote {
		mode = provider.Remote
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	initCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	handler, err := newService(initCtx, *endpoint, provider.WithMode(mode))
	cancel()
	if err != nil {
		log.Fatal(err)
	}
	defer openfeature.Shutdown()

	srv := &http.Server{Addr: *addr, Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	log.Printf("quiz listening on %s", *addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// domain is the OpenFeature domain the quiz registers its provider under.
const domain = "quiz"

// service is the quiz's HTTP API.
type service struct {
	provider *provider.Provider
	flags    *openfeature.Client
}

// newService connects to Switchyard and returns the quiz's routes.
func newService(ctx context.Context, endpoint string, opts ...provider.Option) (http.Handler, error) {
	p, err := provider.New(endpoint, opts...)
	if err != nil {
		return nil, err
	}
	if err := openfeature.SetNamedProviderWithContextAndWait(ctx, domain, p); err != nil {
		return nil, fmt.Errorf("connect to switchyard: %w", err)
	}
	s := &service{provider: p, flags: openfeature.NewClient(domain)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /quizzes/{id}", s.start)
	mux.HandleFunc("GET /quizzes/{id}/next", s.next)
	// Heavy work waits for the exam to end; state writes for the freeze.
	mux.Handle("POST /mastery/recompute", provider.RequireNoExamMode(s.flags, "recompute").Handler(http.HandlerFunc(accepted)))
	mux.Handle("POST /mastery", provider.RequireMutationsAllowed(s.flags, "mastery").Handler(http.HandlerFunc(accepted)))
	return mux, nil
}

// start pins a quiz's session to the current runtime.
func (s *service) start(w http.ResponseWriter, r *http.Request) {
	if err := s.provider.StartSession(r.Context(), r.PathValue("id"), r.URL.Query().Get("user")); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// plan is what the quiz uses for its next question.
type plan struct {
	Adaptive   string `json:"adaptive"`
	Difficulty string `json:"difficulty"`
	ExamMode   bool   `json:"exam_mode"`
	Revision   any    `json:"revision"`
}

// next reads the quiz's algorithms from its session's snapshot. Evaluation
// never fails: a problem yields the defaults given here.
func (s *service) next(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	session := openfeature.NewTargetlessEvaluationContext(map[string]any{provider.SessionIDKey: r.PathValue("id")})
	adaptive, _ := s.flags.StringValueDetails(ctx, "module.adaptive", "v0", session)
	difficulty, _ := s.flags.StringValue(ctx, "module.difficulty", "v0", session)
	exam, _ := s.flags.BooleanValue(ctx, "EXAM_MODE", false, session)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(plan{Adaptive: adaptive.Value, Difficulty: difficulty, ExamMode: exam,
		Revision: adaptive.FlagMetadata["revision"]})
}

func accepted(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) }
