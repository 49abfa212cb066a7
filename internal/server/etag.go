package server

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// The entity tags of what applications read live here, so what names a
// configuration is decided in one place.

// configETag names a flag configuration, a revision seen in a mode: the
// ETag of GET /v1/bundle and the etag (and ID) of an OFREP
// refetchEvaluation event. A revision is immutable, so its number and the
// mode identify its content.
func configETag(revision int64, mode string) string {
	return `"` + strconv.FormatInt(revision, 10) + "-" + mode + `"`
}

// parseConfigETag reads a configETag back, as an OFREP provider returns
// it in flagConfigEtag; ok is false for anything else.
func parseConfigETag(etag string) (revision int64, mode string, ok bool) {
	inner, found := strings.CutPrefix(etag, `"`)
	if inner, found = strings.CutSuffix(inner, `"`); !found {
		return 0, "", false
	}
	n, mode, found := strings.Cut(inner, "-")
	if !found {
		return 0, "", false
	}
	revision, err := strconv.ParseInt(n, 10, 64)
	return revision, mode, err == nil && revision > 0
}

// etagMatches reports whether an If-None-Match header lists etag, comparing
// weakly as RFC 9110 asks for If-None-Match.
func etagMatches(header, etag string) bool {
	etag = strings.TrimPrefix(etag, "W/")
	for tag := range strings.SplitSeq(header, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == "*" || tag == etag {
			return true
		}
	}
	return false
}

// catchUpTimeout bounds how long a bulk evaluation triggered by an OFREP
// event waits for this replica to install the revision the event named
// (another replica may have sent it a moment before this one heard of it).
const catchUpTimeout = time.Second

// bulkETag is the weak ETag of a bulk evaluation, a digest of its answers
// alone (appendBulk leaves the revision out of them): it changes exactly
// when some answer (value, variant, reason, error, metadata) does, so a
// change that leaves a context's answers alone leaves their ETag alone,
// and an OFREP provider polling, or refetching after an event, is answered
// 304 and tells its application nothing. Weak, since the body's revision
// may differ.
func bulkETag(answers []byte) string {
	sum := sha256.Sum256(answers)
	return `W/"` + hex.EncodeToString(sum[:12]) + `"`
}
