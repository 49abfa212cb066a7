package server

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/switchyard-dev/switchyard"
)

// headerRequestID carries the request ID in both directions.
const headerRequestID = "X-Request-Id"

// assignRequestID gives every response an X-Request-Id: the caller's, when
// it is a sane one, so a request can be followed across services, or a
// fresh random one. The audit log records it.
func assignRequestID(c *gin.Context) {
	id := c.GetHeader(headerRequestID)
	if !saneRequestID(id) {
		id = rand.Text()
	}
	c.Writer.Header().Set(headerRequestID, id)
	c.Next()
}

// maxIDLength bounds the identifiers a caller chooses: request IDs and
// idempotency keys.
const maxIDLength = 128

// saneRequestID accepts 1 to maxIDLength letters, digits and . _ : -,
// which are safe in logs and headers. Idempotency keys are held to the
// same rule.
func saneRequestID(id string) bool {
	if id == "" || len(id) > maxIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch b := id[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '.', b == '_', b == ':', b == '-':
		default:
			return false
		}
	}
	return true
}

// requestID returns the ID assignRequestID gave the request.
func requestID(c *gin.Context) string { return c.Writer.Header().Get(headerRequestID) }

// recoverPanics turns a panic in a handler into a logged 500 in the API's
// error shape, so one bad request never takes the server down.
func (s *server) recoverPanics(c *gin.Context) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler {
			// The handler asked net/http to drop the connection.
			panic(v)
		}
		s.logger.Error("panic serving request", "method", c.Request.Method, "path", c.Request.URL.Path,
			"request_id", requestID(c), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		c.Abort()
		if !c.Writer.Written() {
			s.fail(c, fmt.Errorf("panic: %v", v))
		}
	}()
	c.Next()
}

// limitBody caps every request body at MaxBodyBytes; reading past it fails
// with *http.MaxBytesError, which the decoders answer with a clear 413.
func (s *server) limitBody(c *gin.Context) {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.maxBodyBytes)
	c.Next()
}

// notFound answers unknown routes in the API's error shape.
func (s *server) notFound(c *gin.Context) {
	s.fail(c, switchyard.Errorf(switchyard.CodeNotFound, "no route %s %s", c.Request.Method, c.Request.URL.Path))
}

// methodNotAllowed answers a known path asked with a method it does not
// serve, in the API's error shape; Gin has set the Allow header.
func (s *server) methodNotAllowed(c *gin.Context) {
	allow := c.Writer.Header().Get("Allow")
	s.fail(c, switchyard.Errorf(switchyard.CodeMethodNotAllowed, "%s does not serve %s; use %s", c.Request.URL.Path, c.Request.Method, allow).
		With("allow", strings.Split(allow, ", ")))
}

// noSniff tells browsers to take every response as the type it declares,
// never to guess another from its content. The header is set to one
// shared value, which nothing writes into, rather than with Header().Set,
// which allocates it anew for every evaluation.
func noSniff(c *gin.Context) {
	c.Writer.Header()["X-Content-Type-Options"] = nosniff
	c.Next()
}

// nosniff is the value of every response's X-Content-Type-Options.
var nosniff = []string{"nosniff"}

// noStore keeps an answer out of every cache, a browser's or a proxy's:
// the answers of routes that need a token hold what only a token may
// read, and readiness is the state now.
func noStore(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Next()
}
