package server

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
)

// auditPage is one page of the audit log, newest first. NextBefore is the
// before= of the next (older) page, absent on the last page. Truncated
// says the page holds fewer entries than asked for though older ones
// exist: the next would have taken it past store.AuditPageBytes.
type auditPage struct {
	Entries    []store.AuditEntry `json:"entries"`
	NextBefore int64              `json:"next_before,omitempty"`
	Truncated  bool               `json:"truncated,omitempty"`
}

// listAudit serves GET /v1/admin/audit?limit=&before=.
func (s *server) listAudit(c *gin.Context) {
	limit, before, err := pageQuery(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	q := store.AuditQuery{Limit: store.ClampLimit(int(limit)), Before: before}
	entries, err := s.core.Audit(c.Request.Context(), q)
	if err != nil {
		s.fail(c, err)
		return
	}
	// Sequence numbers have no gaps, so older entries exist exactly when
	// the oldest of the page is not the first.
	page := auditPage{Entries: entries}
	if n := len(entries); n > 0 && entries[n-1].Seq > 1 {
		page.NextBefore = entries[n-1].Seq
		page.Truncated = n < q.Limit
	}
	c.JSON(http.StatusOK, page)
}

// pageQuery reads the limit= and before= of a list read page by page (the
// audit log, change requests); each is 0 when absent.
func pageQuery(c *gin.Context) (limit, before int64, err error) {
	if limit, err = queryInt(c, "limit"); err != nil {
		return 0, 0, err
	}
	before, err = queryInt(c, "before")
	return limit, before, err
}

// queryInt reads an optional positive integer query parameter; 0 when absent.
func queryInt(c *gin.Context, name string) (int64, error) {
	v, ok := c.GetQuery(name)
	if !ok {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, switchyard.Errorf(switchyard.CodeInvalidRequest, "%s must be a positive integer, not %q", name, v).
			With("field", name)
	}
	return n, nil
}

// verifyAudit serves GET /v1/admin/audit/verify: walk the hash chain and
// say whether it is intact, or which entry is the first that is not.
func (s *server) verifyAudit(c *gin.Context) {
	v, err := s.core.VerifyAudit(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}
