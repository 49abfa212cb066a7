package switchyard

import (
	"context"
	"errors"
	"fmt"
)

// Code names a class of failure that callers branch on. The HTTP layer maps
// each code to a status in one place, so the codes are the contract.
type Code string

// The failure codes shared by the model, the stores and the API.
const (
	CodeInvalidRequest    Code = "INVALID_REQUEST"
	CodeUnauthorized      Code = "UNAUTHORIZED"
	CodeForbidden         Code = "FORBIDDEN"
	CodePhraseMismatch    Code = "PHRASE_MISMATCH"
	CodeReasonRequired    Code = "REASON_REQUIRED"
	CodeUnknownFlag       Code = "UNKNOWN_FLAG"
	CodeUnknownProfile    Code = "UNKNOWN_PROFILE"
	CodeUnknownModule     Code = "UNKNOWN_MODULE"
	CodeUnknownVersion    Code = "UNKNOWN_VERSION"
	CodeNotFound          Code = "NOT_FOUND"
	CodeRevisionConflict  Code = "REVISION_CONFLICT"
	CodeAdminFreezeActive Code = "ADMIN_FREEZE_ACTIVE"
	// CodeApprovalRequired refuses a direct write of an action the
	// approval policy says other admins must approve: propose it as a
	// change request instead.
	CodeApprovalRequired Code = "APPROVAL_REQUIRED"
	// CodeChangeState refuses a transition a change request's state does
	// not allow: approving one already applied, cancelling one rejected.
	CodeChangeState Code = "CHANGE_REQUEST_STATE"
	// CodeLiveSwitchDisabled refuses a mode toggle in a process started
	// without live switching allowed (by default, one started in
	// production mode).
	CodeLiveSwitchDisabled Code = "LIVE_SWITCH_DISABLED"
	// CodeUnsupportedMediaType refuses a request body that is not JSON.
	CodeUnsupportedMediaType Code = "UNSUPPORTED_MEDIA_TYPE"
	// CodeBodyTooLarge refuses a request body over the route's limit.
	CodeBodyTooLarge Code = "BODY_TOO_LARGE"
	// CodeMethodNotAllowed answers a method a known path does not serve.
	CodeMethodNotAllowed Code = "METHOD_NOT_ALLOWED"
	// CodeRequirementsMissing refuses a switch to production mode while
	// something production needs is missing.
	CodeRequirementsMissing Code = "PRODUCTION_REQUIREMENTS_MISSING"
	// CodeUnavailable says the store did not answer; for a change, that
	// nothing was applied, so the same request may be sent again.
	CodeUnavailable Code = "UNAVAILABLE"
	// CodeOutcomeUnknown says a change reached the database but whether it
	// was committed could not be found out, the database not answering:
	// it may or may not be applied. Sent again with the same
	// Idempotency-Key it is applied at most once.
	CodeOutcomeUnknown Code = "OUTCOME_UNKNOWN"
	// CodeIdempotencyKeyReused refuses a change whose Idempotency-Key
	// already names another request.
	CodeIdempotencyKeyReused Code = "IDEMPOTENCY_KEY_REUSED"
	// CodeInvalidText refuses text no store keeps alike: invalid UTF-8 or
	// a NUL character (see CheckText).
	CodeInvalidText Code = "INVALID_TEXT"
	// CodeRateLimited refuses a request because its sender has used up an
	// allowance (of refused changes, or of new sessions); the error's
	// RetryAfterField says when to try again.
	CodeRateLimited Code = "RATE_LIMITED"
	// CodeSessionLimit refuses a new session while the store holds as many
	// live sessions as it may; an existing session is still served.
	CodeSessionLimit Code = "SESSION_LIMIT_REACHED"
	// CodeCanceled says the caller gave up before it was answered (a
	// client that closed its connection): nothing failed, and nobody
	// reads the answer.
	CodeCanceled Code = "CANCELED"
	CodeInternal Code = "INTERNAL"
)

// RetryAfterField is the field of an Error that says after how many whole
// seconds the request may succeed when sent again; the HTTP layer answers
// it as Retry-After too.
const RetryAfterField = "retry_after_seconds"

// Error is a failure a caller can act on: a code to branch on, a message for
// people, and optional fields that help (the expected phrase, the allowed
// versions).
type Error struct {
	Code    Code
	Message string
	Fields  map[string]any
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf builds an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// With returns the error with one more helpful field set.
func (e *Error) With(key string, value any) *Error {
	if e.Fields == nil {
		e.Fields = map[string]any{}
	}
	e.Fields[key] = value
	return e
}

// ErrorCode returns the code of the first *Error in err's chain, or
// CodeInternal when there is none, so unknown failures never pass as user errors.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// FieldError is an INVALID_REQUEST naming the field to fix.
func FieldError(field, format string, args ...any) *Error {
	return Errorf(CodeInvalidRequest, "%s: %s", field, fmt.Sprintf(format, args...)).With("field", field)
}

// AsError turns any failure into an *Error. A call the caller cancelled
// is CANCELED; a timed-out one is UNAVAILABLE; any other failure without a
// code is INTERNAL, whose detail belongs in the log, not in an answer.
func AsError(err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, context.Canceled):
		return Errorf(CodeCanceled, "the request was cancelled before it was answered")
	case errors.Is(err, context.DeadlineExceeded):
		return Errorf(CodeUnavailable, "the store did not answer in time; try again")
	}
	return Errorf(CodeInternal, "internal error; the server log has the details")
}
