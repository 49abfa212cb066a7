package server

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/switchyard-dev/switchyard/evaluator"
)

// statusFor maps an error code to its HTTP status. It is the only place
// that does, so a code always means the same status on every route.
func statusFor(code evaluator.Code) int {
	switch code {
	case evaluator.CodeInvalidRequest, evaluator.CodePhraseMismatch, evaluator.CodeReasonRequired,
		evaluator.CodeUnknownFlag, evaluator.CodeUnknownProfile, evaluator.CodeUnknownModule,
		evaluator.CodeUnknownVersion, evaluator.CodeRequirementsMissing:
		return http.StatusBadRequest
	case evaluator.CodeUnauthorized:
		return http.StatusUnauthorized
	case evaluator.CodeForbidden:
		return http.StatusForbidden
	case evaluator.CodeNotFound:
		return http.StatusNotFound
	case evaluator.CodeRevisionConflict:
		return http.StatusPreconditionFailed
	case evaluator.CodeAdminFreezeActive:
		return http.StatusLocked
	case evaluator.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// fail answers err in the API's one error shape,
// {"error": {"code", "message", ...fields}}, and logs server-side failures.
func (s *server) fail(c *gin.Context, err error) {
	e := evaluator.AsError(err)
	status := statusFor(e.Code)
	if status >= http.StatusInternalServerError {
		s.logger.Error("request failed", "method", c.Request.Method, "path", c.Request.URL.Path,
			"request_id", requestID(c), "err", err)
	}
	body := make(map[string]any, len(e.Fields)+3)
	for k, v := range e.Fields {
		body[k] = v
	}
	body["code"] = e.Code
	body["message"] = e.Message
	if e.Code == evaluator.CodeInternal {
		body["request_id"] = requestID(c)
	}
	c.JSON(status, gin.H{"error": body})
}
