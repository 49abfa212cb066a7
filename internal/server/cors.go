package server

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// corsPolicy says which browser origins may call one class of routes and
// what a preflight admits for them. Credentials (cookies) are never
// allowed: the API reads bearer tokens, which a page sends itself, and
// the console signs in on its own origin.
type corsPolicy struct {
	anyOrigin bool
	origins   map[string]bool
	// methods and headers answer a preflight.
	methods, headers string
}

// What a preflight admits: applications evaluate (POST) and read the
// bundle, sessions and streams (GET); the admin API also changes the
// runtime. Headers are those the routes read: the token, the body's type,
// conditional requests, an event stream's resumption, a change's
// idempotency key and request ID.
const (
	clientMethods = "GET, POST"
	clientHeaders = "Authorization, Content-Type, If-None-Match, Last-Event-ID, X-Request-Id"
	adminMethods  = "GET, POST, PUT, DELETE"
	adminHeaders  = "Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key, X-Request-Id"
	// exposedHeaders are the answer's headers a page may read: the bulk
	// evaluation's ETag (the OFREP web provider sends it back), when to
	// retry, and the request ID to report.
	exposedHeaders = "ETag, Retry-After, X-Request-Id"
	// preflightMaxAge lets a browser reuse a preflight's answer for ten
	// minutes.
	preflightMaxAge = "600"
)

// isAnyOrigin reports whether an origin setting is the wildcard.
func isAnyOrigin(origin string) bool { return origin == "*" }

func newCORSPolicy(origins []string, methods, headers string) corsPolicy {
	p := corsPolicy{origins: map[string]bool{}, methods: methods, headers: headers}
	for _, o := range origins {
		if isAnyOrigin(o) {
			p.anyOrigin = true
		} else {
			p.origins[strings.ToLower(o)] = true
		}
	}
	return p
}

// enabled reports whether any origin may call the policy's routes.
func (p corsPolicy) enabled() bool { return p.anyOrigin || len(p.origins) > 0 }

// allowOrigin is the Access-Control-Allow-Origin answering origin, or ""
// when it may not call.
func (p corsPolicy) allowOrigin(origin string) string {
	switch {
	case origin == "":
		return ""
	case p.anyOrigin:
		return "*"
	case p.origins[strings.ToLower(origin)]:
		return origin
	}
	return ""
}

// corsPolicyFor returns the policy of the routes path belongs to: what
// applications read (OFREP, sessions, the bundle, the streams) or the
// admin API. Health probes and unknown paths have none.
func (s *server) corsPolicyFor(path string) (corsPolicy, bool) {
	switch {
	case strings.HasPrefix(path, "/ofrep/"), strings.HasPrefix(path, "/v1/sessions"),
		path == "/v1/bundle", path == "/v1/stream":
		return s.clientCORS, true
	case strings.HasPrefix(path, "/v1/admin/"), strings.HasPrefix(path, "/system-mode/"):
		return s.adminCORS, true
	}
	return corsPolicy{}, false
}

// cors lets the configured browser origins call the routes of their
// class: their answers carry Access-Control-Allow-Origin, and a preflight
// (OPTIONS with Access-Control-Request-Method) is answered 204 with what
// it may send. An origin not allowed gets no CORS header, so the browser
// refuses the answer to the page, and its preflight is answered as any
// OPTIONS request is (405). It runs before routing decides, since a
// preflight matches no route.
func (s *server) cors(c *gin.Context) {
	p, ok := s.corsPolicyFor(c.Request.URL.Path)
	if !ok || !p.enabled() {
		c.Next()
		return
	}
	h := c.Writer.Header()
	if !p.anyOrigin {
		// The answer depends on the origin: caches must tell them apart.
		h.Add("Vary", "Origin")
	}
	allow := p.allowOrigin(c.GetHeader("Origin"))
	if allow == "" {
		c.Next()
		return
	}
	h.Set("Access-Control-Allow-Origin", allow)
	if c.Request.Method == http.MethodOptions && c.GetHeader("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", p.methods)
		h.Set("Access-Control-Allow-Headers", p.headers)
		h.Set("Access-Control-Max-Age", preflightMaxAge)
		c.AbortWithStatus(http.StatusNoContent)
		return
	}
	h.Set("Access-Control-Expose-Headers", exposedHeaders)
	c.Next()
}
