package server

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/switchyard-dev/switchyard/evaluator"
)

// snapshotsCached bounds the session snapshots kept in process.
const snapshotsCached = 10_000

// maxUserIDLength bounds the user ID a session records.
const maxUserIDLength = 256

// snapshot returns the live snapshot of session id: from the cache until it
// expires (snapshots never change), else from the store. With create set, a
// session the store does not know is pinned now, first writer wins.
func (s *server) snapshot(ctx context.Context, b *backend, id string, create bool) (evaluator.Snapshot, error) {
	if snap, ok := b.snapshots.Get(id); ok {
		if s.now().Before(snap.ExpiresAt) {
			return snap, nil
		}
		b.snapshots.Remove(id)
	}
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	snap, err := b.store.Session(rctx, id)
	switch {
	case err == nil:
		b.snapshots.Add(id, snap)
		return snap, nil
	case create && evaluator.ErrorCode(err) == evaluator.CodeNotFound:
		snap, _, err := s.pin(ctx, b, id, "")
		return snap, err
	}
	return evaluator.Snapshot{}, err
}

// pin creates session id's snapshot from the store's current revision,
// unless another request created it first, and returns the stored one.
func (s *server) pin(ctx context.Context, b *backend, id, userID string) (snap evaluator.Snapshot, created bool, err error) {
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	cur, err := b.store.Current(wctx)
	if err != nil {
		return evaluator.Snapshot{}, false, err
	}
	if err := b.flags.install(cur); err != nil {
		s.logger.Error("install the current revision", "revision", cur.Number, "err", err)
	}
	snap, created, err = b.store.CreateSession(wctx, evaluator.NewSnapshot(id, userID, cur, s.now(), s.cfg.SessionTTL))
	if err != nil {
		return evaluator.Snapshot{}, false, err
	}
	b.snapshots.Add(id, snap)
	return snap, created, nil
}

// createSessionRequest is the body of POST /v1/sessions.
type createSessionRequest struct {
	SessionID string `json:"session_id"`
	UserID    string `json:"user_id"`
}

// createSession serves POST /v1/sessions: 201 with a new snapshot, or 200
// with the existing one; a session's snapshot never changes.
func (s *server) createSession(c *gin.Context) {
	var req createSessionRequest
	if err := decodeStrict(c.Request.Body, &req); err != nil {
		s.fail(c, err)
		return
	}
	if err := evaluator.ValidateSessionID(req.SessionID); err != nil {
		s.fail(c, err)
		return
	}
	if len(req.UserID) > maxUserIDLength {
		s.fail(c, fieldError("user_id", "must be at most %d characters", maxUserIDLength))
		return
	}
	b := s.acquire()
	defer b.leave()
	snap, created, err := s.pin(c.Request.Context(), b, req.SessionID, req.UserID)
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
	id := c.Param("id")
	if err := evaluator.ValidateSessionID(id); err != nil {
		s.fail(c, err)
		return
	}
	b := s.acquire()
	defer b.leave()
	snap, err := s.snapshot(c.Request.Context(), b, id, false)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, snap)
}
