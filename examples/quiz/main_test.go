package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/internal/server"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
)

const adminToken = "quiz-admin"

// fixture is a real Switchyard and the quiz connected to it.
type fixture struct {
	switchyard http.Handler
	quiz       http.Handler
	// changed receives the quiz provider's configuration changes.
	changed chan openfeature.EventDetails
	ctx     context.Context
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	switchyard := newSwitchyard(memory.NewDemo())
	sy := httptest.NewServer(switchyard)
	t.Cleanup(sy.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	quiz, err := newService(ctx, sy.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(openfeature.Shutdown)
	f := &fixture{switchyard: switchyard, quiz: quiz, changed: make(chan openfeature.EventDetails, 8), ctx: ctx}
	cb := func(d openfeature.EventDetails) { f.changed <- d }
	openfeature.NewClient(domain).AddHandler(openfeature.ProviderConfigChange, &cb)
	return f
}

// do sends a request to the quiz.
func (f *fixture) do(method, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	f.quiz.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

// admin makes an operator's change on Switchyard.
func (f *fixture) admin(t *testing.T, path, body string) {
	t.Helper()
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	f.switchyard.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("POST %s: %d %s", path, rec.Code, rec.Body)
	}
}

// heard waits until the quiz's provider has followed a change of flag.
func (f *fixture) heard(t *testing.T, flag string) {
	t.Helper()
	for {
		select {
		case d := <-f.changed:
			if slices.Contains(d.FlagChanges, flag) {
				return
			}
		case <-f.ctx.Done():
			t.Fatalf("the quiz never heard of %s", flag)
		}
	}
}

// TestQuiz runs the quiz against a real Switchyard: an exam switched on
// mid-quiz does not reach the open quiz, does reach a new one, and stops
// heavy work at once.
func TestQuiz(t *testing.T) {
	f := newFixture(t)
	next := func(id string) plan {
		rec := f.do("GET", "/quizzes/"+id+"/next")
		var p plan
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatalf("next %s: %d %s", id, rec.Code, rec.Body)
		}
		return p
	}
	if rec := f.do("POST", "/quizzes/q-1?user=ann"); rec.Code != http.StatusCreated {
		t.Fatalf("start: %d %s", rec.Code, rec.Body)
	}
	if rec := f.do("POST", "/mastery/recompute"); rec.Code != http.StatusAccepted {
		t.Fatalf("recompute before the exam: %d", rec.Code)
	}
	f.admin(t, "/v1/admin/system/exam-mode", `{"enabled":true,"phrase":"ENABLE EXAM MODE","reason":"exam at 10:00"}`)
	f.heard(t, "EXAM_MODE")

	if p := next("q-1"); p.ExamMode || p.Adaptive != "v1" {
		t.Fatalf("open quiz = %+v, want its snapshot: no exam", p)
	}
	if p := next("q-2"); !p.ExamMode {
		t.Fatalf("new quiz = %+v, want the exam on", p)
	}
	if rec := f.do("POST", "/mastery/recompute"); rec.Code != http.StatusLocked {
		t.Fatalf("recompute during the exam: %d %s, want 423", rec.Code, rec.Body)
	}
	if rec := f.do("POST", "/mastery"); rec.Code != http.StatusAccepted {
		t.Fatalf("mastery write during the exam: %d %s, want it accepted (no freeze)", rec.Code, rec.Body)
	}
	if rec := f.do("POST", "/quizzes/q-2/answers?user=ann&correct=true"); rec.Code != http.StatusOK {
		t.Fatalf("answer during the exam: %d %s, want it accepted", rec.Code, rec.Body)
	}
}

// TestQuizMastery follows the operator runbook from the quiz's side: the
// answer endpoint picks mastery through the module registry, so a switch
// to the fallback profile moves new quizzes to v0 with the learner's level
// bridged over, quizzes already open keep v1, a disabled module leaves
// levels alone, and the freeze refuses answers.
func TestQuizMastery(t *testing.T) {
	f := newFixture(t)
	const (
		fallback = `{"profile_name":"fallback","phrase":"SET PROFILE FALLBACK","reason":"roll back to v0"}`
		disable  = `{"module":"mastery","is_enabled":false,"phrase":"DISABLE MODULE mastery","reason":"bad scores"}`
		freeze   = `{"flag":"FREEZE_UPDATES","value":true,"phrase":"ENABLE FREEZE UPDATES","reason":"incident"}`
	)
	steps := []struct {
		// change, when set, is an admin path and body applied first;
		// wait, when set, a flag to wait for the quiz to follow.
		change, body, wait string
		quiz, user         string
		wantCode           int
		want               answerResult
	}{
		{quiz: "q-ann-1", user: "ann", wantCode: 200, want: answerResult{Correct: true, MasteryVersion: "v1", Mastery: 0.3}},
		{quiz: "q-bob-1", user: "bob", wantCode: 200, want: answerResult{Correct: true, MasteryVersion: "v1", Mastery: 0.3}},
		// A new quiz is served v0 (once the quiz serves the switch); ann's
		// 0.3 is bridged over, then +0.1.
		{change: "/v1/admin/runtime/profile", body: fallback, wait: "module.mastery",
			quiz: "q-ann-2", user: "ann", wantCode: 200, want: answerResult{Correct: true, MasteryVersion: "v0", Mastery: 0.4}},
		// Bob's open quiz stays on v1, nothing bridged: 0.7*0.3 + 0.3.
		{quiz: "q-bob-1", user: "bob", wantCode: 200, want: answerResult{Correct: true, MasteryVersion: "v1", Mastery: 0.51}},
		{change: "/v1/admin/runtime/override", body: disable, wait: "module.mastery.enabled",
			quiz: "q-ann-3", user: "ann", wantCode: 200, want: answerResult{Correct: true, MasteryOff: true}},
		{change: "/v1/admin/runtime/flags", body: freeze, wait: "FREEZE_UPDATES",
			quiz: "q-ann-2", user: "ann", wantCode: http.StatusLocked},
	}
	for i, s := range steps {
		if s.change != "" {
			f.admin(t, s.change, s.body)
		}
		if s.wait != "" {
			f.heard(t, s.wait)
		}
		rec := f.do("POST", fmt.Sprintf("/quizzes/%s/answers?user=%s&correct=true", s.quiz, s.user))
		if rec.Code != s.wantCode {
			t.Fatalf("step %d: %d %s, want %d", i, rec.Code, rec.Body, s.wantCode)
		}
		if rec.Code != http.StatusOK {
			continue
		}
		var got answerResult
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("step %d: %v: %s", i, err, rec.Body)
		}
		if math.Abs(got.Mastery-s.want.Mastery) < 1e-9 {
			got.Mastery = s.want.Mastery
		}
		if got != s.want {
			t.Fatalf("step %d: %+v, want %+v", i, got, s.want)
		}
	}
}

// newSwitchyard is Switchyard's HTTP API over st in demo mode, with the
// tests' admin token.
func newSwitchyard(st store.Store) http.Handler {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	return server.New(logger, control.New(logger, control.Config{}, st),
		server.Config{Auth: server.NewAuthenticator([]server.Token{{Operator: switchyard.Operator{Name: "admin", Role: switchyard.RoleAdmin}, Secret: adminToken}})})
}
