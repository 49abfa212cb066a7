package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/store"
)

// maxReasonLength bounds the reason every change must give.
const maxReasonLength = 1000

// status is the admin view of a revision: the raw state, what it resolves
// to, and what may be chosen (catalog, profiles).
type status struct {
	Revision  int64                               `json:"revision"`
	CreatedAt time.Time                           `json:"created_at"`
	Mode      string                              `json:"mode"`
	Flags     evaluator.SystemFlags               `json:"flags"`
	Profile   string                              `json:"profile"`
	Overrides map[string]evaluator.Override       `json:"overrides"`
	Modules   map[string]evaluator.ResolvedModule `json:"modules"`
	Catalog   []evaluator.Module                  `json:"catalog"`
	Profiles  map[string]evaluator.Profile        `json:"profiles"`
	// Degraded says why the service runs degraded (Redis down), as /readyz
	// does; empty when it is not. Only GET status sets it.
	Degraded string `json:"degraded,omitempty"`
}

func (b *backend) statusOf(rev *evaluator.Revision) status {
	rt := evaluator.Resolve(rev)
	overrides := rev.Overrides
	if overrides == nil {
		overrides = map[string]evaluator.Override{}
	}
	return status{
		Revision:  rev.Number,
		CreatedAt: rev.CreatedAt,
		Mode:      b.mode,
		Flags:     rev.System,
		Profile:   rev.ActiveProfile,
		Overrides: overrides,
		Modules:   rt.Modules,
		Catalog:   rev.Catalog,
		Profiles:  rev.Profiles,
	}
}

// revisionETag is the entity tag of the admin state at a revision.
func revisionETag(n int64) string { return `"` + itoa(n) + `"` }

// getStatus serves GET /v1/admin/runtime/status, read from the store so an
// operator always sees the truth, not a cached copy.
func (s *server) getStatus(c *gin.Context) {
	b := s.acquire()
	defer b.leave()
	ctx, cancel := context.WithTimeout(c.Request.Context(), readTimeout)
	defer cancel()
	rev, err := b.store.Current(ctx)
	if err != nil {
		// Say what evaluations are served meanwhile, as /readyz does.
		if asError(err).Code == evaluator.CodeUnavailable {
			err = evaluator.Errorf(evaluator.CodeUnavailable, "degraded: %s", b.degradedReason(err))
		}
		s.fail(c, err)
		return
	}
	b.flags.read(rev)
	st := b.statusOf(rev)
	st.Degraded, _ = b.degraded()
	c.Header("ETag", revisionETag(rev.Number))
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

// plan is what a change request asks for: the mutation, the target the
// audit log names, and the phrase that must confirm it.
type plan struct {
	target   string
	phrase   string
	mutation evaluator.Mutation
}

// change runs the audited pipeline every change route shares: admit the
// request, then apply the mutation in the store at the expected revision.
//
// target names the change in the audit log when the body cannot be
// planned; toPlan turns the decoded body into the change.
func (s *server) change(c *gin.Context, action, target string, req changeRequest, toPlan func() (plan, error)) {
	b := s.acquire()
	defer b.leave()
	attempt, p, ok := s.admit(c, b, action, target, req, toPlan)
	if !ok {
		return
	}
	expected, err := parseIfMatch(c.GetHeader("If-Match"))
	if err != nil {
		s.reject(c, b, attempt, err)
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), writeTimeout)
	defer cancel()
	rev, entry, err := b.store.Apply(ctx, store.Change{Attempt: attempt, Expected: expected, Mutation: p.mutation})
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := b.flags.install(rev); err != nil {
		s.logger.Error("install the new revision", "revision", rev.Number, "err", err)
	}
	s.logger.Info("runtime changed", "action", entry.Action, "target", entry.Target, "actor", entry.Actor,
		"revision", rev.Number, "audit_seq", entry.Seq, "request_id", entry.RequestID)
	c.Header("ETag", revisionETag(rev.Number))
	c.JSON(http.StatusOK, gin.H{"audit_seq": entry.Seq, "status": b.statusOf(rev)})
}

// admit decodes a change request and checks the role, the reason, the
// request and the phrase. A refusal is recorded in b's audit log with
// store.Reject and answered, and admit returns false; otherwise it returns
// the attempt to record and the plan.
func (s *server) admit(c *gin.Context, b *backend, action, target string, req changeRequest, toPlan func() (plan, error)) (store.Attempt, plan, bool) {
	who := principalOf(c)
	decodeErr := decodeStrict(c.Request.Body, req)
	conf := req.confirm()
	attempt := store.Attempt{
		Actor:     who.actor,
		Role:      string(who.role),
		Action:    action,
		Target:    target,
		Reason:    conf.Reason,
		Phrase:    conf.Phrase,
		RequestID: requestID(c),
	}
	var p plan
	var planErr error
	if decodeErr == nil {
		p, planErr = toPlan()
		if p.target != "" {
			attempt.Target = p.target
		}
	}
	var refusal error
	switch {
	case who.role != RoleAdmin:
		refusal = evaluator.Errorf(evaluator.CodeForbidden, "the %s role cannot change the runtime; use an admin token", who.role)
	case decodeErr != nil:
		refusal = decodeErr
	case strings.TrimSpace(conf.Reason) == "":
		refusal = evaluator.Errorf(evaluator.CodeReasonRequired, "reason is required: say why the change is made, for the audit log")
	case utf8.RuneCountInString(conf.Reason) > maxReasonLength:
		refusal = evaluator.Errorf(evaluator.CodeReasonRequired, "reason must be at most %d characters", maxReasonLength).
			With("max_length", maxReasonLength)
	case planErr != nil:
		refusal = planErr
	case conf.Phrase != p.phrase:
		refusal = evaluator.Errorf(evaluator.CodePhraseMismatch, "phrase must be exactly %q", p.phrase).
			With("expected_phrase", p.phrase)
	}
	if refusal != nil {
		s.reject(c, b, attempt, refusal)
		return attempt, p, false
	}
	return attempt, p, true
}

// reject records a refused attempt in b's audit log and answers the
// refusal. A failure to record is logged; the caller still learns why the
// change was refused.
func (s *server) reject(c *gin.Context, b *backend, a store.Attempt, why error) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), writeTimeout)
	defer cancel()
	if _, err := b.store.Reject(ctx, a, why); err != nil {
		s.logger.Error("record a rejected attempt", "action", a.Action, "actor", a.Actor,
			"request_id", a.RequestID, "why", why, "err", err)
	}
	s.fail(c, why)
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
		return 0, evaluator.Errorf(evaluator.CodeInvalidRequest, "If-Match must be a revision number such as \"3\", not %q", h).
			With("field", "If-Match")
	}
	return n, nil
}

// togglePhrase is the phrase that turns a named switch on or off, e.g.
// ENABLE EXAM MODE or DISABLE FREEZE UPDATES.
func togglePhrase(on bool, name string) string {
	if on {
		return "ENABLE " + name
	}
	return "DISABLE " + name
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
	s.change(c, "set_flag", "", &req, func() (plan, error) {
		return systemFlagPlan(req.Flag, req.Value, "value")
	})
}

// systemFlagPlan plans turning a system flag on or off; field names the
// boolean in the request.
func systemFlagPlan(flag string, value *bool, field string) (plan, error) {
	p := plan{target: flag}
	if _, ok := (evaluator.SystemFlags{}).Get(flag); !ok {
		return p, evaluator.Errorf(evaluator.CodeUnknownFlag, "%q is not a system flag", flag).
			With("allowed_flags", evaluator.SystemFlagNames)
	}
	if value == nil {
		return p, fieldError(field, "is required: true or false")
	}
	p.phrase = togglePhrase(*value, strings.ReplaceAll(flag, "_", " "))
	p.mutation = evaluator.SetSystemFlag(flag, *value)
	return p, nil
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
	s.change(c, "set_flag", evaluator.ExamMode, &req, func() (plan, error) {
		return systemFlagPlan(evaluator.ExamMode, req.Enabled, "enabled")
	})
}

// setProfileRequest is the body of POST /v1/admin/runtime/profile.
type setProfileRequest struct {
	confirmation
	ProfileName string `json:"profile_name"`
}

// setProfile serves POST /v1/admin/runtime/profile: switch the active profile.
func (s *server) setProfile(c *gin.Context) {
	var req setProfileRequest
	s.change(c, "set_profile", evaluator.ProfileKey, &req, func() (plan, error) {
		if req.ProfileName == "" {
			return plan{}, fieldError("profile_name", "is required")
		}
		return plan{
			phrase:   "SET PROFILE " + strings.ToUpper(req.ProfileName),
			mutation: evaluator.SetActiveProfile(req.ProfileName),
		}, nil
	})
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
	s.change(c, "set_override", "", &req, func() (plan, error) {
		p := plan{target: "module:" + req.Module}
		switch {
		case req.Module == "":
			return p, fieldError("module", "is required")
		case req.Version != nil:
			p.phrase = fmt.Sprintf("OVERRIDE MODULE %s TO %s", req.Module, *req.Version)
		case req.IsEnabled != nil:
			p.phrase = togglePhrase(*req.IsEnabled, "MODULE "+req.Module)
		default:
			return p, evaluator.Errorf(evaluator.CodeInvalidRequest, "an override needs a version, is_enabled, or both")
		}
		p.mutation = evaluator.SetOverride(req.Module, req.Version, req.IsEnabled)
		return p, nil
	})
}

// clearOverride serves DELETE /v1/admin/runtime/override/{module}: the
// profile decides the module again.
func (s *server) clearOverride(c *gin.Context) {
	var req confirmation
	module := c.Param("module")
	s.change(c, "clear_override", "module:"+module, &req, func() (plan, error) {
		return plan{phrase: "CLEAR OVERRIDE " + module, mutation: evaluator.ClearOverride(module)}, nil
	})
}

// registerModuleRequest is the body of PUT /v1/admin/runtime/modules/{key}.
type registerModuleRequest struct {
	confirmation
	Kind     evaluator.Kind    `json:"kind"`
	Versions []string          `json:"versions"`
	Defaults map[string]string `json:"defaults"`
}

// registerModule serves PUT /v1/admin/runtime/modules/{key}: add a module
// to the catalog or add versions to one. Versions are never removed.
func (s *server) registerModule(c *gin.Context) {
	var req registerModuleRequest
	key := c.Param("key")
	s.change(c, "register_module", "module:"+key, &req, func() (plan, error) {
		return plan{
			phrase: "REGISTER MODULE " + key,
			mutation: evaluator.RegisterModule(evaluator.ModuleSpec{
				Key: key, Kind: req.Kind, Versions: req.Versions, Defaults: req.Defaults,
			}),
		}, nil
	})
}

// profilePatch is one module's change in PUT /v1/admin/runtime/profiles:
// a version string, or {"version", "enabled"} with either or both.
type profilePatch evaluator.ProfilePatch

// UnmarshalJSON accepts both forms, refusing unknown fields in the object.
func (p *profilePatch) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '"' {
		var version string
		if err := json.Unmarshal(data, &version); err != nil {
			return err
		}
		p.Version = &version
		return nil
	}
	var obj struct {
		Version *string `json:"version"`
		Enabled *bool   `json:"enabled"`
	}
	if err := decodeStrict(bytes.NewReader(data), &obj); err != nil {
		return evaluator.Errorf(evaluator.CodeInvalidRequest,
			`each config entry must be a version string or {"version", "enabled"}: %s`, asError(err).Message)
	}
	if obj.Version == nil && obj.Enabled == nil {
		return evaluator.Errorf(evaluator.CodeInvalidRequest, "each config entry must set version, enabled, or both")
	}
	p.Version, p.Enabled = obj.Version, obj.Enabled
	return nil
}

// updateProfileRequest is the body of PUT /v1/admin/runtime/profiles/{name}.
type updateProfileRequest struct {
	confirmation
	Config map[string]profilePatch `json:"config"`
}

// updateProfile serves PUT /v1/admin/runtime/profiles/{name}: change the
// defaults a profile gives modules.
func (s *server) updateProfile(c *gin.Context) {
	var req updateProfileRequest
	name := c.Param("name")
	s.change(c, "update_profile", "profile:"+name, &req, func() (plan, error) {
		config := make(map[string]evaluator.ProfilePatch, len(req.Config))
		for k, v := range req.Config {
			config[k] = evaluator.ProfilePatch(v)
		}
		return plan{
			phrase:   "UPDATE PROFILE " + strings.ToUpper(name),
			mutation: evaluator.UpdateProfile(name, config),
		}, nil
	})
}
