package server

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/switchyard-dev/switchyard/evaluator"
)

// Bundle is what GET /v1/bundle serves: a whole revision and the system
// mode it is seen in. An in-process provider compiles it with
// evaluator.Compile(Revision, Mode), the very call the server makes, so
// local evaluation cannot drift from the server's.
type Bundle struct {
	Revision *evaluator.Revision `json:"revision"`
	Mode     string              `json:"mode"`
}

// bundleETag names a bundle: a revision is immutable, so its number and the
// mode identify its content.
func bundleETag(revision int64, mode string) string {
	return `"` + strconv.FormatInt(revision, 10) + "-" + mode + `"`
}

// getBundle serves GET /v1/bundle: the current revision (revalidate before
// reuse, 304 on a matching If-None-Match), or with ?revision=N that
// revision, which never changes and may be cached for good.
func (s *server) getBundle(c *gin.Context) {
	b := s.acquire()
	defer b.leave()
	var rev *evaluator.Revision
	pinned := c.Query("revision") != ""
	if pinned {
		n, err := strconv.ParseInt(c.Query("revision"), 10, 64)
		if err != nil || n < 1 {
			s.fail(c, fieldError("revision", "must be a positive revision number"))
			return
		}
		if rev, err = b.flags.revision(c.Request.Context(), n); err != nil {
			s.fail(c, err)
			return
		}
	} else {
		cur := b.flags.live(c.Request.Context())
		if cur.fallback {
			s.fail(c, evaluator.Errorf(evaluator.CodeUnavailable, "the store has not been reached yet; try again"))
			return
		}
		rev = cur.rev
	}
	etag := bundleETag(rev.Number, b.mode)
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
	c.JSON(http.StatusOK, Bundle{Revision: rev, Mode: b.mode})
}
