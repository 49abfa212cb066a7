package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-dev/switchyard/internal/server"
	"github.com/switchyard-dev/switchyard/store/memory"
)

const adminToken = "quiz-admin"

// TestQuiz runs the quiz against a real Switchyard: an exam switched on
// mid-quiz does not reach the open quiz, does reach a new one, and stops
// heavy work at once.
func TestQuiz(t *testing.T) {
	switchyard := server.NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)),
		server.Config{Tokens: []server.Token{{Role: server.RoleAdmin, Secret: adminToken}}}, memory.NewDemo())
	sy := httptest.NewServer(switchyard)
	defer sy.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	quiz, err := newService(ctx, sy.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer openfeature.Shutdown()
	changed := make(chan openfeature.EventDetails, 4)
	cb := func(d openfeature.EventDetails) { changed <- d }
	openfeature.NewClient(domain).AddHandler(openfeature.ProviderConfigChange, &cb)

	do := func(method, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		quiz.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec
	}
	next := func(id string) plan {
		rec := do("GET", "/quizzes/"+id+"/next")
		var p plan
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatalf("next %s: %d %s", id, rec.Code, rec.Body)
		}
		return p
	}
	if rec := do("POST", "/quizzes/q-1?user=ann"); rec.Code != http.StatusCreated {
		t.Fatalf("start: %d %s", rec.Code, rec.Body)
	}
	if rec := do("POST", "/mastery/recompute"); rec.Code != http.StatusAccepted {
		t.Fatalf("recompute before the exam: %d", rec.Code)
	}

	req := httptest.NewRequest("POST", "/v1/admin/system/exam-mode",
		strings.NewReader(`{"enabled":true,"phrase":"ENABLE EXAM MODE","reason":"exam at 10:00"}`))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	switchyard.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("exam mode on: %d %s", rec.Code, rec.Body)
	}
	select {
	case <-changed:
	case <-ctx.Done():
		t.Fatal("the quiz never heard of the exam")
	}

	if p := next("q-1"); p.ExamMode || p.Adaptive != "v1" {
		t.Fatalf("open quiz = %+v, want its snapshot: no exam", p)
	}
	if p := next("q-2"); !p.ExamMode {
		t.Fatalf("new quiz = %+v, want the exam on", p)
	}
	if rec := do("POST", "/mastery/recompute"); rec.Code != http.StatusLocked {
		t.Fatalf("recompute during the exam: %d %s, want 423", rec.Code, rec.Body)
	}
	if rec := do("POST", "/mastery"); rec.Code != http.StatusAccepted {
		t.Fatalf("mastery write during the exam: %d %s, want it accepted (no freeze)", rec.Code, rec.Body)
	}
}
