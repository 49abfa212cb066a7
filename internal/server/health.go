package server

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"
)

// healthz serves GET /healthz: the process is up and serving.
func (s *server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz serves GET /readyz: ready when the store answers within a short
// deadline; degraded, with the reason, when it does not. Evaluations keep
// being served from the last known good either way.
func (s *server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), readyTimeout)
	defer cancel()
	rev, err := s.store.Current(ctx)
	if err != nil {
		s.logger.Warn("readiness check failed", "err", err)
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "degraded", "reason": "the store does not answer: " + asError(err).Message})
		return
	}
	served := s.flags.cur.Load()
	c.JSON(http.StatusOK, gin.H{"status": "ready", "revision": rev.Number, "served_revision": served.rev.Number})
}
