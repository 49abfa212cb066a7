package control

import (
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
)

func TestBroadcasterDropsSlowSubscribers(t *testing.T) {
	b := newBroadcaster()
	events, unsubscribe := b.subscribe()
	defer unsubscribe()
	rev := switchyard.InitialRevision(time.Now())
	for range subscriberBuffer + 1 {
		b.publish(rev, rev, switchyard.ModeDemo, false)
	}
	n := 0
	for range events {
		n++
	}
	if n != subscriberBuffer {
		t.Fatalf("a slow subscriber got %d events before its channel closed, want %d", n, subscriberBuffer)
	}
}

// TestAwait: Await returns once the revision it waits for is installed,
// at once for one installed already or for another mode, and after its
// bound for one that never comes.
func TestAwait(t *testing.T) {
	c, _ := newCore(t)
	ctx := t.Context()
	returned := func(mode string, n int64, d time.Duration) <-chan struct{} {
		done := make(chan struct{})
		go func() {
			c.Await(ctx, mode, n, d)
			close(done)
		}()
		return done
	}
	wait := func(what string, done <-chan struct{}) {
		t.Helper()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("Await for %s has not returned", what)
		}
	}

	two := returned(switchyard.ModeDemo, 2, time.Hour)
	if _, err := c.Apply(ctx, examMode(true)); err != nil {
		t.Fatal(err)
	}
	wait("revision 2, once installed", two)
	if b, err := c.Bundle(ctx, 0); err != nil || b.Revision.Number != 2 {
		t.Fatalf("after Await: revision %v, %v; want 2", b.Revision, err)
	}
	wait("revision 1, installed before", returned(switchyard.ModeDemo, 1, time.Hour))
	wait("another mode's revision", returned(switchyard.ModeProduction, 99, time.Hour))
	wait("a revision that never comes, for a moment", returned(switchyard.ModeDemo, 99, time.Millisecond))
}
