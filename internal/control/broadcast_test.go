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
