package server

import (
	"context"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
)

// degradedReporter is a store that knows it is running degraded though it
// answers (store/rediscache with Redis down reads Postgres directly). The
// server reports it in /readyz without importing the store's package.
type degradedReporter interface {
	Degraded() (reason string, degraded bool)
}

// healthz serves GET /healthz: the process is up and serving.
func (s *server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz serves GET /readyz. It is 503, degraded with the reason, while
// this replica cannot read the store or serves a stand-in for the store's
// revision (the last known one, the state file's, the conservative
// fallback): such a replica should not take new traffic from one that can.
// A store that answers but runs degraded itself (Redis down, reads going
// to Postgres) serves exactly the right values, so that is 200 with status
// degraded and the reason: a shared Redis failing must not make every
// replica unready at once.
func (s *server) readyz(c *gin.Context) {
	b := s.acquire()
	defer b.leave()
	ctx, cancel := context.WithTimeout(c.Request.Context(), readyTimeout)
	defer cancel()
	rev, err := b.store.Current(ctx)
	if err != nil {
		s.logger.Warn("readiness check failed", "mode", b.mode, "err", err)
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "degraded", "reason": b.degradedReason(err)})
		return
	}
	b.flags.read(rev)
	served := b.flags.cur.Load()
	if served.replaceable() {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "degraded", "reason": b.servedReason(served)})
		return
	}
	if reason, degraded := b.degraded(); degraded {
		c.JSON(http.StatusOK, gin.H{"status": "degraded", "reason": reason, "revision": rev.Number, "served_revision": served.rev.Number})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready", "revision": rev.Number, "served_revision": served.rev.Number})
}

// degraded says whether the service runs degraded and why: it serves a
// stand-in for the store's revision, or the store says it is degraded.
func (b *backend) degraded() (string, bool) {
	if err := b.flags.lastStoreError(); err != nil {
		return b.degradedReason(err), true
	}
	if c := b.flags.cur.Load(); c.replaceable() {
		return b.servedReason(c), true
	}
	if d, ok := b.store.(degradedReporter); ok {
		return d.Degraded()
	}
	return "", false
}

// degradedReason names a store failure and what is served meanwhile.
func (b *backend) degradedReason(err error) string {
	return "the store does not answer (" + asError(err).Message + "); " + b.servedReason(b.flags.cur.Load())
}

// servedReason names what evaluations are served from.
func (b *backend) servedReason(c *compiled) string {
	switch {
	case c.fallback:
		return "serving the conservative fallback"
	case c.stale:
		return fmt.Sprintf("serving last-known-good revision %d from the state file", c.rev.Number)
	}
	return fmt.Sprintf("serving last known revision %d", c.rev.Number)
}
