package server

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/switchyard-dev/switchyard"
)

// createSessionRequest is the body of POST /v1/sessions. Revision and
// RevisionID, both or neither, name the revision a client pinned the
// session to itself (an in-process provider pins a session at first sight
// and registers it): the session is pinned to it unless it exists.
type createSessionRequest struct {
	SessionID  string `json:"session_id"`
	UserID     string `json:"user_id"`
	Revision   int64  `json:"revision"`
	RevisionID string `json:"revision_id"`
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
	var snap switchyard.Snapshot
	var created bool
	var err error
	switch {
	case req.Revision == 0 && req.RevisionID == "":
		snap, created, err = s.core.Pin(c.Request.Context(), s.client(c), req.SessionID, req.UserID)
	case req.Revision < 1 || req.RevisionID == "":
		err = switchyard.FieldError("revision", "must come with revision_id, the two naming the revision the session was pinned to; give both or neither")
	default:
		snap, created, err = s.core.PinAt(c.Request.Context(), req.SessionID, req.UserID, req.Revision, req.RevisionID)
	}
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
