// Package server is Switchyard's HTTP transport, served by Gin: OFREP flag
// evaluation, session snapshots, the audited admin runtime, the system mode
// and the audit log. Each handler decodes its request, calls the
// application core (internal/control) and encodes the answer; errors map to
// HTTP and OFREP shapes in one place (errors.go). openapi/openapi.yaml is
// its contract; the tests hold every request and response to it.
package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/control"
)

// Token is one API credential and the role it grants.
type Token struct {
	Role   switchyard.Role
	Secret string
}

// Config is the transport's settings; the core has its own
// (control.Config). A zero MaxBodyBytes takes the default below.
type Config struct {
	Tokens []Token
	// MaxBodyBytes bounds every request body; 1 MiB when 0.
	MaxBodyBytes int64
	// TrustedProxies are the addresses and CIDR ranges of the proxies whose
	// X-Forwarded-For (or X-Real-IP) names the client; none by default, so
	// a client is its peer address, which it cannot forge.
	TrustedProxies []string
}

// defaultMaxBodyBytes is the body limit of Config's zero value.
const defaultMaxBodyBytes = 1 << 20

// server holds what every handler needs: the core it calls and how to
// decode and authenticate requests. It holds no state of its own.
type server struct {
	logger *slog.Logger
	core   *control.Core
	auth   *authenticator
	// maxBodyBytes bounds every request body but an import's.
	maxBodyBytes int64
	// behindProxies says whether TrustedProxies are configured: only then
	// may a forwarded address name the client.
	behindProxies bool
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
	s := &server{logger: logger, core: core, auth: newAuthenticator(cfg.Tokens), maxBodyBytes: cfg.MaxBodyBytes,
		behindProxies: len(cfg.TrustedProxies) > 0}

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
	s.routes(engine)
	return engine
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
		r := switchyard.Role(strings.TrimSpace(role))
		secret = strings.TrimSpace(secret)
		switch {
		case r != switchyard.RoleAdmin && r != switchyard.RoleViewer:
			return nil, fmt.Errorf("entry %d: role %q is not %q or %q", i+1, r, switchyard.RoleAdmin, switchyard.RoleViewer)
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
