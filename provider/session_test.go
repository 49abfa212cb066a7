package provider

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
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
	t.Cleanup(srv.Close)
	p := initialized(t, srv.URL)
	ctx := context.Background()
	// The cache holds an expired pin to an older revision, EXAM_MODE off.
	old := switchyard.InitialRevision(time.Now())
	set, err := evaluator.Compile(old, "demo")
	if err != nil {
		t.Fatal(err)
	}
	p.sessions.Add("s-1", session{rev: &bundleState{rev: old, mode: "demo", set: set}, expires: time.Now().Add(-time.Second)})
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

// A new revision is compiled from the live flag set: a toggle with
// thousands of flags stored costs the provider a few kilobytes, not a
// second copy of every flag, and evaluates as a full compile does.
func TestRevisionsShareCompiledFlags(t *testing.T) {
	rev := switchyard.InitialRevision(time.Now())
	rev.Flags = map[string]switchyard.Flag{}
	on := "on"
	for i := range 2000 {
		rev.Flags[fmt.Sprintf("flag-%d", i)] = switchyard.Flag{State: switchyard.StateEnabled,
			Variants: map[string]any{"on": true, "off": false}, DefaultVariant: &on}
	}
	st := memory.New(rev)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	core := control.New(logger, control.Config{}, st)
	srv := httptest.NewServer(server.New(logger, core, server.Config{}))
	t.Cleanup(srv.Close)
	p := initialized(t, srv.URL)
	ctx := context.Background()
	full := p.live.Load().set.Size()
	// Through the core, which serves the change from the moment it answers.
	freeze := true
	if _, err := core.Apply(ctx, control.Change{Actor: "admin:test", Role: switchyard.RoleAdmin, Action: "set_flag",
		Target: switchyard.FreezeUpdates, Reason: "test", Phrase: "ENABLE FREEZE UPDATES",
		Plan: func() (control.Plan, error) {
			return control.SystemFlagPlan(switchyard.FreezeUpdates, &freeze, "value")
		}}); err != nil {
		t.Fatal(err)
	}
	next, err := st.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	live := p.live.Load()
	if live.rev.Number != next.Number {
		t.Fatalf("live revision = %d, want %d", live.rev.Number, next.Number)
	}
	if size := live.set.Size(); size*20 > full {
		t.Fatalf("the toggle's flag set holds %d bytes of its own, against %d for the whole revision: it shares too little", size, full)
	}
	want, err := evaluator.Compile(next, switchyard.ModeDemo)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{switchyard.FreezeUpdates, "flag-7", "flag-1999"} {
		if got, w := live.set.Evaluate(key, nil), want.Evaluate(key, nil); !reflect.DeepEqual(got, w) {
			t.Fatalf("%s = %+v, want %+v as a full compile gives", key, got, w)
		}
	}
}

// initialized is an in-process provider of the server at url, initialized,
// shut down when the test ends: before the server closes, when the test
// registered the server's Close with t.Cleanup first.
func initialized(t *testing.T, url string) *Provider {
	t.Helper()
	p, err := New(url)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.InitWithContext(context.Background(), openfeature.EvaluationContext{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Shutdown)
	return p
}
