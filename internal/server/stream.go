package server

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/control"
)

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

// stream serves GET /v1/stream, server-sent events for in-process
// providers: the current revision at once, then one `revision` event per
// newly installed revision, naming the flags it changed (see follow).
func (s *server) stream(c *gin.Context) {
	s.follow(c,
		func(w sse, sub *control.Subscription) bool {
			return w.event(switchyard.RevisionEvent{Revision: sub.Revision, RevisionID: sub.RevisionID, Mode: sub.Mode, Changed: []string{}})
		},
		func(w sse, ev switchyard.RevisionEvent) bool { return w.event(ev) })
}

// ofrepEventsPath is the OFREP event stream, which bulk evaluations
// advertise.
const ofrepEventsPath = "/ofrep/v1/events"

// ofrepEvents serves GET /ofrep/v1/events, the event stream of OFREP
// ADR-0008 for static-context providers: a `refetchEvaluation` message
// for each new revision that changes a flag, carrying the configuration's
// ETag, which is also the event's ID. At connection it sends one at once
// unless Last-Event-ID names the configuration served: a provider
// reconnecting, or connecting after its bulk evaluation, then missed
// nothing, or refetches (and is answered 304 when nothing it sees
// changed).
func (s *server) ofrepEvents(c *gin.Context) {
	s.follow(c,
		func(w sse, sub *control.Subscription) bool {
			if c.GetHeader("Last-Event-ID") == configETag(sub.Revision, sub.Mode) {
				return true
			}
			return w.refetch(sub.Revision, sub.Mode)
		},
		func(w sse, ev switchyard.RevisionEvent) bool {
			// A revision that changes no flag changes no answer.
			if len(ev.Changed) == 0 {
				return true
			}
			return w.refetch(ev.Revision, ev.Mode)
		})
}

// follow serves a stream of server-sent events: first at once, then next
// for each newly installed revision, and a heartbeat comment every
// heartbeat interval. Every revision this replica installs is sent at
// once: its own changes, and other replicas' as soon as the store
// announces them, with the cache TTL reload as the backstop. It ends when
// the client goes away, the server shuts down or the mode is switched (the
// client then reconnects and reads the new mode's revision).
func (s *server) follow(c *gin.Context, first func(sse, *control.Subscription) bool, next func(sse, switchyard.RevisionEvent) bool) {
	ctx := c.Request.Context()
	sub := s.core.Subscribe(ctx)
	defer sub.Close()
	if s.observer != nil {
		s.observer.StreamOpened()
		defer s.observer.StreamClosed()
	}
	shutdown := shutdownOf(ctx)

	w := sse{c: c, rc: http.NewResponseController(c.Writer), heartbeat: s.heartbeat}
	if srv, ok := ctx.Value(http.ServerContextKey).(*http.Server); ok {
		w.timeout = srv.WriteTimeout
	}
	// The response's end is written after the handler returns.
	defer w.deadline()
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	c.Writer.WriteHeader(http.StatusOK)
	if !first(w, sub) {
		return
	}
	// The headers reach the client even when first wrote nothing.
	c.Writer.Flush()
	last := sub.RevisionID
	heartbeat := time.NewTicker(s.heartbeat)
	defer heartbeat.Stop()
	// In-process providers make no evaluation requests, which are what
	// reload the cache: open streams check it every TTL instead.
	reload := time.NewTicker(s.core.CacheTTL())
	defer reload.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-shutdown:
			return
		case <-sub.Done:
			return
		case ev, ok := <-sub.Events:
			if !ok {
				return
			}
			// The revision served when the subscription began may also
			// come as its first event. Any other is sent, a revision of a
			// rewound history too, whatever its number.
			if ev.RevisionID == last {
				continue
			}
			last = ev.RevisionID
			if !next(w, ev) {
				return
			}
		case <-reload.C:
			sub.Refresh(ctx)
		case <-heartbeat.C:
			if !w.write(": heartbeat\n\n") {
				return
			}
		}
	}
}

// sse writes a stream's events and heartbeats, each flushed at once.
type sse struct {
	c         *gin.Context
	rc        *http.ResponseController
	heartbeat time.Duration
	// timeout is the server's write timeout, which bounds each write of a
	// stream rather than the whole stream; 0 when there is none.
	timeout time.Duration
}

// event writes one `revision` event, advertising the heartbeat interval;
// false means the client is gone.
func (w sse) event(ev switchyard.RevisionEvent) bool {
	ev.HeartbeatMS = max(w.heartbeat.Milliseconds(), 1)
	data, err := json.Marshal(ev)
	if err != nil {
		return false
	}
	return w.write("event: revision\ndata: " + string(data) + "\n\n")
}

// refetchEvaluation is the data of an OFREP event-stream message telling
// a provider to evaluate again (ADR-0008).
type refetchEvaluation struct {
	Type string `json:"type"`
	ETag string `json:"etag"`
}

// refetch writes the OFREP `refetchEvaluation` message of revision in
// mode, its ID and ETag the configuration's; false means the client is
// gone. The envelope's event is `message`, as OFREP asks.
func (w sse) refetch(revision int64, mode string) bool {
	etag := configETag(revision, mode)
	data, err := json.Marshal(refetchEvaluation{Type: "refetchEvaluation", ETag: etag})
	if err != nil {
		return false
	}
	return w.write("id: " + etag + "\nevent: message\ndata: " + string(data) + "\n\n")
}

// write writes text and flushes it; false means the client is gone.
func (w sse) write(text string) bool {
	w.deadline()
	if _, err := w.c.Writer.WriteString(text); err != nil {
		return false
	}
	w.c.Writer.Flush()
	return true
}

// deadline gives the next write the server's write timeout. That timeout
// bounds a whole answer, and a stream is meant to outlast it, so each write
// has it instead: a client that cannot take one event in that time is not
// reading. Setting it fails only when a middleware hides the connection
// from http.ResponseController; the timeout then cuts the stream, and
// clients reconnect.
func (w sse) deadline() {
	if w.timeout > 0 {
		_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	}
}
