package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
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

// identify returns the operator of an Authorization header value.
func (a *Authenticator) identify(header string) (switchyard.Operator, bool) {
	cred, ok := a.credential(header)
	return cred.who, ok
}

// credential returns the configured token an Authorization header value
// presents. It compares the token with every configured one in constant
// time and never stops early, so the time taken says nothing about which
// token nearly matched.
func (a *Authenticator) credential(header string) (credential, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return credential{}, false
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return credential{}, false
	}
	return a.byDigest(sha256.Sum256([]byte(token)))
}

// Operator returns the operator of the token whose secret has the SHA-256
// digest digest. The console keeps a signed-in operator's digest, never
// the secret, and asks again on every request, so a token removed from
// the tokens file ends its console sessions at once.
func (a *Authenticator) Operator(digest [sha256.Size]byte) (switchyard.Operator, bool) {
	cred, ok := a.byDigest(digest)
	return cred.who, ok
}

// byDigest returns the configured token whose secret has the SHA-256
// digest digest, comparing with every token in constant time and never
// stopping early.
func (a *Authenticator) byDigest(digest [sha256.Size]byte) (credential, bool) {
	creds := *a.creds.Load()
	match := -1
	for i := range creds {
		if subtle.ConstantTimeCompare(digest[:], creds[i].digest[:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return credential{}, false
	}
	return creds[match], true
}

// streamKeyPurpose sets a stream key's MAC apart from any other made with
// a token's digest.
const streamKeyPurpose = "switchyard ofrep event stream\x00"

// streamKey is the key a bulk evaluation puts in the URL of the OFREP
// event stream it advertises, for the browser's EventSource, which sends
// no Authorization header: the operator's name and a MAC of it keyed by
// the token's digest. It opens that stream only, never shows the secret,
// needs no state (every replica with the same tokens accepts it), and
// dies with the token.
func streamKey(cred credential) string {
	return cred.who.Name + "." + base64.RawURLEncoding.EncodeToString(streamMAC(cred))
}

func streamMAC(cred credential) []byte {
	m := hmac.New(sha256.New, cred.digest[:])
	m.Write([]byte(streamKeyPurpose + cred.who.Name))
	return m.Sum(nil)
}

// identifyStreamKey returns the operator a stream key was made for, while
// its token is configured.
func (a *Authenticator) identifyStreamKey(key string) (switchyard.Operator, bool) {
	i := strings.LastIndexByte(key, '.')
	if i < 0 {
		return switchyard.Operator{}, false
	}
	mac, err := base64.RawURLEncoding.DecodeString(key[i+1:])
	if err != nil {
		return switchyard.Operator{}, false
	}
	for _, cred := range *a.creds.Load() {
		if cred.who.Name == key[:i] {
			return cred.who, hmac.Equal(mac, streamMAC(cred))
		}
	}
	return switchyard.Operator{}, false
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

// authenticate admits requests to the admin API: a valid bearer token of
// an admin or a viewer. Without a valid token the answer is 401, with a
// client token 403: a client evaluates flags and reads nothing else.
// Refused credentials are logged, not audited: anyone can send them, and
// the audit log must not be floodable from outside. The log is not
// either: each client address (or client token) has an allowance of
// refusals (control.RefusalBurst), past which it is answered 429, counted
// but not logged.
func (s *server) authenticate(c *gin.Context) {
	who, ok := s.auth.identify(c.GetHeader("Authorization"))
	switch {
	case !ok:
		s.refuseCredentials(c)
	case !who.Role.Operates():
		if err := s.core.Refused("token " + who.Name); err != nil {
			s.fail(c, err)
			c.Abort()
			return
		}
		s.logger.Warn("refused a client token on the admin API", "method", c.Request.Method, "path", c.Request.URL.Path,
			"operator", who.Name, "request_id", requestID(c))
		s.fail(c, switchyard.Errorf(switchyard.CodeForbidden, "the %s role evaluates flags only; the admin API needs an admin or viewer token", who.Role))
		c.Abort()
	default:
		c.Set(operatorKey, who)
		c.Next()
	}
}

// requireClient guards what applications read (evaluation, sessions, the
// bundle and the Go providers' stream) when Config.RequireClientToken is
// set: a valid token of any role is needed, else the answer is 401. Unset,
// it admits every request, as a server on a private network may.
func (s *server) requireClient(c *gin.Context) { s.admitClient(c, false) }

// requireStreamClient is requireClient for the OFREP event stream, which
// also takes the stream key (query parameter key) its bulk evaluation
// advertised, since a browser's EventSource sends no header.
func (s *server) requireStreamClient(c *gin.Context) { s.admitClient(c, true) }

func (s *server) admitClient(c *gin.Context, byStreamKey bool) {
	if !s.requireClientToken {
		c.Next()
		return
	}
	if cred, ok := s.auth.credential(c.GetHeader("Authorization")); ok {
		c.Set(operatorKey, cred.who)
		c.Set(credentialKey, cred)
		c.Next()
		return
	}
	if byStreamKey {
		if who, ok := s.auth.identifyStreamKey(c.Query(streamKeyParam)); ok {
			c.Set(operatorKey, who)
			c.Next()
			return
		}
	}
	s.refuseCredentials(c)
}

// credentialKey is where admitClient leaves the token a request presented,
// from which a bulk evaluation makes its stream key.
const credentialKey = "switchyard.credential"

// streamKeyParam is the query parameter of the OFREP event stream that
// carries a stream key.
const streamKeyParam = "key"

// refuseCredentials answers a request without a valid token 401, or 429
// once its address has spent its allowance of refusals.
func (s *server) refuseCredentials(c *gin.Context) {
	defer c.Abort()
	if err := s.core.Refused("address " + c.ClientIP()); err != nil {
		s.fail(c, err)
		return
	}
	s.logger.Warn("refused credentials", "method", c.Request.Method, "path", c.Request.URL.Path,
		"client", c.ClientIP(), "request_id", requestID(c))
	c.Header("WWW-Authenticate", `Bearer realm="switchyard"`)
	s.fail(c, switchyard.Errorf(switchyard.CodeUnauthorized, "a valid bearer token is required: send Authorization: Bearer <token>"))
}

// operatorOf returns the operator authenticate admitted; the zero
// Operator on a route that needs no token.
func operatorOf(c *gin.Context) switchyard.Operator {
	who, _ := c.Get(operatorKey)
	op, _ := who.(switchyard.Operator)
	return op
}
