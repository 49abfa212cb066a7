package provider

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/internal/server"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
)

// TestExpiredSessionIsPinnedAfresh: a session whose snapshot has expired
// is not served from the cache; the server pins it again.
func TestExpiredSessionIsPinnedAfresh(t *testing.T) {
	rev := switchyard.InitialRevision(time.Now())
	rev.System.ExamMode = true
	srv := httptest.NewServer(newSwitchyard(memory.New(rev)))
	defer srv.Close()
	p, err := New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.InitWithContext(ctx, openfeature.EvaluationContext{}); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	// The cache holds an expired pin to an older revision, EXAM_MODE off.
	old := switchyard.InitialRevision(time.Now())
	set, err := evaluator.Compile(old, "demo")
	if err != nil {
		t.Fatal(err)
	}
	p.sessions.Add("s-1", session{set: set.Pinned(), expires: time.Now().Add(-time.Second)})
	d := p.BooleanEvaluation(ctx, "EXAM_MODE", false, openfeature.FlattenedContext{SessionIDKey: "s-1"})
	if !d.Value || d.FlagMetadata["pinned"] != true {
		t.Fatalf("expired session: EXAM_MODE = %v %v, want on, pinned afresh to the current revision", d.Value, d.FlagMetadata)
	}
}

// TestInitTwice: a second Init replaces the first without leaving its
// follower running.
func TestInitTwice(t *testing.T) {
	srv := httptest.NewServer(newSwitchyard(memory.NewDemo()))
	defer srv.Close()
	p, err := New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 2 {
		if err := p.InitWithContext(ctx, openfeature.EvaluationContext{}); err != nil {
			t.Fatal(err)
		}
	}
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	p.Shutdown()
	select {
	case <-done:
	default:
		t.Fatal("the follower still runs after Shutdown")
	}
}

// newSwitchyard is Switchyard's HTTP API over st in demo mode.
func newSwitchyard(st store.Store) http.Handler {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	return server.New(logger, control.New(logger, control.Config{}, st), server.Config{})
}
