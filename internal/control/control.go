// Package control is Switchyard's application core: every operation a
// surface offers (the REST API, later the console, the operator CLI and the
// scheduler) is a method of Core, so no rule lives in one surface only.
//
// Core owns the backend of the mode being served and the live mode switch,
// the current revision (installed in one place, whoever learns of it:
// a write, a reload, an announcement from another replica), session
// pinning with its one snapshot cache, the change pipeline (admit, apply,
// record, install, announce; one admission for every change, the mode
// toggle and imports included), the last-known-good state file and the
// broadcaster that feeds streams. It knows nothing of HTTP.
package control

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
)

// Config is the core's settings. Zero durations take the defaults below,
// so callers set only what they change.
type Config struct {
	// Mode is ModeDemo (the default) or ModeProduction: the mode of the
	// store New is given. It is served as the SYSTEM_MODE flag.
	Mode string
	// ModeSource says how the start mode was chosen (a flag, an
	// environment variable, the default), for the system mode's posture.
	ModeSource string
	// Backends opens the store of each mode for a live switch and checks
	// production's requirements; nil: the mode cannot be switched live.
	Backends Backends
	// AllowLiveSwitch lets an admin switch the mode live (Toggle); false,
	// the zero value, refuses every switch, so a process switches live
	// only when its owner said it may.
	AllowLiveSwitch bool
	// ReleaseStore releases the store New is given once a live switch has
	// retired it; nil: its owner releases it.
	ReleaseStore func()
	// SessionTTL is how long a session's snapshot lives; 24h when 0.
	SessionTTL time.Duration
	// MaxSessions is the bound on live sessions the stores were given; the
	// snapshots and local pins kept in process are bounded by it too, the
	// oldest dropped first. 0: only their built-in bounds.
	MaxSessions int
	// SessionRate is how many new sessions a second each client may make
	// once it has made SessionBurst at once: sessions pinned at first
	// sight and created explicitly alike. A session that exists costs
	// nothing. 0: no limit.
	SessionRate float64
	// SessionBurst is how many new sessions a client may make at once;
	// at least 1 when SessionRate is set.
	SessionBurst int
	// CacheTTL is how long the in-process flag set is served before it is
	// reloaded from the store; 5s when 0.
	CacheTTL time.Duration
	// StateDir is where the last-known-good file is kept: every installed
	// revision is written there, and a start with the store down serves it.
	// Empty: no file, and such a start serves the conservative fallback.
	StateDir string
	// Now is the clock that stamps snapshots and ages the cache, and that
	// the scheduler of change requests reads; nil: time.Now. Tests move
	// it instead of sleeping.
	Now func() time.Time
	// Observer hears of evaluations, revisions and changes, for metrics;
	// nil: nothing does.
	Observer Observer
	// Approvals is the approval policy: the actions other admins must
	// approve before they apply. nil: none, every change applies at once.
	Approvals Policy
}

// The defaults of Config's zero values, and the deadlines of store calls.
const (
	DefaultSessionTTL = 24 * time.Hour
	DefaultCacheTTL   = 5 * time.Second
	readTimeout       = 2 * time.Second
	writeTimeout      = 5 * time.Second
	readyTimeout      = time.Second
)

// Core is the application core. Its methods are safe for concurrent use.
type Core struct {
	logger *slog.Logger
	cfg    Config
	now    func() time.Time
	// backend is the store of the mode being served, with its caches; a
	// live mode switch replaces it (see acquire).
	backend atomic.Pointer[backend]
	// switching orders mode switches: one at a time.
	switching sync.Mutex
	// record says when and by whom the mode was set, and a desired mode
	// recorded by a forced switch that needs a restart.
	record atomic.Pointer[modeRecord]
	// refusals is each sender's allowance of refused requests.
	refusals *refusals
	// limiter limits the new sessions of each client, whatever the mode.
	limiter *sessionLimiter
}

// New returns the core over st, the store of cfg.Mode. It loads the
// current revision once so the first evaluation is served warm; when the
// store does not answer it logs and serves the last-known-good file's
// revision, or the conservative fallback, until it does. The caller owns
// st unless cfg.ReleaseStore hands it over; a store opened by a mode switch
// (cfg.Backends) is released by the core when it is switched away from.
func New(logger *slog.Logger, cfg Config, st store.Store) *Core {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.Mode == "" {
		cfg.Mode = switchyard.ModeDemo
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Observer == nil {
		cfg.Observer = ignore{}
	}
	c := &Core{logger: logger, cfg: cfg, now: cfg.Now, refusals: newRefusals(),
		limiter: newSessionLimiter(logger, cfg.SessionRate, cfg.SessionBurst)}
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	c.backend.Store(c.newBackend(ctx, cfg.Mode, st, cfg.ReleaseStore))
	c.record.Store(&modeRecord{Mode: cfg.Mode, SetAt: c.now().UTC(), SetBy: "startup", Reason: cfg.ModeSource})
	return c
}

// Flush waits until the last-known-good file holds the newest revision
// installed in the mode served, or ctx ends: the file is written off the
// path of the change, and a process about to stop flushes it so it
// restarts from that revision.
func (c *Core) Flush(ctx context.Context) error {
	b := c.acquire()
	defer b.leave()
	return b.flags.flush(ctx)
}

// CacheTTL is how often an open stream checks the store for revisions it
// may not have heard of (Subscription.Refresh).
func (c *Core) CacheTTL() time.Duration { return c.cfg.CacheTTL }

// Close prepares the core for a clean stop, so the next start resumes from
// where this one left: it stops the write-back of local pins and saves
// the pins file, then waits, until ctx ends, for the last-known-good file
// to hold the revision served. The store stays open (its owner releases
// it). Call it once the transport has drained its requests.
func (c *Core) Close(ctx context.Context) error {
	c.backend.Load().stop()
	return c.Flush(ctx)
}
