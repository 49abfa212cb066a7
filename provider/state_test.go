package provider_test

import (
	"context"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-dev/switchyard/provider"
	"github.com/switchyard-dev/switchyard/store/memory"
)

// TestState: what an application exports of its provider follows what the
// provider serves: the server's revision once ready, the sessions it pins,
// and STALE once the server is out of reach beyond the grace period.
func TestState(t *testing.T) {
	ts := newTestServer(t, memory.NewDemo())
	p, c := newClient(t, ts, provider.WithGracePeriod(100*time.Millisecond), provider.WithPollInterval(5*time.Millisecond))
	stale := events(c, openfeature.ProviderStale)
	s := p.State()
	if !s.Ready || s.Revision != 1 || s.RevisionID == "" || s.Mode != "demo" || s.Stale || s.LastContact.IsZero() || s.SessionsCached != 0 {
		t.Fatalf("state once ready = %+v, want revision 1 of demo, not stale, heard from, no session", s)
	}
	session := openfeature.NewEvaluationContext("u-1", map[string]any{provider.SessionIDKey: "s-1"})
	if _, err := c.BooleanValue(context.Background(), "EXAM_MODE", true, session); err != nil {
		t.Fatal(err)
	}
	if n := p.State().SessionsCached; n != 1 {
		t.Fatalf("sessions cached after one session's evaluation = %d, want 1", n)
	}
	ts.setDown(true)
	next(t, stale, "stale")
	if s := p.State(); !s.Stale || s.Revision != 1 {
		t.Fatalf("state with the server down = %+v, want stale at revision 1", s)
	}
}
