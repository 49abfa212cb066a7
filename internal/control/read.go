package control

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/store"
)

// Evaluation is the flag set a request is evaluated against.
type Evaluation struct {
	Set *evaluator.FlagSet
	// fallback marks the conservative fallback: results say STALE.
	fallback bool
	// stale marks the last-known-good file's revision: results say STALE.
	stale bool
	// pin says, for a session, that its pin is this replica's own
	// (pinLocal), could not be had at all (pinUnreadable) or was not made
	// (pinRateLimited, pinSessionLimit): results say STALE and name it.
	pin pinState
	// obs hears of every result.
	obs Observer
}

// Evaluation returns the live flag set, or, when sessionID is set, the
// flag set of that session's pinned revision, pinning the session at first
// sight (client names who asks, as for Pin). It does not fail because a
// store did, nor because a limit refused a new session: a session whose
// pin cannot be read or made is evaluated live, and its results say so.
func (c *Core) Evaluation(ctx context.Context, client, sessionID string) (Evaluation, error) {
	b := c.acquire()
	defer b.leave()
	cur := b.flags.live(ctx)
	live := Evaluation{Set: cur.set, fallback: cur.fallback, stale: cur.stale, obs: c.cfg.Observer}
	if sessionID == "" {
		return live, nil
	}
	n, id, state := c.evaluationPin(ctx, b, client, sessionID)
	switch state {
	case pinStored, pinLocal:
		// forRevision puts the read deadline on the store call it may
		// make; a cached revision, the common case, costs no timer.
		fs, err := b.flags.forRevision(ctx, n, id)
		if err == nil {
			return Evaluation{Set: fs.Pinned(), pin: state, obs: c.cfg.Observer}, nil
		}
		c.logger.Warn("load a session's pinned revision; serving the live values as STALE", "session", sessionID, "revision", n, "err", err)
		live.pin = pinUnreadable
	default:
		live.pin = state
	}
	return live, nil
}

// Result evaluates key. Results the store does not stand behind say STALE
// and why in their metadata: the conservative fallback (fallback:
// conservative), the last-known-good file (stale: true), a session pinned
// by this replica during an outage (pin: local), a session whose pin could
// not be read (pin: unreadable, with the live values), a new session not
// pinned because its client is over its limit of new sessions (pin:
// rate_limited) or the store holds as many as it may (pin: session_limit),
// with the live values. The core's Observer hears of every result.
func (ev Evaluation) Result(key string, evalCtx map[string]any) evaluator.Result {
	r := ev.result(key, evalCtx)
	ev.obs.Evaluated(key, r.Reason, r.ErrorCode, ev.Set.Pinned() == ev.Set)
	return r
}

func (ev Evaluation) result(key string, evalCtx map[string]any) evaluator.Result {
	r := ev.Set.Evaluate(key, evalCtx)
	if (ev.fallback || ev.stale || ev.pin != pinStored) && r.ErrorCode == "" {
		r.Reason = evaluator.ReasonStale
		md := make(map[string]any, len(r.Metadata)+2)
		maps.Copy(md, r.Metadata)
		switch {
		case ev.fallback:
			md["fallback"] = "conservative"
		case ev.stale:
			md["stale"] = true
		}
		switch ev.pin {
		case pinLocal:
			md[switchyard.MetadataPin] = switchyard.PinLocal
		case pinUnreadable:
			md[switchyard.MetadataPin] = switchyard.PinUnreadable
		case pinRateLimited:
			md[switchyard.MetadataPin] = switchyard.PinRateLimited
		case pinSessionLimit:
			md[switchyard.MetadataPin] = switchyard.PinSessionLimit
		}
		r.Metadata = md
	}
	return r
}

// Bundle returns revision n, or the current revision when n is 0. Until
// the store has been reached there is no current revision to hand out: the
// conservative fallback is for this process's own answers only.
func (c *Core) Bundle(ctx context.Context, n int64) (switchyard.Bundle, error) {
	b := c.acquire()
	defer b.leave()
	if n != 0 {
		rev, err := b.flags.revision(ctx, n)
		if err != nil {
			return switchyard.Bundle{}, err
		}
		return switchyard.Bundle{Revision: rev, Mode: b.mode}, nil
	}
	cur := b.flags.live(ctx)
	if cur.fallback {
		return switchyard.Bundle{}, switchyard.Errorf(switchyard.CodeUnavailable, "the store has not been reached yet; try again")
	}
	return switchyard.Bundle{Revision: cur.rev, Mode: b.mode}, nil
}

// Status returns the admin view of the current revision, read from the
// store so an operator always sees the truth, not a cached copy. When the
// store does not answer the error says what evaluations are served
// meanwhile.
func (c *Core) Status(ctx context.Context) (Status, error) {
	b := c.acquire()
	defer b.leave()
	rev, err := b.current(ctx, readTimeout)
	if err != nil {
		if switchyard.AsError(err).Code == switchyard.CodeUnavailable {
			return Status{}, switchyard.Errorf(switchyard.CodeUnavailable, "degraded: %s", b.storeDown(err).detail)
		}
		return Status{}, err
	}
	st := b.statusOf(rev)
	why, _ := b.degraded(c.now())
	st.Degraded = why.detail
	st.RateLimited = c.refusals.limited.Load()
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	next, err := b.store.ChangeRequests(rctx, store.ChangeQuery{Scheduled: true, Limit: scheduledListed})
	if err != nil {
		return Status{}, err
	}
	for _, cr := range next {
		step, at, _ := cr.Next()
		st.Scheduled = append(st.Scheduled, Scheduled{Change: cr.ID, Action: cr.Action, Target: cr.Target, State: cr.State,
			Step: step, At: at, Held: cr.Held})
	}
	return st, nil
}

// Export returns the current revision, runtime flags included, as a flagd
// document that flagd itself loads, and the revision's number. It reads the
// store, like the status, so an export is never a stale cached copy.
func (c *Core) Export(ctx context.Context) (switchyard.Document, int64, error) {
	b := c.acquire()
	defer b.leave()
	rev, err := b.current(ctx, readTimeout)
	if err != nil {
		return switchyard.Document{}, 0, err
	}
	return evaluator.Export(rev, b.mode), rev.Number, nil
}

// Audit lists audit entries newest first.
func (c *Core) Audit(ctx context.Context, q store.AuditQuery) ([]store.AuditEntry, error) {
	b := c.acquire()
	defer b.leave()
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	return b.store.Audit(rctx, q)
}

// VerifyAudit walks the audit hash chain and says whether it is intact, or
// which entry is the first that is not.
func (c *Core) VerifyAudit(ctx context.Context) (store.Verification, error) {
	b := c.acquire()
	defer b.leave()
	// Walking the whole chain is the one read that may take a while.
	rctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return b.store.VerifyAudit(rctx)
}

// Readiness says whether this replica should take traffic, and why not.
type Readiness struct {
	// Ready is false while the replica cannot read the store or serves a
	// stand-in for the store's revision.
	Ready bool
	// Status is "ready" or "degraded"; Reason says why it is degraded, in
	// words anyone may read, and Detail says it with what the stores
	// answered (their errors name hosts, users and databases), for
	// authenticated callers.
	Status string
	Reason string
	Detail string
	// Revision is the store's current revision and ServedRevision the one
	// evaluations are served from; both 0 when the replica is not ready.
	Revision       int64
	ServedRevision int64
}

// Readiness checks the store now. A replica that cannot read the store or
// serves a stand-in for its revision (the last known one, the state
// file's, the conservative fallback) is not ready: it should not take new
// traffic from one that can. A store that answers but runs degraded itself
// (Redis down, reads going to Postgres) serves exactly the right values,
// so that replica is ready with status degraded and the reason: a shared
// Redis failing must not make every replica unready at once.
func (c *Core) Readiness(ctx context.Context) Readiness {
	b := c.acquire()
	defer b.leave()
	rev, err := b.current(ctx, readyTimeout)
	if err != nil {
		c.logger.Warn("readiness check failed", "mode", b.mode, "err", err)
		why := b.storeDown(err)
		return Readiness{Status: "degraded", Reason: why.public, Detail: why.detail}
	}
	served := b.flags.cur.Load()
	if served.replaceable() {
		why := servedReason(served)
		return Readiness{Status: "degraded", Reason: why, Detail: why}
	}
	r := Readiness{Ready: true, Status: "ready", Revision: rev.Number, ServedRevision: served.rev.Number}
	if why, degraded := b.degraded(c.now()); degraded {
		r.Status, r.Reason, r.Detail = "degraded", why.public, why.detail
	}
	return r
}

// cause says why the service runs degraded twice: in words anyone may
// read, and in detail, with what the stores answered, for authenticated
// callers and the log.
type cause struct {
	public, detail string
}

// also returns c with one more reason, given as its public and detailed
// forms.
func (c cause) also(public, detail string) cause {
	if c.public != "" {
		c.public += "; "
		c.detail += "; "
	}
	return cause{public: c.public + public, detail: c.detail + detail}
}

// current reads the store's current revision within timeout, for an
// answer that must be the truth rather than a cached copy, and installs it:
// whoever learns of a revision hands it to the flag set.
func (b *backend) current(ctx context.Context, timeout time.Duration) (*switchyard.Revision, error) {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rev, err := b.store.Current(rctx)
	if err != nil {
		return nil, err
	}
	b.flags.learn(rev)
	return rev, nil
}

// degraded says whether the service runs degraded and why: it serves a
// stand-in for the store's revision, or the store says it is degraded.
func (b *backend) degraded(now time.Time) (cause, bool) {
	if err := b.flags.lastStoreError(); err != nil {
		return b.storeDown(err), true
	}
	if c := b.flags.cur.Load(); c.replaceable() {
		why := servedReason(c)
		return cause{public: why, detail: why}, true
	}
	var why cause
	if b.pins.storeDown(now) {
		const s = "session calls to the store fail: new sessions are pinned here"
		why = why.also(s, s)
	}
	if n := b.pins.waiting(); n > 0 {
		s := fmt.Sprintf("%d session(s) pinned here wait to be written to the store", n)
		why = why.also(s, s)
	}
	if err := b.writeFailure(); err != nil {
		why = why.also("the last change failed", "the last change failed: "+switchyard.AsError(err).Message)
	}
	if d, ok := b.store.(store.HealthReporter); ok {
		if reason, degraded := d.Degraded(); degraded {
			why = why.also("part of the store does not answer; the values served are right", reason)
		}
	}
	return why, why.public != ""
}

// storeDown names a store failure and what is served meanwhile.
func (b *backend) storeDown(err error) cause {
	served := servedReason(b.flags.cur.Load())
	return cause{
		public: "the store does not answer; " + served,
		detail: "the store does not answer (" + switchyard.AsError(err).Message + "); " + served,
	}
}

// servedReason names what evaluations are served from.
func servedReason(c *compiled) string {
	switch {
	case c.fallback:
		return "serving the conservative fallback"
	case c.stale:
		return fmt.Sprintf("serving last-known-good revision %d from the state file", c.rev.Number)
	}
	return fmt.Sprintf("serving last known revision %d", c.rev.Number)
}
