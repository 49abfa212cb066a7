package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/switchyard-dev/switchyard"
)

// Status returns the runtime at the current revision (a viewer's token).
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/admin/runtime/status"}, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// SystemMode returns the mode served, who set it, and production's
// checklist, checked now (a viewer's token).
func (c *Client) SystemMode(ctx context.Context) (*Posture, error) {
	var p Posture
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/admin/system-mode/current"}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Readiness returns whether the server is ready, and why not; with a token
// the reason names what the stores answered. A server that is not ready
// is an answer, not an error.
func (c *Client) Readiness(ctx context.Context) (*Readiness, error) {
	var r Readiness
	a, err := c.do(ctx, call{method: http.MethodGet, path: "/readyz", answers: []int{http.StatusServiceUnavailable}}, &r)
	if err != nil {
		return nil, err
	}
	r.Ready = a.status == http.StatusOK
	return &r, nil
}

// AuditQuery pages through the audit log, newest first.
type AuditQuery struct {
	// Limit is how many entries a page holds at most: 1 to 1000, 0 for the
	// server's default (50).
	Limit int
	// Before continues from an earlier page's NextBefore; 0 starts at the
	// newest entry.
	Before int64
}

// Audit returns one page of the audit log (a viewer's token).
func (c *Client) Audit(ctx context.Context, q AuditQuery) (*AuditPage, error) {
	v := url.Values{}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Before > 0 {
		v.Set("before", strconv.FormatInt(q.Before, 10))
	}
	path := "/v1/admin/audit"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var p AuditPage
	if _, err := c.do(ctx, call{method: http.MethodGet, path: path}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// VerifyAudit walks the audit log's hash chain on the server and says
// whether it is intact (a viewer's token). A broken chain is an answer
// (OK false), not an error.
func (c *Client) VerifyAudit(ctx context.Context) (*Verification, error) {
	var v Verification
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/admin/audit/verify"}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Session returns a session's snapshot: the revision it is pinned to and
// the runtime it is served. An unknown or expired session is NOT_FOUND.
func (c *Client) Session(ctx context.Context, id string) (*switchyard.Snapshot, error) {
	var s switchyard.Snapshot
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/sessions/" + url.PathEscape(id)}, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Evaluate evaluates one flag over OFREP with the evaluation context
// evalCtx (targetingKey, sessionId and any attribute); a flag that cannot
// be evaluated is an Evaluation with ErrorCode set, not an error.
func (c *Client) Evaluate(ctx context.Context, flag string, evalCtx map[string]any) (*Evaluation, error) {
	if evalCtx == nil {
		evalCtx = map[string]any{}
	}
	var e Evaluation
	cl := call{
		method:  http.MethodPost,
		path:    "/ofrep/v1/evaluate/flags/" + url.PathEscape(flag),
		body:    map[string]any{"context": evalCtx},
		answers: []int{http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge},
	}
	if _, err := c.do(ctx, cl, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// Export returns the current revision's flags, the runtime's own
// included, as a flagd document, and the revision's number (a viewer's
// token).
func (c *Client) Export(ctx context.Context) (json.RawMessage, int64, error) {
	var doc json.RawMessage
	a, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/admin/export?format=flagd"}, &doc)
	if err != nil {
		return nil, 0, err
	}
	revision, _ := strconv.ParseInt(strings.Trim(a.header.Get("ETag"), `"`), 10, 64)
	return doc, revision, nil
}
