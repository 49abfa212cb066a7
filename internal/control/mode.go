package control

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
)

// Backends opens the store of each mode and checks what production needs.
// switchyard serve implements it over the in-memory fixtures, Postgres and
// Redis, so the core never imports a store technology.
type Backends interface {
	// Requirements checks each thing production mode needs, within the
	// deadline of ctx, and says which are met.
	Requirements(ctx context.Context) []Requirement
	// Open builds the store of mode, checked to answer, and returns it with
	// the function that releases it. A demo store starts from the fixtures
	// every time.
	Open(ctx context.Context, mode string) (store.Store, func(), error)
}

// Requirement is one item of production mode's checklist.
type Requirement struct {
	Name string `json:"name"`
	// Why says what production loses without it.
	Why string `json:"why"`
	Met bool   `json:"met"`
	// Detail says what was found: an unset setting, a store's error, the
	// migrations still to apply.
	Detail string `json:"detail,omitempty"`
	// Outage says the requirement fails because a store does not answer,
	// not because something is misconfigured: a replica holding a
	// last-known-good file may start through an outage.
	Outage bool `json:"-"`
}

// Unmet returns the requirements of reqs that are not met.
func Unmet(reqs []Requirement) []Requirement {
	missing := []Requirement{}
	for _, r := range reqs {
		if !r.Met {
			missing = append(missing, r)
		}
	}
	return missing
}

// modeRecord is when, by whom and why the served mode was set, and the
// mode a forced switch asked for, which takes effect at a restart.
type modeRecord struct {
	Mode        string
	SetAt       time.Time
	SetBy       string
	Reason      string
	AuditSeq    int64
	DesiredMode string
	// IdempotencyKey and RequestHash are those of the switch that set the
	// mode, so its retry is answered even when its audit entry is in a
	// store this process no longer serves (production's, after a switch
	// to demo).
	IdempotencyKey string
	RequestHash    string
}

// Posture is the system mode as the operator sees it: the mode, who set it
// and when, and production's checklist.
type Posture struct {
	Mode   string    `json:"mode"`
	SetAt  time.Time `json:"set_at"`
	SetBy  string    `json:"set_by"`
	Reason string    `json:"reason,omitempty"`
	// AuditSeq is the audit entry of the switch that set the mode; 0 for
	// the start mode.
	AuditSeq int64 `json:"audit_seq,omitempty"`
	// DesiredMode is set after a forced switch: the mode a restart is to
	// start in, once its requirements are met.
	DesiredMode     string `json:"desired_mode,omitempty"`
	RestartRequired bool   `json:"restart_required"`
	// AllowLiveSwitch is the process's setting: whether an admin may switch
	// its mode live.
	AllowLiveSwitch bool `json:"allow_live_switch"`
	// Switchable says whether this process can switch modes live: it was
	// built with the stores of both modes and allows it.
	Switchable      bool `json:"switchable"`
	ProductionReady bool `json:"production_ready"`
	// Requirements is production's whole checklist, each item met or not.
	Requirements []Requirement `json:"production_requirements"`
	// Missing lists the items of the checklist that are not met.
	Missing []Requirement `json:"missing_production_requirements"`
}

// requirementsTimeout bounds the checks of production's requirements: each
// store is probed with a deadline, so a dead one costs at most this.
const requirementsTimeout = 3 * time.Second

// requirements checks production's requirements now, within
// requirementsTimeout; none when the core cannot switch modes.
func (c *Core) requirements(ctx context.Context) []Requirement {
	if c.cfg.Backends == nil {
		return []Requirement{}
	}
	ctx, cancel := context.WithTimeout(ctx, requirementsTimeout)
	defer cancel()
	return c.cfg.Backends.Requirements(ctx)
}

// Posture returns the system mode, who set it and when, and what
// production needs, checked now.
func (c *Core) Posture(ctx context.Context) Posture {
	return c.posture(c.requirements(ctx))
}

// Mode returns the mode served now: the start mode until a live switch.
func (c *Core) Mode() string { return c.record.Load().Mode }

// posture returns the mode record with production's checklist, reqs.
func (c *Core) posture(reqs []Requirement) Posture {
	rec := c.record.Load()
	built := c.cfg.Backends != nil
	missing := Unmet(reqs)
	return Posture{Mode: rec.Mode, SetAt: rec.SetAt, SetBy: rec.SetBy, Reason: rec.Reason, AuditSeq: rec.AuditSeq,
		DesiredMode: rec.DesiredMode, RestartRequired: rec.DesiredMode != "" && rec.DesiredMode != rec.Mode,
		AllowLiveSwitch: c.cfg.AllowLiveSwitch, Switchable: built && c.cfg.AllowLiveSwitch,
		ProductionReady: built && len(missing) == 0, Requirements: reqs, Missing: missing}
}

// Toggled is the outcome of a mode toggle: the posture after it, and for a
// forced switch that could not be made, what is missing.
type Toggled struct {
	Switched        bool          `json:"switched"`
	RestartRequired bool          `json:"restart_required"`
	Missing         []Requirement `json:"missing,omitempty"`
	AuditSeq        int64         `json:"audit_seq"`
	Posture         Posture       `json:"posture"`
}

// switchTimeout bounds building and checking the new mode's store,
// migrations included.
const switchTimeout = 30 * time.Second

// Toggle switches the process to target live, once production's
// requirements are checked; ch is admitted like every change (its Plan is
// set here), and refused with LIVE_SWITCH_DISABLED unless the process
// allows live switching. With requirements missing it is refused with
// PRODUCTION_REQUIREMENTS_MISSING and changes nothing; with force it
// records the desired mode for a restart instead.
func (c *Core) Toggle(ctx context.Context, ch Change, target string, force bool) (Toggled, error) {
	// One switch at a time; the backend cannot change under this request.
	c.switching.Lock()
	defer c.switching.Unlock()
	old := c.acquire()
	defer old.leave()
	if t, done, err := c.toggledBefore(ctx, old, ch); done {
		return t, err
	}

	ch.Plan = func() (Plan, error) {
		switch target {
		case switchyard.ModeDemo, switchyard.ModeProduction:
		case "":
			return Plan{}, switchyard.FieldError("target_mode", "is required: demo or production")
		default:
			return Plan{}, switchyard.FieldError("target_mode", "must be demo or production, not %q", target)
		}
		p := Plan{Phrase: switchyard.ModeSwitchPhrase(target), ModeSwitch: true}
		switch {
		case target == old.mode:
			return p, switchyard.Errorf(switchyard.CodeInvalidRequest, "switchyard already serves %s mode", old.mode).
				With("mode", old.mode)
		case c.cfg.Backends == nil:
			return p, switchyard.Errorf(switchyard.CodeInvalidRequest, "this server was built without mode switching; restart it in %s mode", target)
		case !c.cfg.AllowLiveSwitch:
			return p, switchyard.Errorf(switchyard.CodeLiveSwitchDisabled,
				"this process does not switch modes live (live switching is off by default when started in production mode): "+
					"restart it in %s mode, or restart it with --allow-live-switch (SWITCHYARD_ALLOW_LIVE_SWITCH=true) to allow the switch", target)
		}
		return p, nil
	}
	attempt, _, err := c.admit(ctx, old, ch)
	if err != nil {
		return Toggled{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, switchTimeout)
	defer cancel()
	// Checked once: the refusal, the forced record and the answer's
	// checklist all use this check, whichever way the switch goes.
	reqs := c.requirements(ctx)
	if target == switchyard.ModeProduction {
		missing := Unmet(reqs)
		if len(missing) > 0 && !force {
			refusal := switchyard.Errorf(switchyard.CodeRequirementsMissing,
				"production mode needs %s; nothing was changed (force records the switch for a restart)", strings.Join(names(missing), ", ")).
				With("missing_production_requirements", missing)
			return Toggled{}, c.reject(ctx, old, attempt, refusal)
		}
		if len(missing) > 0 {
			return c.recordDesired(ctx, old, attempt, reqs)
		}
	}
	return c.switchLive(ctx, old, attempt, target, reqs)
}

// toggledBefore answers a retry of a toggle already made under ch's
// idempotency key (done set): the switch that set the mode served, or a
// switch recorded for a restart, with the posture now. A key that names
// another request is refused. A switch recorded in the store but not made
// by this process (its record's outcome was unknown when it was tried)
// is not done: the toggle goes ahead, and recording it answers the entry
// already kept. Only an admin's decodable request is looked up; any other
// is refused by the admission, as without a key.
func (c *Core) toggledBefore(ctx context.Context, b *backend, ch Change) (t Toggled, done bool, err error) {
	if ch.IdempotencyKey == "" || ch.Role != switchyard.RoleAdmin || ch.Invalid != nil {
		return Toggled{}, false, nil
	}
	a := store.Attempt{Action: ch.Action, Target: ch.Target, IdempotencyKey: ch.IdempotencyKey, RequestHash: ch.RequestHash}
	if rec := c.record.Load(); rec.IdempotencyKey == ch.IdempotencyKey {
		set := store.Keyed{RequestHash: rec.RequestHash, Entry: store.AuditEntry{Action: ch.Action, Target: switchyard.SystemModeKey, Seq: rec.AuditSeq}}
		if err := set.Answers(a); err != nil {
			return Toggled{}, true, err
		}
		return Toggled{Switched: true, AuditSeq: rec.AuditSeq, Posture: c.Posture(ctx)}, true, nil
	}
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	k, err := b.store.Keyed(rctx, ch.IdempotencyKey)
	switch {
	case switchyard.ErrorCode(err) == switchyard.CodeNotFound:
		return Toggled{}, false, nil
	case err != nil:
		return Toggled{}, true, err
	}
	if err := k.Answers(a); err != nil {
		return Toggled{}, true, err
	}
	var after struct {
		Mode        string `json:"mode"`
		DesiredMode string `json:"desired_mode"`
	}
	if err := json.Unmarshal(k.Entry.After, &after); err != nil {
		return Toggled{}, true, fmt.Errorf("decode audit entry %d: %w", k.Entry.Seq, err)
	}
	switch {
	case after.DesiredMode != "":
		reqs := c.requirements(ctx)
		return Toggled{RestartRequired: true, Missing: Unmet(reqs), AuditSeq: k.Entry.Seq, Posture: c.posture(reqs)}, true, nil
	case after.Mode == b.mode:
		return Toggled{Switched: true, AuditSeq: k.Entry.Seq, Posture: c.Posture(ctx)}, true, nil
	}
	return Toggled{}, false, nil
}

// recordDesired records a forced switch to production that cannot be made
// live: the audit log and the posture say production is wanted, and the
// process keeps serving its mode until a restart with the requirements met.
func (c *Core) recordDesired(ctx context.Context, cur *backend, a store.Attempt, reqs []Requirement) (Toggled, error) {
	missing := Unmet(reqs)
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	entry, err := cur.store.Record(wctx, a,
		map[string]any{"mode": cur.mode},
		map[string]any{"mode": cur.mode, "desired_mode": switchyard.ModeProduction, "restart_required": true, "missing": names(missing)})
	if err != nil {
		return Toggled{}, err
	}
	c.applied(a)
	rec := *c.record.Load()
	rec.DesiredMode = switchyard.ModeProduction
	c.record.Store(&rec)
	c.logger.Warn("production mode recorded for a restart; requirements are missing", "missing", names(missing),
		"actor", entry.Actor, "audit_seq", entry.Seq, "request_id", entry.RequestID)
	return Toggled{RestartRequired: true, Missing: missing, AuditSeq: entry.Seq, Posture: c.posture(reqs)}, nil
}

// switchLive builds the store of target, checks that it serves a revision,
// records the switch and swaps it in; the old store is released once the
// requests using it are done. The switch is recorded in production's audit
// log whichever way it goes, since that is the log that outlives the
// process. Any failure before the swap leaves the old mode serving. reqs
// is production's checklist as checked for this switch, for the answer.
func (c *Core) switchLive(ctx context.Context, old *backend, a store.Attempt, target string, reqs []Requirement) (Toggled, error) {
	st, release, err := c.cfg.Backends.Open(ctx, target)
	if err != nil {
		refusal := switchyard.Errorf(switchyard.CodeUnavailable, "open the %s store: %v", target, err)
		return Toggled{}, c.reject(ctx, old, a, refusal)
	}
	next := c.newBackend(ctx, target, st, release)
	if err := next.flags.lastStoreError(); err != nil || next.flags.cur.Load().replaceable() {
		release()
		refusal := switchyard.Errorf(switchyard.CodeUnavailable, "the %s store did not serve its revision: %v", target, err)
		return Toggled{}, c.reject(ctx, old, a, refusal)
	}
	log := next.store
	if old.mode == switchyard.ModeProduction {
		log = old.store
	}
	entry, err := log.Record(ctx, a, map[string]any{"mode": old.mode}, map[string]any{"mode": target})
	if err != nil {
		// No switch without its audit row; the refusal is recorded in the
		// log of the mode that keeps serving, if that log can take it,
		// unless the row may be there after all: a retry with the same
		// key then makes the switch it records.
		release()
		if switchyard.ErrorCode(err) != switchyard.CodeOutcomeUnknown {
			return Toggled{}, c.reject(ctx, old, a, err)
		}
		return Toggled{}, err
	}
	c.backend.Store(next)
	c.applied(a)
	c.record.Store(&modeRecord{Mode: target, SetAt: c.now().UTC(), SetBy: entry.Actor, Reason: entry.Reason, AuditSeq: entry.Seq,
		IdempotencyKey: a.IdempotencyKey, RequestHash: a.RequestHash})
	go old.retire()
	c.logger.Warn("system mode switched", "from", old.mode, "to", target, "revision", next.flags.cur.Load().rev.Number,
		"actor", entry.Actor, "audit_seq", entry.Seq, "request_id", entry.RequestID)
	return Toggled{Switched: true, AuditSeq: entry.Seq, Posture: c.posture(reqs)}, nil
}

// names lists the names of reqs, for messages and logs.
func names(reqs []Requirement) []string {
	out := make([]string, len(reqs))
	for i, r := range reqs {
		out[i] = r.Name
	}
	return out
}
