// Package console is Switchyard's operator console: HTML pages served by
// switchyard serve under /console/, on the API's listener. Operators sign
// in with their API tokens into a server-side session; every page reads,
// and every form changes, through the same application core
// (internal/control) as the REST API, so no rule lives in the console
// only: it shows what a change would do, and the core decides whether it
// may.
//
// It needs no build step and no network but its own server: Go templates,
// embedded CSS and a little JavaScript, which follows the server's own
// stream (GET /v1/stream) to keep pages live and opens confirmations in
// dialogs. Every read and every change works without it, as plain links
// and forms.
package console

import (
	"context"
	"crypto/sha256"
	"embed"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/control"
)

// Tokens identifies operators by the SHA-256 digest of their token's
// secret; server.Authenticator implements it, so the console accepts
// exactly the tokens the API does, reloads included.
type Tokens interface {
	Operator(digest [sha256.Size]byte) (switchyard.Operator, bool)
}

// Config is the console's settings. Zero values take the defaults.
type Config struct {
	// Tokens are the tokens operators sign in with; nil accepts none.
	Tokens Tokens
	// SecureCookie marks the session cookie Secure on every answer, for a
	// console served over plain HTTP behind a proxy that terminates TLS;
	// a request that came over TLS gets a Secure cookie anyway.
	SecureCookie bool
	// IdleTimeout ends a session unused for that long;
	// DefaultIdleTimeout when 0.
	IdleTimeout time.Duration
	// Now is the clock of sessions and previews; nil: time.Now.
	Now func() time.Time
}

// DefaultIdleTimeout is how long a console session lives unused unless
// configured otherwise: an operator who steps away is signed out within
// the half hour.
const DefaultIdleTimeout = 30 * time.Minute

// Console serves the operator console. Its methods are safe for
// concurrent use.
type Console struct {
	logger   *slog.Logger
	core     *control.Core
	tokens   Tokens
	secure   bool
	now      func() time.Time
	sessions *sessions
	pages    map[string]*template.Template
	assets   map[string]asset
	mux      *http.ServeMux
	// crossOrigin refuses a form posted from another site, before its
	// CSRF token is even read.
	crossOrigin *http.CrossOriginProtection
}

//go:embed templates/*.html assets/*
var files embed.FS

// New returns the console over core.
func New(logger *slog.Logger, core *control.Core, cfg Config) *Console {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Tokens == nil {
		cfg.Tokens = noTokens{}
	}
	c := &Console{
		logger:      logger,
		core:        core,
		tokens:      cfg.Tokens,
		secure:      cfg.SecureCookie,
		now:         cfg.Now,
		sessions:    newSessions(cfg.IdleTimeout),
		pages:       parsePages(),
		assets:      loadAssets(),
		crossOrigin: http.NewCrossOriginProtection(),
	}
	c.mux = c.routes()
	return c
}

// noTokens accepts no token.
type noTokens struct{}

func (noTokens) Operator([sha256.Size]byte) (switchyard.Operator, bool) {
	return switchyard.Operator{}, false
}

// ServeConsole serves one console request. client names who sends it (its
// address, as the transport sees it) and requestID follows it into the
// logs and the audit log.
func (c *Console) ServeConsole(w http.ResponseWriter, r *http.Request, client, requestID string) {
	h := w.Header()
	// Nothing but the console's own files runs or loads: no inline script
	// or style, no other origin, no framing, no form posted elsewhere.
	h.Set("Content-Security-Policy", "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	if r.Method == http.MethodPost {
		if err := c.crossOrigin.Check(r); err != nil {
			c.refuse(w, r, http.StatusForbidden, "This form was sent from another site, so it was refused.")
			return
		}
	}
	ctx := context.WithValue(r.Context(), callerKey{}, caller{client: client, requestID: requestID})
	c.mux.ServeHTTP(w, r.WithContext(ctx))
}

// caller is what the transport said about a request.
type caller struct {
	client, requestID string
}

type callerKey struct{}

// callerOf returns what the transport said about r.
func callerOf(r *http.Request) caller {
	v, _ := r.Context().Value(callerKey{}).(caller)
	return v
}
