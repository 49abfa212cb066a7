package control

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/importer"
	"github.com/switchyard-dev/switchyard/store"
)

// Change requests (design §10): any change of the runtime may be proposed
// instead of applied, approved by other named admins as the policy asks
// (four-eyes), scheduled (apply_at) and time-boxed (revert_at). Proposing,
// approving, rejecting and cancelling are admitted as every change is
// (allowance, role, text, reason, phrase); applying is a change like any
// other, through the same admission and store transaction as a direct
// write (Core.apply), bound to the request's base revision for what it
// touches. The scheduler (scheduler.go) applies, reverts and expires
// requests as their times come.

// Proposal is a change request as a surface decoded it.
type Proposal struct {
	// Change is who proposes, with the phrase and reason of the change
	// proposed, the revision it is based on (0: the current one), the
	// idempotency key, and what could not be decoded. The core sets its
	// Action (propose_change), Target and Plan.
	Change Change
	// Action names the change proposed as the audit log names it
	// (set_flag), and Fields are its fields as its direct route takes
	// them, in a JSON object ({"flag": "EXAM_MODE", "value": true}).
	Action string
	Fields json.RawMessage
	// ApplyAt, RevertAt and ExpiresAt are when the change is to apply
	// (nil: once approved), be reverted (nil: never) and expire unless
	// applied (nil: never).
	ApplyAt   *time.Time
	RevertAt  *time.Time
	ExpiresAt *time.Time
}

// ChangeView is a change request as an operator reads it.
type ChangeView struct {
	switchyard.ChangeRequest
	// Diff is the resolved runtime before and after the change: for a
	// pending request, the current revision and what the change would make
	// of it now; for an applied one, the revisions around it. Nil for a
	// request that ended otherwise, or one that would not apply now.
	Diff *Diff `json:"diff,omitempty"`
	// Problem says why a pending request would be refused if it applied
	// now (what it changes was changed since its base revision, ...).
	Problem string `json:"problem,omitempty"`
}

// Diff is what a change makes of the runtime: the resolved runtime before
// and after it, and the keys of the flags whose evaluation may differ
// (system flags, runtime.profile, module.<key>, general flags).
type Diff struct {
	Before  switchyard.Runtime `json:"before"`
	After   switchyard.Runtime `json:"after"`
	Changed []string           `json:"changed"`
}

// Propose stores a change request, admitted as a change is: its phrase is
// the change's, and it is refused (and the refusal recorded) when the
// change would be refused now, what it changes having been changed since
// the revision it is based on included, ADMIN_FREEZE excepted: a request
// waits for the freeze to be lifted. A request the policy asks no
// approval for is approved at once, and one approved and due is applied
// before Propose returns. Sent again with its idempotency key, it answers
// the request it proposed.
func (c *Core) Propose(ctx context.Context, p Proposal) (ChangeView, error) {
	b := c.acquire()
	defer b.leave()
	ch := p.Change
	ch.Action = switchyard.ActionPropose
	fields, err := decodeProposed(p.Action, p.Fields)
	switch {
	case err == nil:
		ch.Target = fields.target()
	case ch.Invalid == nil:
		ch.Invalid = err
	}
	var plan Plan
	ch.Plan = func() (Plan, error) {
		var err error
		plan, err = fields.plan()
		return plan, err
	}
	attempt, _, err := c.admit(ctx, b, ch)
	if err != nil {
		return ChangeView{}, err
	}
	if id, err := c.proposedBefore(ctx, b, attempt); id != 0 || err != nil {
		if err != nil {
			return ChangeView{}, err
		}
		return c.view(ctx, b, id)
	}
	cr, err := c.draft(ctx, b, p, ch, plan)
	if err != nil {
		return ChangeView{}, c.reject(ctx, b, attempt, err)
	}
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	stored, entry, err := b.store.ProposeChange(wctx, cr, attempt)
	if switchyard.ErrorCode(err) == switchyard.CodeIdempotencyKeyReused {
		return ChangeView{}, c.reject(ctx, b, attempt, err)
	}
	if err != nil {
		return ChangeView{}, err
	}
	c.logger.Info("change proposed", "change", stored.ID, "action", stored.Action, "target", stored.Target,
		"actor", entry.Actor, "state", stored.State, "audit_seq", entry.Seq, "request_id", entry.RequestID)
	if stored.State == switchyard.ChangeApproved {
		c.applyNow(ctx, b, stored.ID)
	}
	return c.view(ctx, b, stored.ID)
}

// proposedBefore returns the request a proposal sent again under a's
// idempotency key made, 0 when the key names none; a key naming another
// request is refused, and the refusal recorded. It is looked up before
// the proposal is checked again, so a retry is answered as the first
// attempt was however the runtime moved since.
func (c *Core) proposedBefore(ctx context.Context, b *backend, a store.Attempt) (int64, error) {
	if a.IdempotencyKey == "" {
		return 0, nil
	}
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	k, err := b.store.Keyed(rctx, a.IdempotencyKey)
	switch {
	case switchyard.ErrorCode(err) == switchyard.CodeNotFound:
		return 0, nil
	case err != nil:
		return 0, err
	}
	id, _ := switchyard.ChangeTargetID(k.Entry.Target)
	proposal := a
	proposal.Target = k.Entry.Target
	if err := k.Answers(proposal); err != nil {
		return 0, c.reject(ctx, b, a, err)
	}
	return id, nil
}

// applyNow takes the step due of request id, approved, before the caller
// is answered; if it cannot, the scheduler takes it at its next pass.
func (c *Core) applyNow(ctx context.Context, b *backend, id int64) {
	if err := c.runDue(context.WithoutCancel(ctx), b, id); err != nil {
		c.logger.Warn("apply an approved change request; the scheduler tries again", "change", id, "err", err)
	}
}

// draft returns the request p proposes, planned as plan and admitted as
// ch, or why it is refused: times that cannot be kept, a base revision
// that does not exist, a change that would be refused now.
func (c *Core) draft(ctx context.Context, b *backend, p Proposal, ch Change, plan Plan) (switchyard.ChangeRequest, error) {
	now := c.now().UTC()
	if err := checkTimes(p, plan.Mutation, now); err != nil {
		return switchyard.ChangeRequest{}, err
	}
	cur, err := b.current(ctx, readTimeout)
	if err != nil {
		return switchyard.ChangeRequest{}, err
	}
	base := cur
	if ch.Expected != 0 && ch.Expected != cur.Number {
		if base, err = b.revision(ctx, ch.Expected); err != nil {
			return switchyard.ChangeRequest{}, err
		}
	}
	if err := preview(ctx, plan.Mutation.BoundTo(base), cur, now); err != nil {
		return switchyard.ChangeRequest{}, err
	}
	rule := c.cfg.Approvals[p.Action]
	state := switchyard.ChangeProposed
	if rule.Approvals == 0 {
		state = switchyard.ChangeApproved
	}
	return switchyard.ChangeRequest{
		Action: p.Action, Target: ch.Target, Fields: p.Fields, Phrase: ch.Phrase, Reason: ch.Reason, Proposer: ch.Actor,
		BaseRevision: base.Number, ApplyAt: utc(p.ApplyAt), RevertAt: utc(p.RevertAt), ExpiresAt: utc(p.ExpiresAt),
		State: state, ApprovalsRequired: rule.Approvals, Approvals: []switchyard.Approval{}, CreatedAt: now,
	}, nil
}

// preview returns why m would be refused if it applied to cur at now,
// ADMIN_FREEZE aside, or nil.
func preview(ctx context.Context, m switchyard.Mutation, cur *switchyard.Revision, now time.Time) error {
	next, err := m.Preview(cur, now)
	if err != nil {
		return err
	}
	return evaluator.ValidateChange(ctx, cur, next)
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// checkTimes refuses times a request could not keep: a revert_at for a
// change that cannot be undone, or not after the change applies; an
// expires_at already past, or before apply_at.
func checkTimes(p Proposal, m switchyard.Mutation, now time.Time) error {
	applies := now
	if p.ApplyAt != nil && p.ApplyAt.After(now) {
		applies = *p.ApplyAt
	}
	switch {
	case p.RevertAt != nil && !m.Revertible():
		return switchyard.FieldError("revert_at", "%s cannot be time-boxed: it cannot be undone", p.Action)
	case p.RevertAt != nil && !p.RevertAt.After(applies):
		return switchyard.FieldError("revert_at", "must be after apply_at, or after now without one")
	case p.ExpiresAt != nil && !p.ExpiresAt.After(now):
		return switchyard.FieldError("expires_at", "must be in the future")
	case p.ExpiresAt != nil && p.ApplyAt != nil && p.ExpiresAt.Before(*p.ApplyAt):
		return switchyard.FieldError("expires_at", "must not be before apply_at: the change would expire before its time")
	}
	return nil
}

// Approve records ch's approval of change request id: an admin's other
// than the proposer, who types the change's phrase and gives a reason. The
// approval that completes the count the policy asked for approves the
// request, and one due is applied before Approve returns. A break-glass
// change's approvals are its review.
func (c *Core) Approve(ctx context.Context, id int64, ch Change) (ChangeView, error) {
	b := c.acquire()
	defer b.leave()
	now := c.now().UTC()
	moved, err := c.moveRequest(ctx, b, id, switchyard.ActionApprove, ch, true, func(cr *switchyard.ChangeRequest) error {
		switch {
		case cr.Proposer == ch.Actor:
			return switchyard.Errorf(switchyard.CodeForbidden, "%s proposed change request %d and cannot approve it: another admin must", ch.Actor, cr.ID)
		case cr.Approved(ch.Actor):
			return switchyard.Errorf(switchyard.CodeChangeState, "%s has approved change request %d already", ch.Actor, cr.ID)
		case cr.State == switchyard.ChangeApplied && cr.BreakGlass && len(cr.Approvals) < cr.ApprovalsRequired:
		case cr.State != switchyard.ChangeProposed:
			return stateError(cr, "approved")
		case cr.ExpiresAt != nil && !now.Before(*cr.ExpiresAt):
			return switchyard.Errorf(switchyard.CodeChangeState, "change request %d expired at %s", cr.ID, cr.ExpiresAt.Format(time.RFC3339))
		}
		cr.Approvals = append(cr.Approvals, switchyard.Approval{Actor: ch.Actor, At: now, Reason: ch.Reason})
		if cr.State == switchyard.ChangeProposed && len(cr.Approvals) >= cr.ApprovalsRequired {
			cr.State = switchyard.ChangeApproved
		}
		return nil
	})
	if err != nil {
		return ChangeView{}, err
	}
	if moved.State == switchyard.ChangeApproved {
		c.applyNow(ctx, b, id)
	}
	return c.view(ctx, b, id)
}

// Reject records ch's rejection of change request id, pending: an admin's
// other than the proposer (who cancels instead), with a reason.
func (c *Core) Reject(ctx context.Context, id int64, ch Change) (ChangeView, error) {
	return c.end(ctx, id, switchyard.ActionReject, ch, switchyard.ChangeRejected, func(cr *switchyard.ChangeRequest) error {
		if cr.Proposer == ch.Actor {
			return switchyard.Errorf(switchyard.CodeForbidden, "%s proposed change request %d: cancel it rather than reject it", ch.Actor, cr.ID)
		}
		return nil
	})
}

// Cancel records ch's cancellation of change request id, pending: any
// admin's, with a reason.
func (c *Core) Cancel(ctx context.Context, id int64, ch Change) (ChangeView, error) {
	return c.end(ctx, id, switchyard.ActionCancel, ch, switchyard.ChangeCancelled, func(*switchyard.ChangeRequest) error { return nil })
}

// end moves pending change request id to state by ch, when check allows.
func (c *Core) end(ctx context.Context, id int64, action string, ch Change, state switchyard.ChangeState, check func(*switchyard.ChangeRequest) error) (ChangeView, error) {
	b := c.acquire()
	defer b.leave()
	_, err := c.moveRequest(ctx, b, id, action, ch, false, func(cr *switchyard.ChangeRequest) error {
		if !cr.State.Pending() {
			return stateError(cr, string(state))
		}
		if err := check(cr); err != nil {
			return err
		}
		cr.State = state
		return nil
	})
	if err != nil {
		return ChangeView{}, err
	}
	return c.view(ctx, b, id)
}

// stateError refuses a transition to what the request's state does not
// allow.
func stateError(cr *switchyard.ChangeRequest, what string) error {
	return switchyard.Errorf(switchyard.CodeChangeState, "change request %d is %s and cannot be %s", cr.ID, cr.State, what).
		With("state", cr.State)
}

// moveRequest admits ch, an operator's action on change request id (with
// the request's phrase when confirm is set, else none), and moves the
// request by step in the store, which records the move or step's refusal.
func (c *Core) moveRequest(ctx context.Context, b *backend, id int64, action string, ch Change, confirm bool,
	step func(*switchyard.ChangeRequest) error) (switchyard.ChangeRequest, error) {
	ch.Action, ch.Target = action, switchyard.ChangeTarget(id)
	ch.Plan = func() (Plan, error) {
		if !confirm {
			return Plan{}, nil
		}
		rctx, cancel := context.WithTimeout(ctx, readTimeout)
		defer cancel()
		cr, err := b.store.ChangeRequest(rctx, id)
		return Plan{Phrase: cr.Phrase}, err
	}
	attempt, _, err := c.admit(ctx, b, ch)
	if err != nil {
		return switchyard.ChangeRequest{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	moved, entry, err := b.store.MoveChange(wctx, id, store.Move{Attempt: attempt, At: c.now(), Step: step})
	if err != nil {
		if entry.Outcome == store.OutcomeRejected {
			// The store recorded the refusal with the move it refused.
			c.refusals.spend(ch.Actor, c.now())
		}
		return switchyard.ChangeRequest{}, err
	}
	c.logger.Info("change request moved", "change", id, "action", action, "state", moved.State, "actor", entry.Actor,
		"audit_seq", entry.Seq, "request_id", entry.RequestID)
	return moved, nil
}

// ChangeRequest returns change request id as an operator reads it, with
// the diff of the resolved runtime it makes or would make.
func (c *Core) ChangeRequest(ctx context.Context, id int64) (ChangeView, error) {
	b := c.acquire()
	defer b.leave()
	return c.view(ctx, b, id)
}

// ChangeRequests lists change requests newest first, as q asks (State,
// Limit, Before).
func (c *Core) ChangeRequests(ctx context.Context, q store.ChangeQuery) ([]switchyard.ChangeRequest, error) {
	b := c.acquire()
	defer b.leave()
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	return b.store.ChangeRequests(rctx, q)
}

// view reads change request id and the diff it makes.
func (c *Core) view(ctx context.Context, b *backend, id int64) (ChangeView, error) {
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	cr, err := b.store.ChangeRequest(rctx, id)
	if err != nil {
		return ChangeView{}, err
	}
	v := ChangeView{ChangeRequest: cr}
	var before, after *switchyard.Revision
	switch {
	case cr.State == switchyard.ChangeApplied:
		if before, err = b.revision(ctx, cr.AppliedRevision-1); err != nil {
			return ChangeView{}, err
		}
		if after, err = b.revision(ctx, cr.AppliedRevision); err != nil {
			return ChangeView{}, err
		}
	case cr.State.Pending():
		plan, base, err := c.planned(ctx, b, cr)
		if err == nil {
			if before, err = b.current(ctx, readTimeout); err == nil {
				after, err = plan.Mutation.BoundTo(base).Preview(before, c.now())
			}
		}
		switch {
		case retry(err):
			return ChangeView{}, err
		case err != nil:
			v.Problem = switchyard.AsError(err).Message
			return v, nil
		}
	default:
		return v, nil
	}
	v.Diff = &Diff{Before: evaluator.Resolve(before), After: evaluator.Resolve(after),
		Changed: evaluator.ChangedFlags(before, after, b.mode)}
	return v, nil
}

// planned returns the plan of cr's change, made from its fields again, and
// the revision it is based on. A plan that cannot be made is an error to
// record as the request's failure; a base that cannot be read is the
// store's.
func (c *Core) planned(ctx context.Context, b *backend, cr switchyard.ChangeRequest) (Plan, *switchyard.Revision, error) {
	fields, err := decodeProposed(cr.Action, cr.Fields)
	if err != nil {
		return Plan{}, nil, err
	}
	plan, err := fields.plan()
	if err != nil {
		return Plan{}, nil, err
	}
	base, err := b.revision(ctx, cr.BaseRevision)
	return plan, base, err
}

// revision reads revision n within the read deadline.
func (b *backend) revision(ctx context.Context, n int64) (*switchyard.Revision, error) {
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	return b.store.Revision(rctx, n)
}

// flagForReview records a change a policy asks approvals for, which ch
// made directly as break-glass, as an applied change request awaiting the
// rule's approvals as its review. The change is applied whatever becomes
// of the record; a failure to make it is logged. Sent again with its
// idempotency key, the change is recorded once: the record's key is made
// of the change's, in a form no client sends.
func (c *Core) flagForReview(ctx context.Context, b *backend, ch Change, rule Rule, rev *switchyard.Revision) {
	now := c.now().UTC()
	a := store.Attempt{Actor: ch.Actor, Role: string(ch.Role), Action: switchyard.ActionBreakGlass, Reason: ch.Reason,
		Phrase: ch.Phrase, RequestID: ch.RequestID, RequestHash: ch.RequestHash}
	if ch.IdempotencyKey != "" {
		sum := sha256.Sum256([]byte(ch.IdempotencyKey))
		a.IdempotencyKey = "review/" + hex.EncodeToString(sum[:])
	}
	cr := switchyard.ChangeRequest{Action: ch.Action, Target: ch.Target, Fields: json.RawMessage(`{}`), Phrase: ch.Phrase,
		Reason: ch.Reason, Proposer: ch.Actor, BaseRevision: rev.Number - 1, State: switchyard.ChangeApplied,
		ApprovalsRequired: rule.Approvals, Approvals: []switchyard.Approval{}, BreakGlass: true,
		AppliedRevision: rev.Number, AppliedAt: &now, CreatedAt: now}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	stored, entry, err := b.store.ProposeChange(wctx, cr, a)
	if err != nil {
		c.logger.Error("record a break-glass change for review", "action", ch.Action, "target", ch.Target, "actor", ch.Actor,
			"revision", rev.Number, "request_id", ch.RequestID, "err", err)
		return
	}
	c.logger.Warn("break-glass change applied; its review is pending", "change", stored.ID, "action", ch.Action,
		"target", ch.Target, "actor", ch.Actor, "revision", rev.Number, "audit_seq", entry.Seq)
}

// proposed is a proposed change's fields, decoded: what it targets, named
// as the audit log names it, and its plan.
type proposed interface {
	target() string
	plan() (Plan, error)
}

// decodeProposed decodes the fields of a change of action, refusing a
// field the action's direct route does not take.
func decodeProposed(action string, fields json.RawMessage) (proposed, error) {
	var p proposed
	switch action {
	case "set_flag":
		p = &flagFields{}
	case "set_profile":
		p = &profileFields{}
	case "set_override":
		p = &overrideFields{}
	case "clear_override":
		p = &clearOverrideFields{}
	case "register_module":
		p = &moduleFields{}
	case "update_profile":
		p = &profileUpdateFields{}
	case "import_flags":
		p = &importFields{}
	case "":
		return nil, switchyard.FieldError("action", "is required: one of %s", strings.Join(Proposable, ", "))
	default:
		return nil, switchyard.FieldError("action", "%q cannot be proposed: use one of %s", action, strings.Join(Proposable, ", "))
	}
	if len(fields) == 0 {
		fields = json.RawMessage(`{}`)
	}
	dec := json.NewDecoder(bytes.NewReader(fields))
	dec.DisallowUnknownFields()
	if err := dec.Decode(p); err != nil {
		return nil, fieldsError(action, err)
	}
	return p, nil
}

// fieldsError explains why the fields of a change of action do not
// decode.
func fieldsError(action string, err error) error {
	var (
		e   *switchyard.Error
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &typ) && typ.Field != "":
		return switchyard.FieldError(typ.Field, "must be a JSON %s, not %s", typ.Type.Kind(), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return switchyard.FieldError(field, "is not a field of %s", action)
	}
	return switchyard.Errorf(switchyard.CodeInvalidRequest, "the fields of %s: %v", action, err)
}

// The fields of each change that may be proposed, as their direct routes
// take them (a route's path parameter is a field here).
type (
	flagFields struct {
		Flag  string `json:"flag"`
		Value *bool  `json:"value"`
	}
	profileFields struct {
		ProfileName string `json:"profile_name"`
	}
	overrideFields struct {
		Module    string  `json:"module"`
		Version   *string `json:"version"`
		IsEnabled *bool   `json:"is_enabled"`
	}
	clearOverrideFields struct {
		Module string `json:"module"`
	}
	moduleFields struct {
		Key      string            `json:"key"`
		Kind     switchyard.Kind   `json:"kind"`
		Versions []string          `json:"versions"`
		Defaults map[string]string `json:"defaults"`
	}
	profileUpdateFields struct {
		Name   string                             `json:"name"`
		Config map[string]switchyard.ProfilePatch `json:"config"`
	}
	importFields struct {
		Format      string `json:"format"`
		Content     string `json:"content"`
		Environment string `json:"environment"`
		SkipInvalid bool   `json:"skip_invalid"`
	}
)

func (f *flagFields) target() string { return f.Flag }
func (f *flagFields) plan() (Plan, error) {
	return SystemFlagPlan(f.Flag, f.Value, "value")
}

func (f *profileFields) target() string      { return switchyard.ProfileKey }
func (f *profileFields) plan() (Plan, error) { return ProfilePlan(f.ProfileName) }

func (f *overrideFields) target() string { return "module:" + f.Module }
func (f *overrideFields) plan() (Plan, error) {
	return OverridePlan(f.Module, f.Version, f.IsEnabled)
}

func (f *clearOverrideFields) target() string { return "module:" + f.Module }
func (f *clearOverrideFields) plan() (Plan, error) {
	if f.Module == "" {
		return Plan{}, switchyard.FieldError("module", "is required")
	}
	return ClearOverridePlan(f.Module), nil
}

func (f *moduleFields) target() string { return "module:" + f.Key }
func (f *moduleFields) plan() (Plan, error) {
	if f.Key == "" {
		return Plan{}, switchyard.FieldError("key", "is required")
	}
	return RegisterModulePlan(switchyard.ModuleSpec{Key: f.Key, Kind: f.Kind, Versions: f.Versions, Defaults: f.Defaults}), nil
}

func (f *profileUpdateFields) target() string { return "profile:" + f.Name }
func (f *profileUpdateFields) plan() (Plan, error) {
	if f.Name == "" {
		return Plan{}, switchyard.FieldError("name", "is required")
	}
	return UpdateProfilePlan(f.Name, f.Config), nil
}

func (f *importFields) target() string { return "flags" }
func (f *importFields) plan() (Plan, error) {
	p, _, err := ImportPlan(f.Format, f.Content, importer.Options{Environment: f.Environment, SkipInvalid: f.SkipInvalid})
	return p, err
}

// requestID names the scheduler's step of change request id in the audit
// log and the service log: its request ID, and the idempotency key that
// makes the step apply once whoever retries it. No client can send it
// (their request IDs and keys have no '/'), so no client's key is taken
// for a step.
func requestID(id int64, step string) string {
	return fmt.Sprintf("change/%d/%s", id, step)
}
