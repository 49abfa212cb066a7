package server

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// createSessionRequest is the body of POST /v1/sessions.
type createSessionRequest struct {
	SessionID string `json:"session_id"`
	UserID    string `json:"user_id"`
}

// createSession serves POST /v1/sessions: 201 with a new snapshot, or 200
// with the existing one; a session's snapshot never changes. A new session
// past a limit answers 429 (see control.Core.Pin).
func (s *server) createSession(c *gin.Context) {
	var req createSessionRequest
	if err := decodeStrict(c.Request.Body, &req); err != nil {
		s.fail(c, err)
		return
	}
	snap, created, err := s.core.Pin(c.Request.Context(), s.client(c), req.SessionID, req.UserID)
	if err != nil {
		s.fail(c, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	c.JSON(status, snap)
}

// getSession serves GET /v1/sessions/{id}.
func (s *server) getSession(c *gin.Context) {
	snap, err := s.core.Session(c.Request.Context(), c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, snap)
}
