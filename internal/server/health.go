package server

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// healthz serves GET /healthz: the process is up and serving.
func (s *server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz serves GET /readyz: 200 with status ready, or degraded and the
// reason while the store answers but runs degraded (Redis down); 503,
// degraded with the reason, while this replica cannot read the store or
// serves a stand-in for its revision (control.Core.Readiness). Probes ask
// without a token and are told the reason in general words; an operator
// (an admin or viewer token) is told what the stores answered, which names
// their hosts, users and databases. A client token is told what a probe is.
func (s *server) readyz(c *gin.Context) {
	r := s.core.Readiness(c.Request.Context())
	reason := r.Reason
	if who, ok := s.auth.identify(c.GetHeader("Authorization")); ok && who.Role.Operates() {
		reason = r.Detail
	}
	if !r.Ready {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": r.Status, "reason": reason})
		return
	}
	body := gin.H{"status": r.Status, "revision": r.Revision, "served_revision": r.ServedRevision}
	if reason != "" {
		body["reason"] = reason
	}
	c.JSON(http.StatusOK, body)
}
