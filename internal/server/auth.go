package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/gin-gonic/gin"
	"github.com/switchyard-dev/switchyard"
)

// Token is one API credential: the operator it names (the audit log and
// the service log give Operator.Name as the actor) and its secret, given as
// the secret itself or as the secret's SHA-256 digest, so that a tokens
// file need not hold any secret.
type Token struct {
	Operator switchyard.Operator
	// Secret is the bearer secret; empty when SecretSHA256 is set.
	Secret string
	// SecretSHA256 is the secret's SHA-256 digest, when the configuration
	// holds that instead of the secret.
	SecretSHA256 *[sha256.Size]byte
}

// Digest is the SHA-256 of t's secret: what a presented secret is compared
// with, and what tells two tokens' secrets apart without comparing them.
func (t Token) Digest() [sha256.Size]byte {
	if t.SecretSHA256 != nil {
		return *t.SecretSHA256
	}
	return sha256.Sum256([]byte(t.Secret))
}

// credential is a configured token, kept as its SHA-256 digest: comparing
// fixed-length digests takes the same time whatever the presented token's
// length.
type credential struct {
	digest [sha256.Size]byte
	who    switchyard.Operator
}

// Authenticator matches bearer tokens to the operators they name. Its
// tokens can be replaced while it serves (switchyard serve re-reads its
// tokens file on SIGHUP); each request is checked against one set, the
// old or the new, and none is refused for the swap.
type Authenticator struct {
	creds atomic.Pointer[[]credential]
}

// NewAuthenticator returns an authenticator accepting tokens. The caller
// has checked them: every token named, names unique, roles valid, no
// secret listed twice.
func NewAuthenticator(tokens []Token) *Authenticator {
	a := &Authenticator{}
	a.Replace(tokens)
	return a
}

// Replace makes tokens the only ones accepted from now on.
func (a *Authenticator) Replace(tokens []Token) {
	creds := make([]credential, 0, len(tokens))
	for _, t := range tokens {
		creds = append(creds, credential{digest: t.Digest(), who: t.Operator})
	}
	a.creds.Store(&creds)
}

// identify returns the operator of an Authorization header value. It
// compares the token with every configured one in constant time and never
// stops early, so the time taken says nothing about which token nearly
// matched.
func (a *Authenticator) identify(header string) (switchyard.Operator, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return switchyard.Operator{}, false
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return switchyard.Operator{}, false
	}
	return a.Operator(sha256.Sum256([]byte(token)))
}

// Operator returns the operator of the token whose secret has the SHA-256
// digest digest. The console keeps a signed-in operator's digest, never
// the secret, and asks again on every request, so a token removed from
// the tokens file ends its console sessions at once. Like identify it
// compares with every token in constant time and never stops early.
func (a *Authenticator) Operator(digest [sha256.Size]byte) (switchyard.Operator, bool) {
	creds := *a.creds.Load()
	match := -1
	for i := range creds {
		if subtle.ConstantTimeCompare(digest[:], creds[i].digest[:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return switchyard.Operator{}, false
	}
	return creds[match].who, true
}

// client names who makes a request, for the limit on each client's new
// sessions: the operator's name when the request carries a valid token,
// else the client's address (behind a trusted proxy, the one it forwards);
// an IPv6 client by its /64, which one host usually holds whole. An IPv4
// client without a token costs no allocation.
func (s *server) client(c *gin.Context) string {
	if h := c.GetHeader("Authorization"); h != "" {
		if op, ok := s.auth.identify(h); ok {
			return "token " + op.Name
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

// operatorKey is where authenticate leaves the operator in the Gin context.
const operatorKey = "switchyard.operator"

// authenticate admits requests with a valid bearer token and answers the
// rest 401. Refused credentials are logged, not audited: anyone can send
// them, and the audit log must not be floodable from outside. The log
// is not either: each client address has an allowance of refusals
// (control.RefusalBurst), past which it is answered 429, counted but not
// logged.
func (s *server) authenticate(c *gin.Context) {
	who, ok := s.auth.identify(c.GetHeader("Authorization"))
	if !ok {
		if err := s.core.Refused("address " + c.ClientIP()); err != nil {
			s.fail(c, err)
			c.Abort()
			return
		}
		s.logger.Warn("refused credentials", "method", c.Request.Method, "path", c.Request.URL.Path,
			"client", c.ClientIP(), "request_id", requestID(c))
		c.Header("WWW-Authenticate", `Bearer realm="switchyard"`)
		s.fail(c, switchyard.Errorf(switchyard.CodeUnauthorized, "a valid bearer token is required: send Authorization: Bearer <token>"))
		c.Abort()
		return
	}
	c.Set(operatorKey, who)
	c.Next()
}

// operatorOf returns the operator authenticate admitted; the zero
// Operator on a route that needs no token.
func operatorOf(c *gin.Context) switchyard.Operator {
	who, _ := c.Get(operatorKey)
	op, _ := who.(switchyard.Operator)
	return op
}
