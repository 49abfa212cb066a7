package control

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/importer"
	"github.com/switchyard-dev/switchyard/store"
)

// MaxReasonLength bounds the reason every change must give.
const MaxReasonLength = 1000

// Change is one request to change the runtime, as a surface decoded it.
// Every kind of change, the mode toggle and imports included, goes through
// the same admission: the role, a decodable request, a reason, the plan,
// the exact phrase, then ADMIN_FREEZE and the expected revision; a refusal
// is recorded in the audit log.
type Change struct {
	// Actor and Role say who asks, as the audit log names them.
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
func (c *Core) Apply(ctx context.Context, ch Change) (Applied, error) {
	b := c.acquire()
	defer b.leave()
	attempt, p, err := c.admit(ctx, b, ch)
	if err != nil || ch.DryRun {
		return Applied{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	rev, entry, err := b.store.Apply(wctx, store.Change{Attempt: attempt, Expected: ch.Expected, Mutation: p.Mutation})
	b.wrote(err)
	if err != nil {
		c.refused(attempt, err, entry.Seq != 0)
		return Applied{}, err
	}
	c.applied(attempt)
	b.flags.learn(rev)
	c.logger.Info("runtime changed", "action", entry.Action, "target", entry.Target, "actor", entry.Actor,
		"revision", rev.Number, "audit_seq", entry.Seq, "request_id", entry.RequestID, "idempotency_key", ch.IdempotencyKey)
	return Applied{AuditSeq: entry.Seq, Status: b.statusOf(rev)}, nil
}

// admit checks the role, the request, the reason, the plan and the phrase,
// in that order, and for a mode switch ADMIN_FREEZE and the expected
// revision (a mutation's are checked by the store as it applies it,
// atomically with the write). A refusal is recorded in b's audit log
// (unless it is a dry run's) and returned; otherwise admit returns the
// attempt to record and the plan.
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
	var p Plan
	refusal := func() error {
		switch {
		case ch.Role != switchyard.RoleAdmin:
			return switchyard.Errorf(switchyard.CodeForbidden, "the %s role cannot change the runtime; use an admin token", ch.Role)
		case ch.Invalid != nil:
			return ch.Invalid
		case strings.TrimSpace(ch.Reason) == "":
			return switchyard.Errorf(switchyard.CodeReasonRequired, "reason is required: say why the change is made, for the audit log")
		case utf8.RuneCountInString(ch.Reason) > MaxReasonLength:
			return switchyard.Errorf(switchyard.CodeReasonRequired, "reason must be at most %d characters", MaxReasonLength).
				With("max_length", MaxReasonLength)
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
			return admitSwitch(ctx, b, ch.Expected)
		}
		return nil
	}()
	if refusal != nil && !ch.DryRun {
		c.reject(ctx, b, attempt, refusal)
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

// reject records a refused attempt in b's audit log. A failure to record
// is logged; the caller still learns why the change was refused.
func (c *Core) reject(ctx context.Context, b *backend, a store.Attempt, why error) {
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
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

// togglePhrase is the phrase that turns a named switch on or off, e.g.
// ENABLE EXAM MODE or DISABLE FREEZE UPDATES.
func togglePhrase(on bool, name string) string {
	if on {
		return "ENABLE " + name
	}
	return "DISABLE " + name
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
		Phrase:   togglePhrase(*value, strings.ReplaceAll(flag, "_", " ")),
		Mutation: switchyard.SetSystemFlag(flag, *value),
	}, nil
}

// ProfilePlan plans switching the active profile.
func ProfilePlan(name string) (Plan, error) {
	if name == "" {
		return Plan{}, switchyard.FieldError("profile_name", "is required")
	}
	return Plan{Phrase: "SET PROFILE " + strings.ToUpper(name), Mutation: switchyard.SetActiveProfile(name)}, nil
}

// OverridePlan plans pinning a module's version and/or enabled state over
// the profile.
func OverridePlan(module string, version *string, enabled *bool) (Plan, error) {
	var phrase string
	switch {
	case module == "":
		return Plan{}, switchyard.FieldError("module", "is required")
	case version != nil:
		phrase = fmt.Sprintf("OVERRIDE MODULE %s TO %s", module, *version)
	case enabled != nil:
		phrase = togglePhrase(*enabled, "MODULE "+module)
	default:
		return Plan{}, switchyard.Errorf(switchyard.CodeInvalidRequest, "an override needs a version, is_enabled, or both")
	}
	return Plan{Phrase: phrase, Mutation: switchyard.SetOverride(module, version, enabled)}, nil
}

// ClearOverridePlan plans removing a module's override, so the profile
// decides it again.
func ClearOverridePlan(module string) Plan {
	return Plan{Phrase: "CLEAR OVERRIDE " + module, Mutation: switchyard.ClearOverride(module)}
}

// RegisterModulePlan plans adding a module to the catalog or versions to
// one.
func RegisterModulePlan(spec switchyard.ModuleSpec) Plan {
	return Plan{Phrase: "REGISTER MODULE " + spec.Key, Mutation: switchyard.RegisterModule(spec)}
}

// UpdateProfilePlan plans changing the defaults a profile gives modules.
func UpdateProfilePlan(name string, config map[string]switchyard.ProfilePatch) Plan {
	return Plan{Phrase: "UPDATE PROFILE " + strings.ToUpper(name), Mutation: switchyard.UpdateProfile(name, config)}
}

// ImportPhrase confirms an import. It names no flag: one import may hold
// hundreds, and the report already says what each becomes.
const ImportPhrase = "IMPORT FLAGS"

// ImportPlan converts a flagd, LaunchDarkly, Unleash or GO Feature Flag
// file and plans storing its flags; it returns the importer's result too,
// whose report says what each flag became.
func ImportPlan(format, content, environment string) (Plan, importer.Result, error) {
	res, err := importer.Import(format, []byte(content), importer.Options{Environment: environment})
	if err != nil {
		return Plan{}, importer.Result{}, err
	}
	return Plan{Phrase: ImportPhrase, Mutation: switchyard.ImportFlags(res.Document)}, res, nil
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
}

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
