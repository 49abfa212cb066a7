package server

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/switchyard-dev/switchyard"
)

// bundleETag names a bundle: a revision is immutable, so its ID and the
// mode identify its content. Its number would not: numbers repeat across
// histories (a restarted demo server, a restored database). A revision
// kept by a version without IDs is named by its number.
func bundleETag(rev *switchyard.Revision, mode string) string {
	if rev.ID == "" {
		return `"` + strconv.FormatInt(rev.Number, 10) + "-" + mode + `"`
	}
	return `"` + rev.ID + "-" + mode + `"`
}

// getBundle serves GET /v1/bundle: the current revision (revalidate before
// reuse, 304 on a matching If-None-Match), or with ?revision=N that
// revision, which never changes and may be cached for good.
func (s *server) getBundle(c *gin.Context) {
	var n int64
	pinned := c.Query("revision") != ""
	if pinned {
		var err error
		if n, err = strconv.ParseInt(c.Query("revision"), 10, 64); err != nil || n < 1 {
			s.fail(c, switchyard.FieldError("revision", "must be a positive revision number"))
			return
		}
	}
	bundle, err := s.core.Bundle(c.Request.Context(), n)
	if err != nil {
		s.fail(c, err)
		return
	}
	etag := bundleETag(bundle.Revision, bundle.Mode)
	c.Header("ETag", etag)
	if pinned {
		c.Header("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		c.Header("Cache-Control", "no-cache")
	}
	if etagMatches(c.GetHeader("If-None-Match"), etag) {
		c.Status(http.StatusNotModified)
		return
	}
	c.JSON(http.StatusOK, bundle)
}
