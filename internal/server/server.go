// Package server is Switchyard's HTTP transport, served by Gin: OFREP flag
// evaluation, session snapshots, the audited admin runtime, the system mode
// and the audit log. Each handler decodes its request, calls the
// application core (internal/control) and encodes the answer; errors map to
// HTTP and OFREP shapes in one place (errors.go). openapi/openapi.yaml is
// its contract; the tests hold every request and response to it.
package server

import (
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/control"
)

// Config is the transport's settings; the core has its own
// (control.Config). Zero values take the defaults.
type Config struct {
	// Auth matches bearer tokens to operators; nil accepts no token, so
	// only the routes that need none are served.
	Auth *Authenticator
	// MaxBodyBytes bounds every request body; 1 MiB when 0.
	MaxBodyBytes int64
	// Heartbeat spaces the heartbeat comments of GET /v1/stream, which
	// every event advertises; switchyard.StreamHeartbeat when 0.
	Heartbeat time.Duration
	// TrustedProxies are the addresses and CIDR ranges of the proxies whose
	// X-Forwarded-For (or X-Real-IP) names the client; none by default, so
	// a client is its peer address, which it cannot forge.
	TrustedProxies []string
	// Observer hears of every request, for metrics; nil: nothing does.
	Observer Observer
	// Metrics, when set, is served at GET /metrics.
	Metrics http.Handler
	// Tracing, when set, gives every request a span and records each
	// evaluation on it; nil: no tracing, at no cost.
	Tracing trace.TracerProvider
	// AccessLog logs every request once answered.
	AccessLog bool
	// RequireClientToken makes evaluation, sessions, the bundle and the
	// streams need a valid token (of any role; a client token is made for
	// it). Unset, they need none, which suits a private network only.
	RequireClientToken bool
	// CORSOrigins are the browser origins (scheme://host[:port]) that may
	// call what applications read (see RequireClientToken), or "*" for
	// any; CORSAdminOrigins those that may call the admin API, which only
	// origins named here may, never "*". Empty: no cross-origin access.
	CORSOrigins      []string
	CORSAdminOrigins []string
	// Console is the operator console served under /console/; nil: none.
	Console Console
}

// Console is the operator console (internal/console), mounted under
// /console/ on the API's listener and behind its middleware. It is handed
// what the transport decided about each request: the client's address
// (behind trusted proxies, the one they forward), which bounds refused
// sign-ins as it bounds refused credentials, and the request ID, which
// the audit log records.
type Console interface {
	ServeConsole(w http.ResponseWriter, r *http.Request, client, requestID string)
}

// defaultMaxBodyBytes is the body limit of Config's zero value.
const defaultMaxBodyBytes = 1 << 20

// server holds what every handler needs: the core it calls and how to
// decode and authenticate requests. It holds no state of its own.
type server struct {
	logger *slog.Logger
	core   *control.Core
	auth   *Authenticator
	// maxBodyBytes bounds every request body but an import's.
	maxBodyBytes int64
	// heartbeat spaces a stream's heartbeat comments.
	heartbeat time.Duration
	// behindProxies says whether TrustedProxies are configured: only then
	// may a forwarded address name the client.
	behindProxies bool
	// observer hears of every request; nil when none does.
	observer Observer
	// metrics serves GET /metrics; nil when this listener does not.
	metrics http.Handler
	// tracer starts each request's span; nil when tracing is off.
	tracer    trace.Tracer
	accessLog bool
	// requireClientToken is Config.RequireClientToken.
	requireClientToken bool
	// clientCORS and adminCORS say which browser origins may call what
	// applications read and the admin API.
	clientCORS, adminCORS corsPolicy
	// console serves /console/; nil when there is none.
	console Console
}

// New returns the HTTP API over core: OFREP evaluation, sessions, the
// in-process providers' bundle and stream, and the audited admin routes.
func New(logger *slog.Logger, core *control.Core, cfg Config) http.Handler {
	return newEngine(logger, core, cfg)
}

// newEngine is New with the Gin engine's type, whose routes a test lists.
func newEngine(logger *slog.Logger, core *control.Core, cfg Config) *gin.Engine {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = defaultMaxBodyBytes
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = switchyard.StreamHeartbeat
	}
	if cfg.Auth == nil {
		cfg.Auth = NewAuthenticator(nil)
	}
	s := &server{logger: logger, core: core, auth: cfg.Auth, maxBodyBytes: cfg.MaxBodyBytes, heartbeat: cfg.Heartbeat,
		behindProxies: len(cfg.TrustedProxies) > 0, observer: cfg.Observer, metrics: cfg.Metrics, accessLog: cfg.AccessLog,
		requireClientToken: cfg.RequireClientToken, console: cfg.Console,
		clientCORS: newCORSPolicy(cfg.CORSOrigins, clientMethods, clientHeaders),
		adminCORS:  newCORSPolicy(slices.DeleteFunc(slices.Clone(cfg.CORSAdminOrigins), isAnyOrigin), adminMethods, adminHeaders)}
	if cfg.Tracing != nil {
		s.tracer = cfg.Tracing.Tracer("github.com/switchyard-dev/switchyard/internal/server")
	}

	// Release mode must be set before gin.New, which otherwise prints its
	// debug banner; it is atomic, so setting it per server is safe.
	gin.SetMode(gin.ReleaseMode)
	engine := gin.New()
	// Client addresses are logged for refused credentials and limit each
	// client's new sessions; without trusted proxies Gin uses the peer
	// address, which a client cannot forge.
	if err := engine.SetTrustedProxies(cfg.TrustedProxies); err != nil {
		logger.Error("configure trusted proxies; trusting none", "err", err)
		_ = engine.SetTrustedProxies(nil)
	}
	// Flag keys may contain a slash, sent escaped as %2F: match on the raw
	// path and unescape the parameter.
	engine.UseRawPath = true
	engine.UnescapePathValues = true
	// A known path asked with another method answers 405 with Allow, not
	// 404: the client has the path right and the method wrong.
	engine.HandleMethodNotAllowed = true
	s.routes(engine)
	return engine
}
