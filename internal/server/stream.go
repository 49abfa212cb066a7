package server

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/switchyard-dev/switchyard/evaluator"
)

// heartbeatInterval spaces the comment lines that keep an idle stream's
// connection (and the proxies on its way) from timing out.
const heartbeatInterval = 15 * time.Second

// subscriberBuffer is how many revisions a slow stream client may fall
// behind before it is dropped; it then reconnects and resyncs.
const subscriberBuffer = 16

// revisionEvent announces a new revision and the flags it changed, and the
// mode serving it: revision numbers restart with the store of each mode,
// so after a mode switch the same number may name another revision.
type revisionEvent struct {
	Revision int64    `json:"revision"`
	Mode     string   `json:"mode"`
	Changed  []string `json:"changed"`
}

// broadcaster fans newly installed revisions out to the /v1/stream
// clients. Publishing never blocks an admin write: a subscriber that cannot
// keep up is dropped, its channel closed.
type broadcaster struct {
	mu   sync.Mutex
	subs map[chan revisionEvent]struct{}
}

func newBroadcaster() *broadcaster {
	return &broadcaster{subs: map[chan revisionEvent]struct{}{}}
}

// subscribe returns a channel of revision events and the function that
// ends the subscription.
func (b *broadcaster) subscribe() (<-chan revisionEvent, func()) {
	ch := make(chan revisionEvent, subscriberBuffer)
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
// the conservative fallback was installed before). The changed keys are
// computed only when someone listens.
func (b *broadcaster) publish(prev, next *evaluator.Revision, mode string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.subs) == 0 {
		return
	}
	ev := revisionEvent{Revision: next.Number, Mode: mode, Changed: evaluator.ChangedFlags(prev, next, mode)}
	for ch := range b.subs {
		select {
		case ch <- ev:
		default:
			delete(b.subs, ch)
			close(ch)
		}
	}
}

// shutdowns hands each stream a channel closed when the *http.Server
// serving it shuts down: http.Server.Shutdown waits for handlers but does
// not cancel their contexts, so a stream must hear of it another way. The
// handler is all the server package controls, hence the hook registered
// from within it, once per *http.Server.
var shutdowns = struct {
	mu sync.Mutex
	m  map[*http.Server]chan struct{}
}{m: map[*http.Server]chan struct{}{}}

// shutdownOf returns the channel closed when the server serving ctx's
// request shuts down; nil (never ready) when ctx names no server.
func shutdownOf(ctx context.Context) <-chan struct{} {
	srv, ok := ctx.Value(http.ServerContextKey).(*http.Server)
	if !ok {
		return nil
	}
	shutdowns.mu.Lock()
	defer shutdowns.mu.Unlock()
	ch, ok := shutdowns.m[srv]
	if !ok {
		ch = make(chan struct{})
		shutdowns.m[srv] = ch
		srv.RegisterOnShutdown(func() {
			shutdowns.mu.Lock()
			defer shutdowns.mu.Unlock()
			delete(shutdowns.m, srv)
			close(ch)
		})
	}
	return ch
}

// stream serves GET /v1/stream, server-sent events: the current revision
// at once, then one `revision` event per newly installed revision, and a
// comment heartbeat while idle. Changes made through this server are sent
// at once, other replicas' once the cache TTL reload sees them. It ends when
// the client goes away, the server shuts down or the mode is switched (the
// client then reconnects and reads the new mode's revision).
func (s *server) stream(c *gin.Context) {
	b := s.acquire()
	defer b.leave()
	events, unsubscribe := b.flags.changes.subscribe()
	defer unsubscribe()
	ctx := c.Request.Context()
	shutdown := shutdownOf(ctx)
	cur := b.flags.live(ctx)

	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	c.Writer.WriteHeader(http.StatusOK)
	last := cur.rev.Number
	if !writeEvent(c, revisionEvent{Revision: last, Mode: b.mode, Changed: []string{}}) {
		return
	}
	heartbeat := time.NewTicker(heartbeatInterval)
	defer heartbeat.Stop()
	// In-process providers make no evaluation requests, which are what
	// reload the cache: open streams check it every TTL instead, so other
	// replicas' changes reach them too. One reload serves every stream.
	reload := time.NewTicker(s.cfg.CacheTTL)
	defer reload.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-shutdown:
			return
		case <-b.done:
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.Revision <= last {
				continue
			}
			last = ev.Revision
			if !writeEvent(c, ev) {
				return
			}
		case <-reload.C:
			b.flags.live(ctx)
		case <-heartbeat.C:
			if _, err := c.Writer.WriteString(": heartbeat\n\n"); err != nil {
				return
			}
			c.Writer.Flush()
		}
	}
}

// writeEvent writes one `revision` event and flushes it; false means the
// client is gone.
func writeEvent(c *gin.Context, ev revisionEvent) bool {
	data, err := json.Marshal(ev)
	if err != nil {
		return false
	}
	if _, err := c.Writer.WriteString("event: revision\ndata: " + string(data) + "\n\n"); err != nil {
		return false
	}
	c.Writer.Flush()
	return true
}
