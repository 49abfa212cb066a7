// Package server is Switchyard's HTTP API: OFREP flag evaluation, session
// snapshots, the audited admin runtime and the audit log, served by Gin.
// openapi/openapi.yaml is its contract; the tests hold every request and
// response to it.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/switchyard-dev/switchyard/store"
)

// Role is what a token may do.
type Role string

// The roles: an admin changes the runtime and reads everything a viewer
// reads; a viewer reads the status and the audit log.
const (
	RoleAdmin  Role = "admin"
	RoleViewer Role = "viewer"
)

// Token is one API credential and the role it grants.
type Token struct {
	Role   Role
	Secret string
}

// Config is the server's settings. Zero durations and sizes take the
// defaults below, so callers set only what they change.
type Config struct {
	// Mode is ModeDemo (the default) or ModeProduction: the mode of the
	// store NewServer is given. It is served as the SYSTEM_MODE flag and in
	// the admin status.
	Mode string
	// ModeSource says how the start mode was chosen (a flag, an
	// environment variable, the default), for GET /system-mode/current.
	ModeSource string
	// Backends opens the store of each mode for a live switch and checks
	// production's requirements; nil: the mode cannot be switched live.
	Backends Backends
	// ReleaseStore releases the store NewServer is given once a live
	// switch has retired it; nil: its owner releases it.
	ReleaseStore func()
	Tokens       []Token
	// SessionTTL is how long a session's snapshot lives; 24h when 0.
	SessionTTL time.Duration
	// CacheTTL is how long the in-process flag set is served before it is
	// reloaded from the store; 5s when 0.
	CacheTTL time.Duration
	// MaxBodyBytes bounds every request body; 1 MiB when 0.
	MaxBodyBytes int64
	// StateDir is where the last-known-good file is kept: every installed
	// revision is written there, and a start with the store down serves it.
	// Empty: no file, and such a start serves the conservative fallback.
	StateDir string
}

// The defaults of Config's zero values, and the deadlines of store calls.
const (
	defaultSessionTTL   = 24 * time.Hour
	defaultCacheTTL     = 5 * time.Second
	defaultMaxBodyBytes = 1 << 20
	readTimeout         = 2 * time.Second
	writeTimeout        = 5 * time.Second
	readyTimeout        = time.Second
)

// server holds what every handler needs.
type server struct {
	logger *slog.Logger
	cfg    Config
	auth   *authenticator
	// backend is the store of the mode being served, with its caches; a
	// live mode switch replaces it (see acquire).
	backend atomic.Pointer[backend]
	// switching orders mode switches: one at a time.
	switching sync.Mutex
	// record says when and by whom the mode was set, and a desired
	// mode recorded by a forced switch that needs a restart.
	record atomic.Pointer[modeRecord]
	now    func() time.Time
}

// NewServer returns the HTTP API over st, the store of cfg.Mode. It loads
// the current revision once so the first evaluation is served warm; when
// the store does not answer it logs and serves the last-known-good file's
// revision, or the conservative fallback, until it does. The caller owns
// st unless cfg.ReleaseStore hands it over; a store opened by a mode
// switch (cfg.Backends) is released by the server when it is switched away
// from.
func NewServer(logger *slog.Logger, cfg Config, st store.Store) http.Handler {
	return newHandler(logger, cfg, st, time.Now)
}

// newHandler is NewServer with the clock that stamps snapshots and ages the
// cache; tests move it instead of sleeping.
func newHandler(logger *slog.Logger, cfg Config, st store.Store, now func() time.Time) *gin.Engine {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = defaultSessionTTL
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = defaultCacheTTL
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = defaultMaxBodyBytes
	}
	if cfg.Mode == "" {
		cfg.Mode = ModeDemo
	}
	s := &server{
		logger: logger,
		cfg:    cfg,
		auth:   newAuthenticator(cfg.Tokens),
		now:    now,
	}
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	s.backend.Store(s.newBackend(ctx, cfg.Mode, st, cfg.ReleaseStore))
	s.record.Store(&modeRecord{Mode: cfg.Mode, SetAt: now().UTC(), SetBy: "startup", Reason: cfg.ModeSource})

	// Release mode must be set before gin.New, which otherwise prints its
	// debug banner; it is atomic, so setting it per server is safe.
	gin.SetMode(gin.ReleaseMode)
	engine := gin.New()
	// Client addresses are logged for refused credentials; without trusted
	// proxies Gin uses the peer address, which a client cannot forge.
	if err := engine.SetTrustedProxies(nil); err != nil {
		logger.Error("configure trusted proxies", "err", err)
	}
	// Flag keys may contain a slash, sent escaped as %2F: match on the raw
	// path and unescape the parameter.
	engine.UseRawPath = true
	engine.UnescapePathValues = true
	s.routes(engine)
	return engine
}

// changeNotifier is a store that learns of revisions committed elsewhere
// (store/rediscache, fed by Postgres NOTIFY, Redis pub/sub and a version
// poll). The server then refreshes its flag set, and its /v1/stream, at
// once instead of when the cache TTL runs out.
type changeNotifier interface {
	OnChange(fn func(revision int64))
}

// ParseTokens parses SWITCHYARD_TOKENS: comma-separated role:token pairs,
// e.g. "admin:s3cret,viewer:r3ad". Blank input means no tokens. Roles are
// admin or viewer; a token may be used once.
func ParseTokens(s string) ([]Token, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var tokens []Token
	seen := map[string]bool{}
	for i, pair := range strings.Split(s, ",") {
		pair = strings.TrimSpace(pair)
		role, secret, ok := strings.Cut(pair, ":")
		switch {
		case pair == "":
			return nil, fmt.Errorf("entry %d is empty; write role:token pairs separated by commas", i+1)
		case !ok:
			return nil, fmt.Errorf("entry %d has no colon; write role:token, e.g. admin:s3cret", i+1)
		}
		r := Role(strings.TrimSpace(role))
		secret = strings.TrimSpace(secret)
		switch {
		case r != RoleAdmin && r != RoleViewer:
			return nil, fmt.Errorf("entry %d: role %q is not %q or %q", i+1, r, RoleAdmin, RoleViewer)
		case secret == "":
			return nil, fmt.Errorf("entry %d: the %s token is empty", i+1, r)
		case seen[secret]:
			return nil, fmt.Errorf("entry %d: the same token is listed twice; each token grants one role", i+1)
		}
		seen[secret] = true
		tokens = append(tokens, Token{Role: r, Secret: secret})
	}
	return tokens, nil
}
