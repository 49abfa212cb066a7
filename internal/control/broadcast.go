package control

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
)

// subscriberBuffer is how many revisions a slow stream client may fall
// behind before it is dropped; it then reconnects and resyncs.
const subscriberBuffer = 16

// broadcaster fans newly installed revisions out to subscribers. Publishing
// never blocks an admin write: a subscriber that cannot keep up is
// dropped, its channel closed.
type broadcaster struct {
	mu   sync.Mutex
	subs map[chan switchyard.RevisionEvent]struct{}
}

func newBroadcaster() *broadcaster {
	return &broadcaster{subs: map[chan switchyard.RevisionEvent]struct{}{}}
}

// subscribe returns a channel of revision events and the function that
// ends the subscription.
func (b *broadcaster) subscribe() (<-chan switchyard.RevisionEvent, func()) {
	ch := make(chan switchyard.RevisionEvent, subscriberBuffer)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.subs[ch]; ok {
			delete(b.subs, ch)
			close(ch)
		}
	}
}

// publish announces next, which replaced prev (nil when nothing or only
// the conservative fallback was installed before); rewound says prev was
// of a history the store no longer holds, so every flag of either is
// announced as changed. The changed keys are computed only when someone
// listens.
func (b *broadcaster) publish(prev, next *switchyard.Revision, mode string, rewound bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.subs) == 0 {
		return
	}
	changed := evaluator.ChangedFlags(prev, next, mode)
	if rewound {
		changed = slices.Compact(slices.Sorted(slices.Values(append(
			evaluator.ChangedFlags(nil, prev, mode), evaluator.ChangedFlags(nil, next, mode)...))))
	}
	ev := switchyard.RevisionEvent{Revision: next.Number, RevisionID: next.ID, Mode: mode, Changed: changed}
	for ch := range b.subs {
		select {
		case ch <- ev:
		default:
			delete(b.subs, ch)
			close(ch)
		}
	}
}

// Subscription follows the revisions installed in the mode being served,
// for a stream. It holds that mode's backend until Close, so a live mode
// switch ends it through Done and the client reconnects to the new mode.
type Subscription struct {
	// Mode is the mode the subscription follows.
	Mode string
	// Revision and RevisionID are the revision served when the
	// subscription began.
	Revision   int64
	RevisionID string
	// Events receives each newly installed revision; it is closed when the
	// subscriber fell too far behind and was dropped.
	Events <-chan switchyard.RevisionEvent
	// Done is closed when the mode is switched away from.
	Done <-chan struct{}

	b           *backend
	unsubscribe func()
}

// Subscribe starts following the revisions of the mode being served. The
// caller must Close the subscription.
func (c *Core) Subscribe(ctx context.Context) *Subscription {
	b := c.acquire()
	events, unsubscribe := b.flags.changes.subscribe()
	cur := b.flags.live(ctx)
	return &Subscription{Mode: b.mode, Revision: cur.rev.Number, RevisionID: cur.rev.ID, Events: events, Done: b.done,
		b: b, unsubscribe: unsubscribe}
}

// Refresh reloads the current revision when the cache TTL has run out.
// Other replicas' changes reach a stream as soon as the store announces
// them (store/rediscache hears Postgres NOTIFY, Redis pub/sub and a
// version poll); Refresh is the backstop for a store that announces
// nothing or an announcement that was lost. One reload serves every
// stream.
func (s *Subscription) Refresh(ctx context.Context) { s.b.flags.live(ctx) }

// Await returns once the mode served has installed revision n or a later
// one, or at once when another mode is served; at the latest after d, or
// when ctx ends. An OFREP provider told of revision n by one replica may
// ask another that has not heard of it yet: this gives the second a moment
// to hear (store announcements take milliseconds) before it answers.
func (c *Core) Await(ctx context.Context, mode string, n int64, d time.Duration) {
	b := c.acquire()
	defer b.leave()
	if b.mode != mode {
		return
	}
	events, unsubscribe := b.flags.changes.subscribe()
	defer unsubscribe()
	if cur := b.flags.cur.Load(); !cur.replaceable() && cur.rev.Number >= n {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok || ev.Revision >= n {
				return
			}
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		case <-b.done:
			return
		}
	}
}

// Close ends the subscription and releases the backend it holds.
func (s *Subscription) Close() {
	s.unsubscribe()
	s.b.leave()
}
