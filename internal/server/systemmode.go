package server

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/store"
)

// The modes (design §7): demo serves the in-memory fixtures and needs
// nothing; production serves Postgres behind Redis.
const (
	ModeDemo       = "demo"
	ModeProduction = "production"
)

// Backends opens the store of each mode and checks what production needs.
// switchyard serve implements it over the in-memory fixtures, Postgres and
// Redis, so the server never imports a store technology.
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
}

// missingRequirements returns the requirements of reqs that are not met.
func missingRequirements(reqs []Requirement) []Requirement {
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
}

// modePosture is the body of GET /system-mode/current and the answer of
// a toggle.
type modePosture struct {
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
	// Switchable says whether this process can switch modes live.
	Switchable      bool `json:"switchable"`
	ProductionReady bool `json:"production_ready"`
	// Requirements is production's whole checklist, each item met or not.
	Requirements []Requirement `json:"missing_production_requirements"`
}

// requirementsTimeout bounds the checks of production's requirements: each
// store is probed with a deadline, so a dead one costs at most this.
const requirementsTimeout = 3 * time.Second

// requirements checks production's requirements now, within
// requirementsTimeout; none when the server cannot switch modes.
func (s *server) requirements(ctx context.Context) []Requirement {
	if s.cfg.Backends == nil {
		return []Requirement{}
	}
	ctx, cancel := context.WithTimeout(ctx, requirementsTimeout)
	defer cancel()
	return s.cfg.Backends.Requirements(ctx)
}

// posture returns the mode record with production's checklist, reqs.
func (s *server) posture(reqs []Requirement) modePosture {
	rec := s.record.Load()
	switchable := s.cfg.Backends != nil
	return modePosture{Mode: rec.Mode, SetAt: rec.SetAt, SetBy: rec.SetBy, Reason: rec.Reason, AuditSeq: rec.AuditSeq,
		DesiredMode: rec.DesiredMode, RestartRequired: rec.DesiredMode != "" && rec.DesiredMode != rec.Mode,
		Switchable: switchable, ProductionReady: switchable && len(missingRequirements(reqs)) == 0, Requirements: reqs}
}

// getSystemMode serves GET /system-mode/current: the mode, who set it and
// when, and what production needs, checked now.
func (s *server) getSystemMode(c *gin.Context) {
	c.JSON(http.StatusOK, s.posture(s.requirements(c.Request.Context())))
}

// toggleRequest is the body of POST /system-mode/toggle.
type toggleRequest struct {
	confirmation
	TargetMode string `json:"target_mode"`
	Force      bool   `json:"force"`
}

// toggleResult is the answer of a toggle: the posture after it, and for a
// forced switch that could not be made, what is missing.
type toggleResult struct {
	Switched        bool          `json:"switched"`
	RestartRequired bool          `json:"restart_required"`
	Missing         []Requirement `json:"missing,omitempty"`
	AuditSeq        int64         `json:"audit_seq"`
	Posture         modePosture   `json:"posture"`
}

// switchTimeout bounds building and checking the new mode's store,
// migrations included.
const switchTimeout = 30 * time.Second

// toggleSystemMode serves POST /system-mode/toggle: switch the process to
// target_mode live, once production's requirements are checked. With
// requirements missing it answers 400 listing them and changes nothing;
// with force it records the desired mode for a restart instead.
func (s *server) toggleSystemMode(c *gin.Context) {
	// One switch at a time; the backend cannot change under this request.
	s.switching.Lock()
	defer s.switching.Unlock()
	old := s.acquire()
	defer old.leave()

	var req toggleRequest
	attempt, _, ok := s.admit(c, old, "set_system_mode", evaluator.SystemModeKey, &req, func() (plan, error) {
		switch req.TargetMode {
		case ModeDemo, ModeProduction:
		case "":
			return plan{}, fieldError("target_mode", "is required: demo or production")
		default:
			return plan{}, fieldError("target_mode", "must be demo or production, not %q", req.TargetMode)
		}
		p := plan{phrase: "SWITCH TO " + strings.ToUpper(req.TargetMode) + " MODE"}
		switch {
		case req.TargetMode == old.mode:
			return p, evaluator.Errorf(evaluator.CodeInvalidRequest, "switchyard already serves %s mode", old.mode).
				With("mode", old.mode)
		case s.cfg.Backends == nil:
			return p, evaluator.Errorf(evaluator.CodeInvalidRequest, "this server was built without mode switching; restart it in %s mode", req.TargetMode)
		}
		return p, nil
	})
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), switchTimeout)
	defer cancel()
	// Checked once: the refusal, the forced record and the answer's
	// checklist all use this check, whichever way the switch goes.
	reqs := s.requirements(ctx)
	if req.TargetMode == ModeProduction {
		missing := missingRequirements(reqs)
		if len(missing) > 0 && !req.Force {
			s.reject(c, old, attempt, evaluator.Errorf(evaluator.CodeRequirementsMissing,
				"production mode needs %s; nothing was changed (force records the switch for a restart)", strings.Join(names(missing), ", ")).
				With("missing_production_requirements", missing))
			return
		}
		if len(missing) > 0 {
			s.recordDesired(c, old, attempt, reqs)
			return
		}
	}
	s.switchLive(ctx, c, old, attempt, req.TargetMode, reqs)
}

// recordDesired records a forced switch to production that cannot be made
// live: the audit log and the posture say production is wanted, and the
// process keeps serving its mode until a restart with the requirements met.
func (s *server) recordDesired(c *gin.Context, cur *backend, a store.Attempt, reqs []Requirement) {
	missing := missingRequirements(reqs)
	ctx, cancel := context.WithTimeout(c.Request.Context(), writeTimeout)
	defer cancel()
	entry, err := cur.store.Record(ctx, a,
		map[string]any{"mode": cur.mode},
		map[string]any{"mode": cur.mode, "desired_mode": ModeProduction, "restart_required": true, "missing": names(missing)})
	if err != nil {
		s.fail(c, err)
		return
	}
	rec := *s.record.Load()
	rec.DesiredMode = ModeProduction
	s.record.Store(&rec)
	s.logger.Warn("production mode recorded for a restart; requirements are missing", "missing", names(missing),
		"actor", entry.Actor, "audit_seq", entry.Seq, "request_id", entry.RequestID)
	c.JSON(http.StatusOK, toggleResult{RestartRequired: true, Missing: missing, AuditSeq: entry.Seq, Posture: s.posture(reqs)})
}

// switchLive builds the store of target, checks that it serves a revision,
// records the switch and swaps it in; the old store is released once the
// requests using it are done. The switch is recorded in production's audit
// log whichever way it goes, since that is the log that outlives the
// process. Any failure before the swap leaves the old mode serving. reqs
// is production's checklist as checked for this switch, for the answer.
func (s *server) switchLive(ctx context.Context, c *gin.Context, old *backend, a store.Attempt, target string, reqs []Requirement) {
	st, release, err := s.cfg.Backends.Open(ctx, target)
	if err != nil {
		s.reject(c, old, a, evaluator.Errorf(evaluator.CodeUnavailable, "open the %s store: %v", target, err))
		return
	}
	next := s.newBackend(ctx, target, st, release)
	if err := next.flags.lastStoreError(); err != nil || next.flags.cur.Load().replaceable() {
		release()
		s.reject(c, old, a, evaluator.Errorf(evaluator.CodeUnavailable, "the %s store did not serve its revision: %v", target, err))
		return
	}
	log := next.store
	if old.mode == ModeProduction {
		log = old.store
	}
	entry, err := log.Record(ctx, a, map[string]any{"mode": old.mode}, map[string]any{"mode": target})
	if err != nil {
		// No switch without its audit row; the refusal is recorded in the
		// log of the mode that keeps serving, if that log can take it.
		release()
		s.reject(c, old, a, err)
		return
	}
	s.backend.Store(next)
	s.record.Store(&modeRecord{Mode: target, SetAt: s.now().UTC(), SetBy: entry.Actor, Reason: entry.Reason, AuditSeq: entry.Seq})
	go old.retire()
	s.logger.Warn("system mode switched", "from", old.mode, "to", target, "revision", next.flags.cur.Load().rev.Number,
		"actor", entry.Actor, "audit_seq", entry.Seq, "request_id", entry.RequestID)
	c.JSON(http.StatusOK, toggleResult{Switched: true, AuditSeq: entry.Seq, Posture: s.posture(reqs)})
}

// names lists the names of reqs, for messages and logs.
func names(reqs []Requirement) []string {
	out := make([]string, len(reqs))
	for i, r := range reqs {
		out[i] = r.Name
	}
	return out
}
