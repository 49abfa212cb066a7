package control

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/importer"
	"github.com/switchyard-dev/switchyard/store"
)

// Change is one request to change the runtime, as a surface decoded it.
// Every kind of change, the mode toggle and imports included, goes through
// the same admission: the sender's allowance of refusals, the role, a
// decodable request, valid text within its limits, a reason, the plan,
// the exact phrase, then ADMIN_FREEZE and the expected revision; a refusal
// is recorded in the audit log.
type Change struct {
	// Actor is the name of the operator who asks (switchyard.Operator's,
	// unique, so operators are told apart) and Role the role their token
	// grants; the audit log records both.
	Actor string
	Role  switchyard.Role
	// RequestID follows the request through logs and the audit log.
	RequestID string
	// IdempotencyKey names the request, so a retry of it applies nothing
	// twice and is answered with the first attempt's outcome; empty when
	// the request has none. RequestHash identifies the request the key
	// came with, as the surface sees it, so the key sent with another
	// request is refused.
	IdempotencyKey string
	RequestHash    string
	// Action and Target name the change in the audit log.
	Action string
	Target string
	Reason string
	Phrase string
	// Expected is the revision the change was based on; 0 means any.
	Expected int64
	// Invalid is why the surface could not decode the request, if it
	// could not: the change is refused after the role check.
	Invalid error
	// DryRun admits the change without applying it, and neither a refusal
	// nor the admission is recorded: the audit log records attempts to
	// change the runtime, and a dry run never is one.
	DryRun bool
	// Plan says what the request asks for. It runs only for an admin's
	// decodable request with a reason, since planning may be expensive
	// (an import converts a whole file).
	Plan func() (Plan, error)
	// approved marks the change a change request makes, once its
	// approvals are in: the approval policy has been met, and the
	// scheduler that applies it is no sender with an allowance of
	// refusals.
	approved bool
	// Mode, when set, is the only mode the change is for: served another,
	// it is not applied (UNAVAILABLE) nor recorded. The flag files of demo
	// mode must never reach production's store through a live switch.
	Mode string
}

// Plan is what a change asks for: the phrase that must confirm it and the
// mutation it applies.
type Plan struct {
	Phrase   string
	Mutation switchyard.Mutation
	// ModeSwitch marks a switch of the system mode, which belongs to the
	// process and makes no revision, so no store checks it as it applies
	// a mutation (store.Next): the admission checks it instead against the
	// current revision of the mode served, ADMIN_FREEZE and the expected
	// revision alike.
	ModeSwitch bool
	// Safer marks a change that only makes the system safer (turning
	// EXAM_MODE, FREEZE_UPDATES or ADMIN_FREEZE on, the fallback
	// profile), which a policy may let one admin make at once, as
	// break-glass.
	Safer bool
}

// Applied is the outcome of a change: the audit entry that records it and
// the runtime after it.
type Applied struct {
	AuditSeq int64
	Status   Status
}

// Apply admits ch and applies its mutation in the store at the expected
// revision, as one audited step, then installs the new revision. A dry run
// stops after the admission and returns a zero Applied. A retry of a
// change already applied under ch's idempotency key applies nothing and
// answers that change: its audit entry and the status at its revision.
// Every change answered as applied is logged as "runtime changed", a
// retry's again under the first attempt's request ID, so the service log
// names every applied revision even when the first answer was lost.
//
// Where the approval policy asks approvals for the change's action, it is
// refused with APPROVAL_REQUIRED, unless the policy lets it through as
// break-glass: then it is applied and recorded as a change request
// awaiting its review.
func (c *Core) Apply(ctx context.Context, ch Change) (Applied, error) {
	b := c.acquire()
	defer b.leave()
	return c.apply(ctx, b, ch)
}

// apply is Apply in b: the one path of every change to the runtime, made
// directly or by a change request.
func (c *Core) apply(ctx context.Context, b *backend, ch Change) (Applied, error) {
	if ch.Mode != "" && ch.Mode != b.mode {
		return Applied{}, switchyard.Errorf(switchyard.CodeUnavailable, "the change is for %s mode, and %s mode is served; it was not applied", ch.Mode, b.mode)
	}
	attempt, p, err := c.admit(ctx, b, ch)
	if err != nil || ch.DryRun {
		return Applied{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	rev, entry, err := b.store.Apply(wctx, store.Change{Attempt: attempt, Expected: ch.Expected, Mutation: p.Mutation})
	b.wrote(err)
	if err != nil {
		if entry.Outcome == store.OutcomeRejected && !ch.approved {
			// The store recorded the refusal with the change it refused.
			c.refusals.spend(ch.Actor, c.now())
		}
		c.refused(attempt, err, entry.Seq != 0)
		return Applied{}, err
	}
	c.applied(attempt)
	b.flags.learn(rev)
	c.logger.Info("runtime changed", "action", entry.Action, "target", entry.Target, "actor", entry.Actor,
		"revision", rev.Number, "audit_seq", entry.Seq, "request_id", entry.RequestID, "idempotency_key", ch.IdempotencyKey)
	if rule := c.cfg.Approvals[ch.Action]; rule.Approvals > 0 && !ch.approved {
		c.flagForReview(ctx, b, ch, rule, rev)
	}
	return Applied{AuditSeq: entry.Seq, Status: b.statusOf(rev)}, nil
}

// admit checks the sender's allowance of refusals, the role, the request,
// its text, the reason, the plan and the phrase, in that order, then for a
// mode switch ADMIN_FREEZE and the expected revision (a mutation's are
// checked by the store as it applies it, atomically with the write), and
// the approval policy. A refusal is recorded in b's audit log (unless it
// is a dry run's) and returned; otherwise admit returns the attempt to
// record and the plan. A sender refused too often is answered
// RATE_LIMITED, and that is not recorded.
func (c *Core) admit(ctx context.Context, b *backend, ch Change) (store.Attempt, Plan, error) {
	attempt := store.Attempt{
		Actor:          ch.Actor,
		Role:           string(ch.Role),
		Action:         ch.Action,
		Target:         ch.Target,
		Reason:         ch.Reason,
		Phrase:         ch.Phrase,
		RequestID:      ch.RequestID,
		IdempotencyKey: ch.IdempotencyKey,
		RequestHash:    ch.RequestHash,
	}
	if !ch.approved && c.refusals.wait(ch.Actor, c.now()) > 0 {
		return attempt, Plan{}, c.rateLimited(ch.Actor)
	}
	var p Plan
	refusal := func() error {
		switch {
		case ch.Role != switchyard.RoleAdmin:
			return switchyard.Errorf(switchyard.CodeForbidden, "the %s role cannot change the runtime; use an admin token", ch.Role)
		case ch.Invalid != nil:
			return ch.Invalid
		}
		if err := checkText(ch); err != nil {
			return err
		}
		if strings.TrimSpace(ch.Reason) == "" {
			return switchyard.Errorf(switchyard.CodeReasonRequired, "reason is required: say why the change is made, for the audit log")
		}
		var err error
		if p, err = ch.Plan(); err != nil {
			return err
		}
		if ch.Phrase != p.Phrase {
			return switchyard.Errorf(switchyard.CodePhraseMismatch, "phrase must be exactly %q", p.Phrase).
				With("expected_phrase", p.Phrase)
		}
		if p.ModeSwitch {
			if err := admitSwitch(ctx, b, ch.Expected); err != nil {
				return err
			}
		}
		if rule := c.cfg.Approvals[ch.Action]; rule.Approvals > 0 && !ch.approved && !ch.DryRun && !(rule.BreakGlass && p.Safer) {
			return switchyard.Errorf(switchyard.CodeApprovalRequired,
				"the approval policy asks %d other admin(s) to approve every %s: propose it at POST /v1/admin/changes instead", rule.Approvals, ch.Action).
				With("action", ch.Action).With("approvals_required", rule.Approvals)
		}
		return nil
	}()
	switch {
	case refusal == nil || ch.DryRun:
	case ch.approved:
		c.recordRefusal(ctx, b, attempt, refusal)
	default:
		refusal = c.reject(ctx, b, attempt, refusal)
	}
	return attempt, p, refusal
}

// admitSwitch checks a mode switch as store.Next checks a mutation,
// against the current revision of the mode b serves, read from its store:
// it must be the revision expected (0: any), and ADMIN_FREEZE must be off.
func admitSwitch(ctx context.Context, b *backend, expected int64) error {
	cur, err := b.current(ctx, readTimeout)
	if err != nil {
		return err
	}
	if err := store.BasedOn(cur, expected); err != nil {
		return err
	}
	return cur.System.AdminFrozen()
}

// checkText refuses a change whose phrase, reason or target is not valid
// text (INVALID_TEXT) or is longer than the audit log keeps: no real
// change needs more, and the refusal is recorded with the text escaped
// and cut (store.NewAuditEntry).
func checkText(ch Change) error {
	for _, f := range []struct {
		name, text string
		max        int
		tooLong    switchyard.Code
	}{
		{"phrase", ch.Phrase, switchyard.MaxPhraseLength, switchyard.CodeInvalidRequest},
		{"reason", ch.Reason, switchyard.MaxReasonLength, switchyard.CodeReasonRequired},
		{"target", ch.Target, switchyard.MaxTargetLength, switchyard.CodeInvalidRequest},
	} {
		if err := switchyard.CheckText(f.name, f.text); err != nil {
			return err
		}
		if utf8.RuneCountInString(f.text) > f.max {
			return switchyard.Errorf(f.tooLong, "%s must be at most %d characters", f.name, f.max).
				With("field", f.name).With("max_length", f.max)
		}
	}
	return nil
}

// reject records a refused attempt in b's audit log and returns the
// refusal to answer: why, or RATE_LIMITED when the sender has no refusal
// left, which is not recorded. The record does not depend on the caller
// staying to hear the answer; a failure to record is logged, and the
// caller still learns why the change was refused.
func (c *Core) reject(ctx context.Context, b *backend, a store.Attempt, why error) error {
	if !c.refusals.spend(a.Actor, c.now()) {
		return c.rateLimited(a.Actor)
	}
	c.recordRefusal(ctx, b, a, why)
	return why
}

// recordRefusal records a refused attempt in b's audit log, whoever stays to
// hear of it; a failure to record is logged.
func (c *Core) recordRefusal(ctx context.Context, b *backend, a store.Attempt, why error) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	_, err := b.store.Reject(wctx, a, why)
	if err != nil {
		c.logger.Error("record a rejected attempt", "action", a.Action, "actor", a.Actor,
			"request_id", a.RequestID, "why", why, "err", err)
	}
	c.refused(a, why, err == nil)
}

// refused logs and counts a change not applied (or, with OUTCOME_UNKNOWN,
// not known to be); recorded says whether its audit entry was appended.
func (c *Core) refused(a store.Attempt, why error, recorded bool) {
	code := switchyard.ErrorCode(why)
	msg := "change refused"
	if code == switchyard.CodeOutcomeUnknown {
		msg = "change outcome unknown; sending it again with its Idempotency-Key finds it out"
	}
	c.logger.Info(msg, "action", a.Action, "target", a.Target, "actor", a.Actor, "code", code,
		"why", switchyard.AsError(why).Message, "request_id", a.RequestID)
	c.cfg.Observer.Changed(a.Action, code)
	if recorded {
		c.cfg.Observer.Audited(store.OutcomeRejected)
	}
}

// applied counts a change applied and its audit entry. A retry answered
// under its idempotency key is counted again: the store does not say
// whether its entry is new.
func (c *Core) applied(a store.Attempt) {
	c.cfg.Observer.Changed(a.Action, "")
	c.cfg.Observer.Audited(store.OutcomeApplied)
}

// SystemFlagPlan plans turning a system flag on or off; field names the
// boolean in the request, for the error when it is missing.
func SystemFlagPlan(flag string, value *bool, field string) (Plan, error) {
	if _, ok := (switchyard.SystemFlags{}).Get(flag); !ok {
		return Plan{}, switchyard.Errorf(switchyard.CodeUnknownFlag, "%q is not a system flag", flag).
			With("allowed_flags", switchyard.SystemFlagNames)
	}
	if value == nil {
		return Plan{}, switchyard.FieldError(field, "is required: true or false")
	}
	return Plan{
		Phrase:   switchyard.SystemFlagPhrase(flag, *value),
		Mutation: switchyard.SetSystemFlag(flag, *value),
		Safer:    *value,
	}, nil
}

// ProfilePlan plans switching the active profile.
func ProfilePlan(name string) (Plan, error) {
	if name == "" {
		return Plan{}, switchyard.FieldError("profile_name", "is required")
	}
	return Plan{Phrase: switchyard.ProfilePhrase(name), Mutation: switchyard.SetActiveProfile(name),
		Safer: name == switchyard.ProfileFallback}, nil
}

// OverridePlan plans pinning a module's version and/or enabled state over
// the profile.
func OverridePlan(module string, version *string, enabled *bool) (Plan, error) {
	var phrase string
	switch {
	case module == "":
		return Plan{}, switchyard.FieldError("module", "is required")
	case version != nil:
		phrase = switchyard.OverrideVersionPhrase(module, *version)
	case enabled != nil:
		phrase = switchyard.ModuleEnabledPhrase(module, *enabled)
	default:
		return Plan{}, switchyard.Errorf(switchyard.CodeInvalidRequest, "an override needs a version, is_enabled, or both")
	}
	return Plan{Phrase: phrase, Mutation: switchyard.SetOverride(module, version, enabled)}, nil
}

// ClearOverridePlan plans removing a module's override, so the profile
// decides it again.
func ClearOverridePlan(module string) Plan {
	return Plan{Phrase: switchyard.ClearOverridePhrase(module), Mutation: switchyard.ClearOverride(module)}
}

// RegisterModulePlan plans adding a module to the catalog or versions to
// one.
func RegisterModulePlan(spec switchyard.ModuleSpec) Plan {
	return Plan{Phrase: switchyard.RegisterModulePhrase(spec.Key), Mutation: switchyard.RegisterModule(spec)}
}

// UpdateProfilePlan plans changing the defaults a profile gives modules.
func UpdateProfilePlan(name string, config map[string]switchyard.ProfilePatch) Plan {
	return Plan{Phrase: switchyard.UpdateProfilePhrase(name), Mutation: switchyard.UpdateProfile(name, config)}
}

// ImportPlan converts a flagd, LaunchDarkly, Unleash or GO Feature Flag
// file and plans storing its flags; it returns the importer's result too,
// whose report says what each flag became. opts selects the environment
// and whether a flagd file's invalid flags are skipped.
func ImportPlan(format, content string, opts importer.Options) (Plan, importer.Result, error) {
	res, err := importer.Import(format, []byte(content), opts)
	if err != nil {
		return Plan{}, importer.Result{}, err
	}
	return Plan{Phrase: switchyard.ImportPhrase, Mutation: switchyard.ImportFlags(res.Document)}, res, nil
}

// FlagFilesPhrase confirms serving the flag files of serve --flags, a
// change the server makes itself whenever a file changes.
const FlagFilesPhrase = "SERVE FLAG FILES"

// FlagFilesPlan plans serving doc, the flag files' flags merged, as the
// general flags (switchyard.ServeFlagFiles).
func FlagFilesPlan(doc switchyard.Document) Plan {
	return Plan{Phrase: FlagFilesPhrase, Mutation: switchyard.ServeFlagFiles(doc)}
}

// Status is the admin view of a revision: the raw state, what it resolves
// to, and what may be chosen (catalog, profiles).
type Status struct {
	Revision  int64                                `json:"revision"`
	CreatedAt time.Time                            `json:"created_at"`
	Mode      string                               `json:"mode"`
	Flags     switchyard.SystemFlags               `json:"flags"`
	Profile   string                               `json:"profile"`
	Overrides map[string]switchyard.Override       `json:"overrides"`
	Modules   map[string]switchyard.ResolvedModule `json:"modules"`
	Catalog   []switchyard.Module                  `json:"catalog"`
	Profiles  map[string]switchyard.Profile        `json:"profiles"`
	// Degraded says why the service runs degraded (Redis down), as the
	// readiness does; empty when it is not. Only Core.Status sets it.
	Degraded string `json:"degraded,omitempty"`
	// RateLimited counts the requests this process answered RATE_LIMITED
	// since it started, a sign of a flood held back. Only Core.Status sets
	// it.
	RateLimited int64 `json:"rate_limited,omitempty"`
	// Scheduled lists what change requests are scheduled to do next,
	// soonest first, at most scheduledListed of them. Only Core.Status
	// sets it.
	Scheduled []Scheduled `json:"scheduled,omitempty"`
}

// Scheduled is the next step of a change request: applying it (approved,
// or proposed with an apply_at and awaiting approval), reverting it, or
// its expiry.
type Scheduled struct {
	Change int64                  `json:"change"`
	Action string                 `json:"action"`
	Target string                 `json:"target"`
	State  switchyard.ChangeState `json:"state"`
	Step   string                 `json:"step"`
	At     time.Time              `json:"at"`
	// Held says the step waits for ADMIN_FREEZE to be lifted.
	Held bool `json:"held,omitempty"`
}

// scheduledListed bounds the steps the status lists.
const scheduledListed = 10

func (b *backend) statusOf(rev *switchyard.Revision) Status {
	rt := evaluator.Resolve(rev)
	overrides := rev.Overrides
	if overrides == nil {
		overrides = map[string]switchyard.Override{}
	}
	return Status{
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
