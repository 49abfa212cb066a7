package server

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
)

// Every failure is answered here, in one of the shapes its route's
// protocol defines: the API's {"error": {"code", "message", ...}}, and
// OFREP's evaluation failure {"key", "errorCode", "errorDetails"} and
// general error {"errorDetails"}. statusFor and ofrepStatusFor are the
// only places that map a code to an HTTP status, so a code always means
// the same status on every route.

// statusFor maps an API error code to its HTTP status.
func statusFor(code switchyard.Code) int {
	switch code {
	case switchyard.CodeInvalidRequest, switchyard.CodePhraseMismatch, switchyard.CodeReasonRequired,
		switchyard.CodeUnknownFlag, switchyard.CodeUnknownProfile, switchyard.CodeUnknownModule,
		switchyard.CodeUnknownVersion, switchyard.CodeRequirementsMissing:
		return http.StatusBadRequest
	case switchyard.CodeUnauthorized:
		return http.StatusUnauthorized
	case switchyard.CodeForbidden:
		return http.StatusForbidden
	case switchyard.CodeNotFound:
		return http.StatusNotFound
	case switchyard.CodeRevisionConflict:
		return http.StatusPreconditionFailed
	case switchyard.CodeIdempotencyKeyReused:
		return http.StatusUnprocessableEntity
	case switchyard.CodeAdminFreezeActive:
		return http.StatusLocked
	case switchyard.CodeRateLimited, switchyard.CodeSessionLimit:
		return http.StatusTooManyRequests
	case switchyard.CodeUnavailable:
		return http.StatusServiceUnavailable
	case switchyard.CodeOutcomeUnknown:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// retryAfterSeconds is the Retry-After of a 503 or 504: long enough for a
// store that dropped a connection to take a new one.
const retryAfterSeconds = "2"

// fail answers err in the API's one error shape,
// {"error": {"code", "message", ...fields}}, and logs server-side failures.
// A 503 (nothing was applied) and a 504 (the outcome is unknown) say when
// to try again; a change is sent again with the same Idempotency-Key. A 429
// says when in Retry-After and in the field retry_after_seconds.
func (s *server) fail(c *gin.Context, err error) {
	e := switchyard.AsError(err)
	status := statusFor(e.Code)
	if status >= http.StatusInternalServerError {
		s.logger.Error("request failed", "method", c.Request.Method, "path", c.Request.URL.Path,
			"request_id", requestID(c), "err", err)
	}
	switch status {
	case http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		c.Header("Retry-After", retryAfterSeconds)
	case http.StatusTooManyRequests:
		if n, ok := e.Fields[switchyard.FieldRetryAfter].(int); ok {
			c.Header("Retry-After", strconv.Itoa(n))
		}
	}
	body := make(map[string]any, len(e.Fields)+3)
	for k, v := range e.Fields {
		body[k] = v
	}
	body["code"] = e.Code
	body["message"] = e.Message
	if e.Code == switchyard.CodeInternal {
		body["request_id"] = requestID(c)
	}
	c.JSON(status, gin.H{"error": body})
}

// ofrepError is an evaluation OFREP answers with an error code: a request
// it refuses, or a flag that cannot be evaluated.
type ofrepError struct {
	code    evaluator.ResolutionError
	details string
}

func parseError(details string) *ofrepError {
	return &ofrepError{code: evaluator.ParseError, details: details}
}

func invalidContext(details string) *ofrepError {
	return &ofrepError{code: evaluator.InvalidContext, details: details}
}

// ofrepStatusFor maps an OpenFeature error code to the HTTP status OFREP
// answers it with: 404 for a flag that does not exist, 400 for the rest.
func ofrepStatusFor(code evaluator.ResolutionError) int {
	if code == evaluator.FlagNotFound {
		return http.StatusNotFound
	}
	return http.StatusBadRequest
}

// ofrepFailure answers a refused evaluation in OFREP's error shape; the
// bulk route (key "") has no key in it.
func (s *server) ofrepFailure(c *gin.Context, key string, e *ofrepError) {
	s.writeOFREP(c, ofrepStatusFor(e.code), func(b []byte) ([]byte, error) {
		if key == "" {
			b = append(b, `{"errorCode":`...)
			b = appendString(b, string(e.code))
			b = append(b, `,"errorDetails":`...)
			b = appendString(b, e.details)
			return append(b, '}'), nil
		}
		return appendFailure(b, key, e.code, e.details), nil
	})
}

// ofrepServerError answers a failure to evaluate at all. A session ID the
// store refuses is the caller's problem; anything else is the server's, and
// the client falls back to its code defaults.
func (s *server) ofrepServerError(c *gin.Context, err error) {
	e := switchyard.AsError(err)
	if e.Code == switchyard.CodeInvalidRequest {
		s.ofrepFailure(c, c.Param("key"), invalidContext(e.Message))
		return
	}
	s.logger.Error("evaluate flags", "path", c.Request.URL.Path, "request_id", requestID(c), "err", err)
	status := statusFor(e.Code)
	if status < http.StatusInternalServerError {
		status = http.StatusInternalServerError
	}
	c.JSON(status, gin.H{"errorDetails": e.Message})
}
