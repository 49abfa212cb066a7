package server

import (
	"context"
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
	case switchyard.CodeInvalidRequest, switchyard.CodeInvalidText, switchyard.CodePhraseMismatch, switchyard.CodeReasonRequired,
		switchyard.CodeUnknownFlag, switchyard.CodeUnknownProfile, switchyard.CodeUnknownModule,
		switchyard.CodeUnknownVersion, switchyard.CodeRequirementsMissing:
		return http.StatusBadRequest
	case switchyard.CodeUnauthorized:
		return http.StatusUnauthorized
	case switchyard.CodeForbidden, switchyard.CodeLiveSwitchDisabled, switchyard.CodeApprovalRequired:
		return http.StatusForbidden
	case switchyard.CodeNotFound:
		return http.StatusNotFound
	case switchyard.CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case switchyard.CodeRevisionConflict:
		return http.StatusPreconditionFailed
	case switchyard.CodeChangeState:
		return http.StatusConflict
	case switchyard.CodeBodyTooLarge:
		return http.StatusRequestEntityTooLarge
	case switchyard.CodeUnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case switchyard.CodeIdempotencyKeyReused:
		return http.StatusUnprocessableEntity
	case switchyard.CodeAdminFreezeActive:
		return http.StatusLocked
	case switchyard.CodeRateLimited, switchyard.CodeSessionLimit:
		return http.StatusTooManyRequests
	case switchyard.CodeCanceled:
		return statusClientClosedRequest
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

// statusClientClosedRequest is the status of a request whose client went
// away before it was answered (nginx's 499): nobody reads it, but the
// access log and the handler's tests do.
const statusClientClosedRequest = 499

// fail answers err in the API's one error shape,
// {"error": {"code", "message", ...fields}}, and logs server-side failures.
// A 503 (nothing was applied) and a 504 (the outcome is unknown) say when
// to try again; a change is sent again with the same Idempotency-Key. A
// 429 says when its sender's allowance allows another request, in
// Retry-After and in the field retry_after_seconds. A request whose client
// went away is no failure of the server's, whatever failed for it: it is
// logged at debug level and answered 499, without a body.
func (s *server) fail(c *gin.Context, err error) {
	e := s.asError(c, err)
	status := statusFor(e.Code)
	switch {
	case e.Code == switchyard.CodeCanceled:
		s.logger.Debug("request cancelled by the client", "method", c.Request.Method, "path", c.Request.URL.Path,
			"request_id", requestID(c), "err", err)
		c.Status(status)
		return
	case status >= http.StatusInternalServerError:
		s.logger.Error("request failed", "method", c.Request.Method, "path", c.Request.URL.Path,
			"request_id", requestID(c), "operator", operatorOf(c).Name, "err", err)
	}
	switch status {
	case http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		c.Header("Retry-After", retryAfterSeconds)
	case http.StatusTooManyRequests:
		if seconds, ok := e.Fields[switchyard.RetryAfterField].(int); ok {
			c.Header("Retry-After", strconv.Itoa(seconds))
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

// asError is switchyard.AsError, except that any failure of a request
// whose client has gone away is CANCELED: a store call cut short by the
// client leaving may have failed in any way, none of them the store's.
func (s *server) asError(c *gin.Context, err error) *switchyard.Error {
	if c.Request.Context().Err() != nil {
		return switchyard.AsError(context.Canceled)
	}
	return switchyard.AsError(err)
}

// ofrepError is an evaluation OFREP answers with an error code: a request
// it refuses, or a flag that cannot be evaluated.
type ofrepError struct {
	code    evaluator.ResolutionError
	details string
	// tooLarge marks a body over the limit, which HTTP answers 413.
	tooLarge bool
}

func parseError(details string) *ofrepError {
	return &ofrepError{code: evaluator.ParseError, details: details}
}

// bodyTooLarge refuses a body over limit bytes: a PARSE_ERROR, since
// OFREP has no code of its own for it, answered 413.
func bodyTooLarge(limit int64) *ofrepError {
	return &ofrepError{code: evaluator.ParseError, details: "the request body is larger than the limit of " + itoa(limit) + " bytes", tooLarge: true}
}

func invalidContext(details string) *ofrepError {
	return &ofrepError{code: evaluator.InvalidContext, details: details}
}

// ofrepStatusFor maps an OFREP error to the HTTP status OFREP answers it
// with: 404 for a flag that does not exist, 413 for a body over the
// limit, 400 for the rest.
func ofrepStatusFor(e *ofrepError) int {
	switch {
	case e.tooLarge:
		return http.StatusRequestEntityTooLarge
	case e.code == evaluator.FlagNotFound:
		return http.StatusNotFound
	}
	return http.StatusBadRequest
}

// ofrepFailure answers a refused evaluation in OFREP's error shape; the
// bulk route (key "") has no key in it.
func (s *server) ofrepFailure(c *gin.Context, key string, e *ofrepError) {
	s.writeOFREP(c, ofrepStatusFor(e), func(b []byte) ([]byte, error) {
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
	e := s.asError(c, err)
	switch e.Code {
	case switchyard.CodeInvalidRequest:
		s.ofrepFailure(c, c.Param("key"), invalidContext(e.Message))
		return
	case switchyard.CodeCanceled:
		s.logger.Debug("evaluation cancelled by the client", "path", c.Request.URL.Path, "request_id", requestID(c), "err", err)
		c.Status(statusFor(e.Code))
		return
	}
	s.logger.Error("evaluate flags", "path", c.Request.URL.Path, "request_id", requestID(c), "err", err)
	status := statusFor(e.Code)
	if status < http.StatusInternalServerError {
		status = http.StatusInternalServerError
	}
	c.JSON(status, gin.H{"errorDetails": e.Message})
}
