package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net"
	"net/netip"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/switchyard-dev/switchyard"
)

// principal is who made a request: the role of the token and the actor the
// audit log names, "<role>:<first 6 hex digits of sha256(token)>", which
// tells tokens apart without revealing them.
type principal struct {
	role  switchyard.Role
	actor string
}

// credential is a configured token, kept as its SHA-256 digest: comparing
// fixed-length digests takes the same time whatever the presented token's
// length.
type credential struct {
	digest [sha256.Size]byte
	who    principal
}

// authenticator checks bearer tokens against the configured ones.
type authenticator struct {
	creds []credential
}

func newAuthenticator(tokens []Token) *authenticator {
	a := &authenticator{creds: make([]credential, 0, len(tokens))}
	for _, t := range tokens {
		digest := sha256.Sum256([]byte(t.Secret))
		actor := string(t.Role) + ":" + hex.EncodeToString(digest[:])[:6]
		a.creds = append(a.creds, credential{digest: digest, who: principal{role: t.Role, actor: actor}})
	}
	return a
}

// identify returns the principal of an Authorization header value. It
// compares the token with every configured one in constant time and never
// stops early, so the time taken says nothing about which token nearly
// matched.
func (a *authenticator) identify(header string) (principal, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return principal{}, false
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return principal{}, false
	}
	digest := sha256.Sum256([]byte(token))
	match := -1
	for i := range a.creds {
		if subtle.ConstantTimeCompare(digest[:], a.creds[i].digest[:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return principal{}, false
	}
	return a.creds[match].who, true
}

// client names who makes a request, for the limit on each client's new
// sessions: the token's actor when the request carries a valid token, else
// the client's address (behind a trusted proxy, the one it forwards); an
// IPv6 client by its /64, which one host usually holds whole. An IPv4
// client without a token costs no allocation.
func (s *server) client(c *gin.Context) string {
	if h := c.GetHeader("Authorization"); h != "" {
		if who, ok := s.auth.identify(h); ok {
			return "token " + who.actor
		}
	}
	var ip string
	if s.behindProxies {
		ip = c.ClientIP()
	} else {
		// What ClientIP answers without trusted proxies, without parsing
		// the address into a new slice.
		ip, _, _ = net.SplitHostPort(c.Request.RemoteAddr)
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil || addr.Unmap().Is4() {
		return ip
	}
	p, err := addr.Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}

// principalKey is where authenticate leaves the principal in the Gin context.
const principalKey = "switchyard.principal"

// authenticate admits requests with a valid bearer token and answers the
// rest 401. Refused credentials are logged, not audited: anyone can send
// them, and the audit log must not be floodable from outside.
func (s *server) authenticate(c *gin.Context) {
	who, ok := s.auth.identify(c.GetHeader("Authorization"))
	if !ok {
		s.logger.Warn("refused credentials", "method", c.Request.Method, "path", c.Request.URL.Path,
			"client", c.ClientIP(), "request_id", requestID(c))
		c.Header("WWW-Authenticate", `Bearer realm="switchyard"`)
		s.fail(c, switchyard.Errorf(switchyard.CodeUnauthorized, "a valid bearer token is required: send Authorization: Bearer <token>"))
		c.Abort()
		return
	}
	c.Set(principalKey, who)
	c.Next()
}

// principalOf returns the principal authenticate admitted.
func principalOf(c *gin.Context) principal {
	who, _ := c.Get(principalKey)
	p, _ := who.(principal)
	return p
}
