package server

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/switchyard-dev/switchyard"
)

// heartbeatInterval spaces the comment lines that keep an idle stream's
// connection (and the proxies on its way) from timing out.
const heartbeatInterval = 15 * time.Second

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
// comment heartbeat while idle. Every revision this replica installs is
// sent at once: its own changes, and other replicas' as soon as the store
// announces them, with the cache TTL reload as the backstop. It ends when
// the client goes away, the server shuts down or the mode is switched (the
// client then reconnects and reads the new mode's revision).
func (s *server) stream(c *gin.Context) {
	ctx := c.Request.Context()
	sub := s.core.Subscribe(ctx)
	defer sub.Close()
	shutdown := shutdownOf(ctx)

	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	c.Writer.WriteHeader(http.StatusOK)
	last := sub.Revision
	if !writeEvent(c, switchyard.RevisionEvent{Revision: last, Mode: sub.Mode, Changed: []string{}}) {
		return
	}
	heartbeat := time.NewTicker(heartbeatInterval)
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
			if ev.Revision <= last {
				continue
			}
			last = ev.Revision
			if !writeEvent(c, ev) {
				return
			}
		case <-reload.C:
			sub.Refresh(ctx)
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
func writeEvent(c *gin.Context, ev switchyard.RevisionEvent) bool {
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
