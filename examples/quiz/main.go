// Command quiz is a small quiz service built on Switchyard, to copy from:
// it pins each quiz to a session so an operator's change never reaches a
// quiz in progress, picks its algorithms from flags (the mastery algorithm
// through the provider's module registry, which carries a learner's level
// across a version change), and refuses writes while FREEZE_UPDATES is on
// and heavy work while EXAM_MODE is on.
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
	"strconv"
	"sync"
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
	// mastery holds an implementation per version of the mastery module.
	mastery *provider.Registry[*mastery]
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
	reg, err := masteryRegistry(ctx, p)
	if err != nil {
		return nil, err
	}
	s := &service{provider: p, flags: openfeature.NewClient(domain), mastery: reg}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /quizzes/{id}", s.start)
	mux.HandleFunc("GET /quizzes/{id}/next", s.next)
	// An answer updates the learner's mastery, a state write: the freeze
	// stops it, an exam does not.
	mux.Handle("POST /quizzes/{id}/answers", provider.RequireMutationsAllowed(s.flags, "mastery").Handler(http.HandlerFunc(s.answer)))
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

// mastery is one version of the mastery algorithm and the levels (0 to 1)
// it keeps per learner; a real service would keep them in its database.
type mastery struct {
	version string
	step    func(level float64, correct bool) float64

	mu     sync.Mutex
	levels map[string]float64
}

// answer moves user's level by one answer and returns the new level.
func (m *mastery) answer(user string, correct bool) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.levels[user] = m.step(m.levels[user], correct)
	return m.levels[user]
}

// level returns user's level.
func (m *mastery) level(user string) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.levels[user]
}

// setLevel sets user's level, as a bridge from another version does.
func (m *mastery) setLevel(user string, level float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.levels[user] = level
}

// masteryRegistry registers mastery v0 (a fixed step per answer) and v1 (a
// moving average), and bridges between them by carrying the learner's
// level over, so a learner moved to another version keeps their progress.
// It checks them against the server's catalog: a version Switchyard does
// not know stops the quiz at start-up.
func masteryRegistry(ctx context.Context, catalog provider.CatalogSource) (*provider.Registry[*mastery], error) {
	outcome := func(correct bool) float64 {
		if correct {
			return 1
		}
		return 0
	}
	v0 := &mastery{version: "v0", levels: map[string]float64{}, step: func(level float64, correct bool) float64 {
		if correct {
			return min(1, level+0.1)
		}
		return max(0, level-0.1)
	}}
	v1 := &mastery{version: "v1", levels: map[string]float64{}, step: func(level float64, correct bool) float64 {
		return 0.7*level + 0.3*outcome(correct)
	}}
	bridge := func(from, to *mastery) provider.BridgeFunc {
		return func(_ context.Context, user string) error {
			to.setLevel(user, from.level(user))
			return nil
		}
	}
	reg := provider.NewRegistry[*mastery]()
	if err := errors.Join(
		reg.Register("mastery", v0.version, v0),
		reg.Register("mastery", v1.version, v1),
		reg.RegisterBridge("mastery", "v0", "v1", bridge(v0, v1)),
		reg.RegisterBridge("mastery", "v1", "v0", bridge(v1, v0)),
	); err != nil {
		return nil, err
	}
	if err := reg.Validate(ctx, catalog); err != nil {
		return nil, fmt.Errorf("mastery: %w", err)
	}
	return reg, nil
}

// answerResult is what the quiz says about an answer.
type answerResult struct {
	Correct        bool    `json:"correct"`
	MasteryVersion string  `json:"mastery_version,omitempty"`
	Mastery        float64 `json:"mastery"`
	// MasteryOff says the mastery module is disabled: the answer counts,
	// the learner's level is left alone.
	MasteryOff bool `json:"mastery_disabled,omitempty"`
}

// answer records an answer in quiz {id} for ?user=, ?correct=true|false,
// with the mastery version the quiz's session is served.
func (s *service) answer(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user")
	correct, err := strconv.ParseBool(r.URL.Query().Get("correct"))
	if user == "" || err != nil {
		http.Error(w, "user and correct=true|false are required", http.StatusBadRequest)
		return
	}
	learner := openfeature.NewEvaluationContext(user, map[string]any{provider.SessionIDKey: r.PathValue("id")})
	res := answerResult{Correct: correct}
	m, err := s.mastery.Resolve(r.Context(), s.flags, "mastery", learner)
	switch {
	case errors.Is(err, provider.ErrModuleDisabled):
		res.MasteryOff = true
	case err != nil:
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	default:
		res.MasteryVersion, res.Mastery = m.version, m.answer(user, correct)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}
