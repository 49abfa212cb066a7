package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/switchyard-dev/switchyard"
)

// Proposal is a change proposed instead of applied: it is applied once the
// approvals the server's policy asks for have arrived and its ApplyAt has
// come, whichever is later.
type Proposal struct {
	// Action names the change as the audit log does: set_flag,
	// set_profile, set_override, clear_override, register_module,
	// update_profile or import_flags.
	Action string
	// Fields are the fields the action's direct route takes, its path
	// parameter included: {"flag": "EXAM_MODE", "value": true} for
	// set_flag, {"module": "mastery"} for clear_override.
	Fields map[string]any
	// ApplyAt is when to apply it (nil: once approved), RevertAt when to
	// put back what it changed (nil: never), ExpiresAt when it lapses
	// unless applied (nil: never).
	ApplyAt, RevertAt, ExpiresAt *time.Time
}

// ChangeRequest is a change request as GET /v1/admin/changes/{id} answers
// it: the request, and the resolved runtime it makes (Diff) or why it
// would be refused now (Problem). The other routes answer the request
// alone.
type ChangeRequest struct {
	switchyard.ChangeRequest
	Diff    *ChangeDiff `json:"diff,omitempty"`
	Problem string      `json:"problem,omitempty"`
}

// ChangeDiff is the resolved runtime before and after a change, and the
// keys of the flags whose evaluation may differ.
type ChangeDiff struct {
	Before  switchyard.Runtime `json:"before"`
	After   switchyard.Runtime `json:"after"`
	Changed []string           `json:"changed"`
}

// ChangeQuery pages through the change requests, newest first.
type ChangeQuery struct {
	// State keeps the requests in one state (switchyard.ChangeProposed,
	// ...); empty keeps all.
	State switchyard.ChangeState
	// Limit is how many requests a page holds at most: 1 to 1000, 0 for
	// the server's default (50).
	Limit int
	// Before continues from an earlier page's NextBefore.
	Before int64
}

// ChangePage is one page of change requests, newest first. NextBefore is
// the Before of the next, older page; 0 on the last page.
type ChangePage struct {
	Changes    []switchyard.ChangeRequest `json:"changes"`
	NextBefore int64                      `json:"next_before,omitempty"`
}

// ProposeChange proposes p (an admin's token). w's phrase is the change's
// own (switchyard.SystemFlagPhrase and the others), its IfRevision the
// revision the change is based on (0: the current one), and its
// idempotency key makes a proposal sent again answer the request it made.
func (c *Client) ProposeChange(ctx context.Context, p Proposal, w Write) (*ChangeRequest, error) {
	body := make(map[string]any, len(p.Fields)+6)
	for k, v := range p.Fields {
		body[k] = v
	}
	body["action"] = p.Action
	body["phrase"] = w.Phrase
	body["reason"] = w.Reason
	for key, at := range map[string]*time.Time{"apply_at": p.ApplyAt, "revert_at": p.RevertAt, "expires_at": p.ExpiresAt} {
		if at != nil {
			body[key] = at.Format(time.RFC3339Nano)
		}
	}
	cl := w.call(http.MethodPost, "/v1/admin/changes", body)
	cl.answers = []int{http.StatusCreated}
	var cr ChangeRequest
	if _, err := c.do(ctx, cl, &cr); err != nil {
		return nil, err
	}
	return &cr, nil
}

// ChangeRequests returns one page of change requests (a viewer's token).
func (c *Client) ChangeRequests(ctx context.Context, q ChangeQuery) (*ChangePage, error) {
	v := url.Values{}
	if q.State != "" {
		v.Set("state", string(q.State))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Before > 0 {
		v.Set("before", strconv.FormatInt(q.Before, 10))
	}
	path := "/v1/admin/changes"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var p ChangePage
	if _, err := c.do(ctx, call{method: http.MethodGet, path: path}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// ChangeRequest returns change request id with its diff (a viewer's
// token); an unknown one is NOT_FOUND.
func (c *Client) ChangeRequest(ctx context.Context, id int64) (*ChangeRequest, error) {
	var cr ChangeRequest
	if _, err := c.do(ctx, call{method: http.MethodGet, path: changePath(id)}, &cr); err != nil {
		return nil, err
	}
	return &cr, nil
}

// ApproveChange approves change request id (an admin's token, not the
// proposer's: theirs is FORBIDDEN); w's phrase is the change's. The
// server ignores IfRevision and the idempotency key: approved already,
// an approval answers CHANGE_REQUEST_STATE.
func (c *Client) ApproveChange(ctx context.Context, id int64, w Write) (*ChangeRequest, error) {
	return c.moveChange(ctx, id, "approve", w.confirmation())
}

// RejectChange rejects change request id, for reason (an admin's token,
// not the proposer's).
func (c *Client) RejectChange(ctx context.Context, id int64, reason string) (*ChangeRequest, error) {
	return c.moveChange(ctx, id, "reject", map[string]string{"reason": reason})
}

// CancelChange cancels change request id, for reason (an admin's token,
// the proposer's or another's).
func (c *Client) CancelChange(ctx context.Context, id int64, reason string) (*ChangeRequest, error) {
	return c.moveChange(ctx, id, "cancel", map[string]string{"reason": reason})
}

// moveChange sends a transition of change request id with body.
func (c *Client) moveChange(ctx context.Context, id int64, transition string, body any) (*ChangeRequest, error) {
	var cr ChangeRequest
	if _, err := c.do(ctx, call{method: http.MethodPost, path: changePath(id) + "/" + transition, body: body}, &cr); err != nil {
		return nil, err
	}
	return &cr, nil
}

func changePath(id int64) string { return "/v1/admin/changes/" + strconv.FormatInt(id, 10) }
