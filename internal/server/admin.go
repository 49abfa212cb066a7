package server

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/control"
)

// revisionETag is the entity tag of the admin state at a revision.
func revisionETag(n int64) string { return `"` + itoa(n) + `"` }

// getStatus serves GET /v1/admin/runtime/status.
func (s *server) getStatus(c *gin.Context) {
	st, err := s.core.Status(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("ETag", revisionETag(st.Revision))
	c.JSON(http.StatusOK, st)
}

// confirmation is what every change request carries: the police-mode
// phrase that proves the operator meant it, and the reason for the log.
type confirmation struct {
	Phrase string `json:"phrase"`
	Reason string `json:"reason"`
}

func (c *confirmation) confirm() *confirmation { return c }

// changeRequest is the decoded body of a change route.
type changeRequest interface {
	confirm() *confirmation
}

// headerIdempotencyKey names a change request, so that sending it again
// applies it at most once.
const headerIdempotencyKey = "Idempotency-Key"

// decodeChange decodes a change route's body into req and returns the
// change the core admits: who asks, the confirmation, the revision the
// change is based on (If-Match), its idempotency key and the hash of the
// request it came with, and whatever could not be decoded (a body not sent
// as JSON is not read). target names the change in the audit log; from,
// when set, names it from the decoded body instead, and is called only
// when the body decoded.
func (s *server) decodeChange(c *gin.Context, action, target string, req changeRequest, from func() string) control.Change {
	who := operatorOf(c)
	body := sha256.New()
	invalid := requireJSON(c.Request)
	if invalid == nil {
		invalid = decodeStrict(io.TeeReader(c.Request.Body, body), req)
	}
	conf := req.confirm()
	ch := control.Change{
		Actor:          who.Name,
		Role:           who.Role,
		RequestID:      requestID(c),
		IdempotencyKey: c.GetHeader(headerIdempotencyKey),
		Action:         action,
		Target:         target,
		Reason:         conf.Reason,
		Phrase:         conf.Phrase,
		Invalid:        invalid,
	}
	if invalid == nil {
		if from != nil {
			ch.Target = from()
		}
		ch.Expected, ch.Invalid = parseIfMatch(c.GetHeader("If-Match"))
	}
	if ch.Invalid == nil && ch.IdempotencyKey != "" && !saneRequestID(ch.IdempotencyKey) {
		ch.Invalid = switchyard.Errorf(switchyard.CodeInvalidRequest,
			"Idempotency-Key must be 1 to %d letters, digits and . _ : - (a UUID will do)", maxIDLength).
			With("field", headerIdempotencyKey).With("max_length", maxIDLength)
	}
	ch.RequestHash = requestHash(c.Request.Method, c.Request.URL.Path, ch.Expected, body.Sum(nil))
	return ch
}

// requestHash identifies a change request for its idempotency key: the
// method, the path, the revision it is based on and the SHA-256 of its
// body. A retry must send them all unchanged; a client that re-encodes
// the body must encode it byte for byte the same.
func requestHash(method, path string, expected int64, body []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s\n%d\n%x", method, path, expected, body)
	return hex.EncodeToString(h.Sum(nil))
}

// change applies ch through the core and answers the change result.
func (s *server) change(c *gin.Context, ch control.Change) {
	applied, err := s.core.Apply(c.Request.Context(), ch)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("ETag", revisionETag(applied.Status.Revision))
	c.JSON(http.StatusOK, gin.H{"audit_seq": applied.AuditSeq, "status": applied.Status})
}

// parseIfMatch reads the revision a change is based on from If-Match:
// "3", 3 or W/"3". Absent or *, the change applies to any revision.
func parseIfMatch(h string) (int64, error) {
	h = strings.TrimSpace(h)
	if h == "" || h == "*" {
		return 0, nil
	}
	v := strings.Trim(strings.TrimPrefix(h, "W/"), `"`)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, switchyard.Errorf(switchyard.CodeInvalidRequest, "If-Match must be a revision number such as \"3\", not %q", h).
			With("field", "If-Match")
	}
	return n, nil
}

// setFlagRequest is the body of POST /v1/admin/runtime/flags.
type setFlagRequest struct {
	confirmation
	Flag  string `json:"flag"`
	Value *bool  `json:"value"`
}

// setFlag serves POST /v1/admin/runtime/flags: turn a system flag on or off.
func (s *server) setFlag(c *gin.Context) {
	var req setFlagRequest
	ch := s.decodeChange(c, "set_flag", "", &req, func() string { return req.Flag })
	ch.Plan = func() (control.Plan, error) { return control.SystemFlagPlan(req.Flag, req.Value, "value") }
	s.change(c, ch)
}

// examModeRequest is the body of POST /v1/admin/system/exam-mode.
type examModeRequest struct {
	confirmation
	Enabled *bool `json:"enabled"`
}

// setExamMode serves POST /v1/admin/system/exam-mode, the runbook's
// shortcut for the EXAM_MODE flag.
func (s *server) setExamMode(c *gin.Context) {
	var req examModeRequest
	ch := s.decodeChange(c, "set_flag", switchyard.ExamMode, &req, nil)
	ch.Plan = func() (control.Plan, error) {
		return control.SystemFlagPlan(switchyard.ExamMode, req.Enabled, "enabled")
	}
	s.change(c, ch)
}

// setProfileRequest is the body of POST /v1/admin/runtime/profile.
type setProfileRequest struct {
	confirmation
	ProfileName string `json:"profile_name"`
}

// setProfile serves POST /v1/admin/runtime/profile: switch the active profile.
func (s *server) setProfile(c *gin.Context) {
	var req setProfileRequest
	ch := s.decodeChange(c, "set_profile", switchyard.ProfileKey, &req, nil)
	ch.Plan = func() (control.Plan, error) { return control.ProfilePlan(req.ProfileName) }
	s.change(c, ch)
}

// overrideRequest is the body of POST /v1/admin/runtime/override.
type overrideRequest struct {
	confirmation
	Module    string  `json:"module"`
	Version   *string `json:"version"`
	IsEnabled *bool   `json:"is_enabled"`
}

// setOverride serves POST /v1/admin/runtime/override: pin a module's
// version and/or enabled state over the profile.
func (s *server) setOverride(c *gin.Context) {
	var req overrideRequest
	ch := s.decodeChange(c, "set_override", "", &req, func() string { return "module:" + req.Module })
	ch.Plan = func() (control.Plan, error) { return control.OverridePlan(req.Module, req.Version, req.IsEnabled) }
	s.change(c, ch)
}

// clearOverride serves DELETE /v1/admin/runtime/override/{module}: the
// profile decides the module again.
func (s *server) clearOverride(c *gin.Context) {
	var req confirmation
	module := c.Param("module")
	ch := s.decodeChange(c, "clear_override", "module:"+module, &req, nil)
	ch.Plan = func() (control.Plan, error) { return control.ClearOverridePlan(module), nil }
	s.change(c, ch)
}

// registerModuleRequest is the body of PUT /v1/admin/runtime/modules/{key}.
type registerModuleRequest struct {
	confirmation
	Kind     switchyard.Kind   `json:"kind"`
	Versions []string          `json:"versions"`
	Defaults map[string]string `json:"defaults"`
}

// registerModule serves PUT /v1/admin/runtime/modules/{key}: add a module
// to the catalog or add versions to one. Versions are never removed.
func (s *server) registerModule(c *gin.Context) {
	var req registerModuleRequest
	key := c.Param("key")
	ch := s.decodeChange(c, "register_module", "module:"+key, &req, nil)
	ch.Plan = func() (control.Plan, error) {
		return control.RegisterModulePlan(switchyard.ModuleSpec{Key: key, Kind: req.Kind, Versions: req.Versions, Defaults: req.Defaults}), nil
	}
	s.change(c, ch)
}

// updateProfileRequest is the body of PUT /v1/admin/runtime/profiles/{name}.
type updateProfileRequest struct {
	confirmation
	Config map[string]switchyard.ProfilePatch `json:"config"`
}

// updateProfile serves PUT /v1/admin/runtime/profiles/{name}: change the
// defaults a profile gives modules.
func (s *server) updateProfile(c *gin.Context) {
	var req updateProfileRequest
	name := c.Param("name")
	ch := s.decodeChange(c, "update_profile", "profile:"+name, &req, nil)
	ch.Plan = func() (control.Plan, error) { return control.UpdateProfilePlan(name, req.Config), nil }
	s.change(c, ch)
}
