package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/store"
)

// proposalRequest is the body of POST /v1/admin/changes: the action, the
// fields its direct route takes (every other key of the object), its
// phrase and reason, and when it is to apply, be reverted and expire.
type proposalRequest struct {
	confirmation
	Action    string
	ApplyAt   *time.Time
	RevertAt  *time.Time
	ExpiresAt *time.Time
	Fields    json.RawMessage
}

// UnmarshalJSON takes the proposal's own keys out of the object and keeps
// the others, compacted, as the fields of the change proposed.
func (r *proposalRequest) UnmarshalJSON(data []byte) error {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return err
	}
	take := func(key string, into any, want string) error {
		raw, ok := all[key]
		if !ok {
			return nil
		}
		delete(all, key)
		if err := json.Unmarshal(raw, into); err != nil {
			return switchyard.FieldError(key, "must be %s", want)
		}
		return nil
	}
	const rfc3339 = "a time in RFC 3339 such as 2026-06-15T09:00:00+02:00"
	for _, f := range []struct {
		key, want string
		into      any
	}{
		{"action", "a string", &r.Action},
		{"phrase", "a string", &r.Phrase},
		{"reason", "a string", &r.Reason},
		{"apply_at", rfc3339, &r.ApplyAt},
		{"revert_at", rfc3339, &r.RevertAt},
		{"expires_at", rfc3339, &r.ExpiresAt},
	} {
		if err := take(f.key, f.into, f.want); err != nil {
			return err
		}
	}
	if all == nil {
		all = map[string]json.RawMessage{}
	}
	fields, err := json.Marshal(all)
	r.Fields = fields
	return err
}

// proposeChange serves POST /v1/admin/changes: propose a change instead of
// applying it. It answers 201 with the request; one the policy asks no
// approval for, and due, is applied by then.
func (s *server) proposeChange(c *gin.Context) {
	var req proposalRequest
	ch := s.decodeChange(c, switchyard.ActionPropose, "", &req, nil)
	v, err := s.core.Propose(c.Request.Context(), control.Proposal{Change: ch, Action: req.Action, Fields: req.Fields,
		ApplyAt: req.ApplyAt, RevertAt: req.RevertAt, ExpiresAt: req.ExpiresAt})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Location", "/v1/admin/changes/"+itoa(v.ID))
	c.JSON(http.StatusCreated, v)
}

// changePage is one page of change requests, newest first. NextBefore is
// the before= of the next (older) page, absent on the last.
type changePage struct {
	Changes    []switchyard.ChangeRequest `json:"changes"`
	NextBefore int64                      `json:"next_before,omitempty"`
}

// listChanges serves GET /v1/admin/changes?state=&limit=&before=.
func (s *server) listChanges(c *gin.Context) {
	limit, before, err := pageQuery(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	state := switchyard.ChangeState(c.Query("state"))
	if state != "" && !state.Valid() {
		s.fail(c, switchyard.FieldError("state", "must be one of %v, not %q", switchyard.ChangeStates, state))
		return
	}
	q := store.ChangeQuery{State: state, Limit: store.ClampLimit(int(limit)), Before: before}
	changes, err := s.core.ChangeRequests(c.Request.Context(), q)
	if err != nil {
		s.fail(c, err)
		return
	}
	page := changePage{Changes: changes}
	if n := len(changes); n == q.Limit && changes[n-1].ID > 1 {
		page.NextBefore = changes[n-1].ID
	}
	c.JSON(http.StatusOK, page)
}

// changeID reads the {id} of a change request route, answering 404 for
// one that names no request.
func (s *server) changeID(c *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		s.fail(c, switchyard.Errorf(switchyard.CodeNotFound, "change request %q does not exist", c.Param("id")))
		return 0, false
	}
	return id, true
}

// getChange serves GET /v1/admin/changes/{id}: the request, with the diff
// of the resolved runtime it makes, or would make now.
func (s *server) getChange(c *gin.Context) {
	id, ok := s.changeID(c)
	if !ok {
		return
	}
	v, err := s.core.ChangeRequest(c.Request.Context(), id)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

// approveChange serves POST /v1/admin/changes/{id}/approve: another admin
// approves, typing the change's phrase.
func (s *server) approveChange(c *gin.Context) {
	var req confirmation
	s.moveChange(c, switchyard.ActionApprove, &req, s.core.Approve)
}

// reasonRequest is the body of a transition that takes no phrase.
type reasonRequest struct {
	Reason string `json:"reason"`
}

func (r *reasonRequest) confirm() *confirmation { return &confirmation{Reason: r.Reason} }

// rejectChange serves POST /v1/admin/changes/{id}/reject.
func (s *server) rejectChange(c *gin.Context) {
	var req reasonRequest
	s.moveChange(c, switchyard.ActionReject, &req, s.core.Reject)
}

// cancelChange serves POST /v1/admin/changes/{id}/cancel.
func (s *server) cancelChange(c *gin.Context) {
	var req reasonRequest
	s.moveChange(c, switchyard.ActionCancel, &req, s.core.Cancel)
}

// moveChange decodes a transition of the request the path names into req
// and makes it with move.
func (s *server) moveChange(c *gin.Context, action string, req changeRequest,
	move func(ctx context.Context, id int64, ch control.Change) (control.ChangeView, error)) {
	id, ok := s.changeID(c)
	if !ok {
		return
	}
	ch := s.decodeChange(c, action, switchyard.ChangeTarget(id), req, nil)
	v, err := move(c.Request.Context(), id, ch)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}
