package control

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
)

// scheduleInterval is how often each backend's scheduler looks for change
// requests due: a request runs within about this long of its time.
const scheduleInterval = 500 * time.Millisecond

// lateAfter is how late a change may apply before its lateness is
// recorded: later than the scheduler's own delay.
const lateAfter = time.Second

// runScheduler applies, reverts and expires the change requests of b's
// store as they fall due, every scheduleInterval until b stops. Every
// replica runs one; the store's claims make each step happen once.
func (c *Core) runScheduler(b *backend) {
	defer close(b.schedulerDone)
	t := time.NewTicker(scheduleInterval)
	defer t.Stop()
	var failing string
	for {
		select {
		case <-b.done:
			return
		case <-t.C:
		}
		err := c.runDue(context.Background(), b, 0)
		switch {
		case err == nil && failing != "":
			c.logger.Info("the scheduler reaches the store again")
			failing = ""
		case err != nil && switchyard.AsError(err).Message != failing:
			failing = switchyard.AsError(err).Message
			c.logger.Error("the scheduler cannot claim due change requests; they run once the store answers", "err", err)
		}
	}
}

// runDue claims and takes the step due of each change request due now,
// one at a time, in the order they were proposed: request id alone, when
// id is set.
func (c *Core) runDue(ctx context.Context, b *backend, id int64) error {
	q := store.DueQuery{Now: c.now().UTC(), ID: id}
	for {
		claimed, err := b.store.ClaimDue(ctx, q, func(cr switchyard.ChangeRequest) (store.Move, bool) {
			return c.step(ctx, b, cr, q.Now)
		})
		if err != nil || claimed == 0 || id != 0 {
			return err
		}
		q.After = claimed
	}
}

// step takes the step due at now of cr, claimed, and returns the move that
// records it, or false when there is none to record (the store did not
// answer: the request stays due, and the next claim tries again).
func (c *Core) step(ctx context.Context, b *backend, cr switchyard.ChangeRequest, now time.Time) (store.Move, bool) {
	switch {
	case cr.State.Pending() && cr.ExpiresAt != nil && !now.Before(*cr.ExpiresAt):
		return scheduled(cr, switchyard.ActionExpire, now, "not applied by expires_at", func(cr *switchyard.ChangeRequest) {
			cr.State, cr.Held = switchyard.ChangeExpired, false
		}), true
	case cr.State == switchyard.ChangeApproved:
		return c.applyDue(ctx, b, cr, now)
	case cr.State == switchyard.ChangeApplied && cr.RevertAt != nil && cr.Revert == "":
		return c.revertDue(ctx, b, cr, now)
	}
	return store.Move{}, false
}

// scheduled is the move of a step the scheduler takes, on behalf of the
// proposer, noted with note.
func scheduled(cr switchyard.ChangeRequest, action string, now time.Time, note string, step func(*switchyard.ChangeRequest)) store.Move {
	return store.Move{
		Attempt: store.Attempt{Actor: cr.Proposer, Role: string(switchyard.RoleAdmin), Action: action, Reason: cr.Reason,
			RequestID: requestID(cr.ID, action)},
		At: now, Note: note,
		Step: func(cr *switchyard.ChangeRequest) error { step(cr); return nil },
	}
}

// applyDue applies approved request cr, due at now, as a change made on
// behalf of its proposer: bound to its base revision, through the same
// admission and store transaction as a direct write, with an idempotency
// key of its own, so a claim that died after applying it is answered
// that change by the next. It is held while ADMIN_FREEZE is on, and fails
// when the change is refused (what it changes changed since its base).
func (c *Core) applyDue(ctx context.Context, b *backend, cr switchyard.ChangeRequest, now time.Time) (store.Move, bool) {
	key := requestID(cr.ID, "apply")
	applied := func(revision int64) (store.Move, bool) {
		late := now.Sub(cr.ApplyDue())
		note := fmt.Sprintf("revision %d", revision)
		if late > lateAfter {
			note += fmt.Sprintf(", %s late", late.Round(time.Second))
		}
		return scheduled(cr, switchyard.ActionApply, now, note, func(cr *switchyard.ChangeRequest) {
			cr.State, cr.Held, cr.AppliedRevision, cr.AppliedAt = switchyard.ChangeApplied, false, revision, &now
			if late > lateAfter {
				cr.LateSeconds = late.Round(time.Millisecond).Seconds()
			}
		}), true
	}
	plan, base, err := c.planned(ctx, b, cr)
	if err != nil {
		return c.failed(cr, now, err)
	}
	m := plan.Mutation.BoundTo(base)
	ch := c.onBehalf(cr, key, cr.Action, cr.Target, cr.Reason, cr.Phrase, Plan{Phrase: cr.Phrase, Mutation: m})
	entry, done, err := c.keyed(ctx, b, ch)
	switch {
	case err != nil:
		return c.failed(cr, now, err)
	case done:
		return applied(entry.Revision)
	}
	got, err := c.dueChange(ctx, b, ch, m, now)
	switch {
	case err == nil:
		return applied(got.Status.Revision)
	case switchyard.ErrorCode(err) == switchyard.CodeAdminFreezeActive:
		return c.held(cr, now)
	}
	return c.failed(cr, now, err)
}

// revertDue reverts time-boxed request cr at its revert_at, now, as a
// change made on behalf of its proposer: what the change touched returns
// to what it was before it, unless it was changed since (the revert is
// skipped, and recorded so). It is held while ADMIN_FREEZE is on.
func (c *Core) revertDue(ctx context.Context, b *backend, cr switchyard.ChangeRequest, now time.Time) (store.Move, bool) {
	key := requestID(cr.ID, "revert")
	ended := func(action, revert, note string, revision int64) (store.Move, bool) {
		return scheduled(cr, action, now, note, func(cr *switchyard.ChangeRequest) {
			cr.Revert, cr.RevertRevision, cr.Held = revert, revision, false
			if revert != switchyard.RevertDone {
				cr.Why = note
			}
		}), true
	}
	plan, _, err := c.planned(ctx, b, cr)
	if err != nil && !retry(err) {
		return ended(switchyard.ActionRevert, switchyard.RevertFailed, switchyard.AsError(err).Message, 0)
	}
	before, berr := b.revision(ctx, cr.AppliedRevision-1)
	after, aerr := b.revision(ctx, cr.AppliedRevision)
	if err := errors.Join(err, berr, aerr); err != nil {
		c.logger.Warn("a due revert waits for the store", "change", cr.ID, "err", err)
		return store.Move{}, false
	}
	m, ok := plan.Mutation.Revert(before, after)
	if !ok {
		return ended(switchyard.ActionRevert, switchyard.RevertFailed, cr.Action+" cannot be undone", 0)
	}
	phrase := fmt.Sprintf("REVERT CHANGE %d", cr.ID)
	ch := c.onBehalf(cr, key, m.Action, m.Target, fmt.Sprintf("revert_at of change request %d", cr.ID), phrase, Plan{Phrase: phrase, Mutation: m})
	entry, done, err := c.keyed(ctx, b, ch)
	if done {
		return ended(switchyard.ActionRevert, switchyard.RevertDone, fmt.Sprintf("revision %d", entry.Revision), entry.Revision)
	}
	var got Applied
	if err == nil {
		got, err = c.dueChange(ctx, b, ch, m, now)
	}
	if retry(err) {
		c.logger.Warn("a due revert waits for the store", "change", cr.ID, "err", err)
		return store.Move{}, false
	}
	switch {
	case err == nil:
		return ended(switchyard.ActionRevert, switchyard.RevertDone, fmt.Sprintf("revision %d", got.Status.Revision), got.Status.Revision)
	case switchyard.ErrorCode(err) == switchyard.CodeAdminFreezeActive:
		return c.held(cr, now)
	case switchyard.ErrorCode(err) == switchyard.CodeRevisionConflict:
		return ended(switchyard.ActionSkipRevert, switchyard.RevertSkipped, switchyard.AsError(err).Message, 0)
	}
	return ended(switchyard.ActionRevert, switchyard.RevertFailed, switchyard.AsError(err).Message, 0)
}

// dueChange applies ch, a step due at now whose mutation is m: m is
// first tried on the current revision, so a change that would be refused
// (frozen, or what it touches changed) is answered without an attempt in
// the audit log; then it goes through the one path of every change.
// The caller records the refusal, or tries again when the store did not
// answer (retry).
func (c *Core) dueChange(ctx context.Context, b *backend, ch Change, m switchyard.Mutation, now time.Time) (Applied, error) {
	cur, err := b.current(ctx, readTimeout)
	if err != nil {
		return Applied{}, err
	}
	if err := m.Frozen(cur); err != nil {
		return Applied{}, err
	}
	if err := preview(ctx, m, cur, now); err != nil {
		return Applied{}, err
	}
	return c.apply(ctx, b, ch)
}

// keyed looks up the change ch, a step of a request, under its
// idempotency key: done when it was applied already (a claim died after
// applying it), with its audit entry.
func (c *Core) keyed(ctx context.Context, b *backend, ch Change) (entry store.AuditEntry, done bool, err error) {
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	k, err := b.store.Keyed(rctx, ch.IdempotencyKey)
	switch {
	case switchyard.ErrorCode(err) == switchyard.CodeNotFound:
		return store.AuditEntry{}, false, nil
	case err != nil:
		return store.AuditEntry{}, false, err
	}
	a := store.Attempt{Action: ch.Action, Target: ch.Target, IdempotencyKey: ch.IdempotencyKey, RequestHash: ch.RequestHash}
	return k.Entry, k.Answers(a) == nil, nil
}

// onBehalf is the change a step of cr makes on behalf of its proposer:
// admitted as the proposer's, with the approvals cr had, under key.
func (c *Core) onBehalf(cr switchyard.ChangeRequest, key, action, target, reason, phrase string, p Plan) Change {
	return Change{Actor: cr.Proposer, Role: switchyard.RoleAdmin, RequestID: key, IdempotencyKey: key, RequestHash: key,
		Action: action, Target: target, Reason: reason, Phrase: phrase,
		Plan: func() (Plan, error) { return p, nil }, approved: true}
}

// held records that cr waits for ADMIN_FREEZE to be lifted, once.
func (c *Core) held(cr switchyard.ChangeRequest, now time.Time) (store.Move, bool) {
	if cr.Held {
		return store.Move{}, false
	}
	return scheduled(cr, switchyard.ActionHold, now, "waits for ADMIN_FREEZE to be lifted", func(cr *switchyard.ChangeRequest) {
		cr.Held = true
	}), true
}

// failed records why cr could not be applied, unless the store did not
// answer: then it is tried again.
func (c *Core) failed(cr switchyard.ChangeRequest, now time.Time, err error) (store.Move, bool) {
	if retry(err) {
		c.logger.Warn("a due change request waits for the store", "change", cr.ID, "err", err)
		return store.Move{}, false
	}
	why := switchyard.AsError(err)
	if why.Code == switchyard.CodeInternal {
		c.logger.Error("apply a due change request", "change", cr.ID, "err", err)
	}
	return scheduled(cr, switchyard.ActionFail, now, why.Message, func(cr *switchyard.ChangeRequest) {
		cr.State, cr.Held, cr.Why = switchyard.ChangeFailed, false, string(why.Code)+": "+why.Message
	}), true
}

// retry reports whether a step failed because the store did not answer
// (or the caller gave up): it is tried again at the next claim.
func retry(err error) bool {
	if err == nil {
		return false
	}
	switch switchyard.AsError(err).Code {
	case switchyard.CodeUnavailable, switchyard.CodeOutcomeUnknown, switchyard.CodeCanceled:
		return true
	}
	return false
}
