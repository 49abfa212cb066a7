package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/internal/server"
)

// minSecretLength is the shortest secret production accepts, in
// characters: a short secret can be guessed, and a guessed admin secret
// changes the runtime. Generated secrets (openssl rand -hex 32) have 64.
const minSecretLength = 32

// maxTokensFileBytes bounds the tokens file; a real one holds a few lines.
const maxTokensFileBytes = 1 << 20

// maxNameLength bounds an operator's name, which every audit row and log
// line carries.
const maxNameLength = 64

// digestPrefix marks a secret given as its SHA-256 digest.
const digestPrefix = "sha256:"

// tokens returns the configured tokens: SWITCHYARD_TOKENS or the tokens
// file, never both, so there is one place to look for who may act.
func (c *config) tokens() ([]server.Token, error) {
	switch {
	case c.Tokens != "" && c.TokensFile != "":
		return nil, errors.New("SWITCHYARD_TOKENS and SWITCHYARD_TOKENS_FILE are both set: configure the tokens in one place " +
			"(the file keeps secrets out of the environment and is re-read on SIGHUP)")
	case c.TokensFile != "":
		return readTokensFile(c.TokensFile)
	}
	tokens, err := parseTokens(c.Tokens)
	if err != nil {
		return nil, fmt.Errorf("SWITCHYARD_TOKENS: %w", err)
	}
	return tokens, nil
}

// parseTokens parses SWITCHYARD_TOKENS: comma-separated entries, each
// name:role:secret or, as before operators had names, role:secret (an
// anonymous token; see anonymousName). Blank input means no tokens.
func parseTokens(s string) ([]server.Token, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var ts tokenList
	for i, entry := range strings.Split(s, ",") {
		if strings.TrimSpace(entry) == "" {
			return nil, fmt.Errorf("entry %d is empty; write name:role:secret entries separated by commas", i+1)
		}
		if err := ts.add(entry, true); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
	}
	return ts.tokens, nil
}

// readTokensFile reads a tokens file: one name:role:secret a line, where
// the secret may be sha256:<64 hex digits>, its digest; lines starting with
// # and blank lines are skipped.
func readTokensFile(path string) ([]server.Token, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokensFileBytes+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("tokens file %s: %w", path, err)
	case len(b) > maxTokensFileBytes:
		return nil, fmt.Errorf("tokens file %s is over %d bytes", path, maxTokensFileBytes)
	}
	var ts tokenList
	lines := bufio.NewScanner(bytes.NewReader(b))
	lines.Buffer(nil, maxTokensFileBytes)
	for n := 1; lines.Scan(); n++ {
		line := strings.TrimSpace(lines.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := ts.add(line, false); err != nil {
			return nil, fmt.Errorf("tokens file %s: line %d: %w", path, n, err)
		}
	}
	if err := lines.Err(); err != nil {
		return nil, fmt.Errorf("tokens file %s: %w", path, err)
	}
	return ts.tokens, nil
}

// tokenList collects parsed tokens and refuses a name or a secret seen
// before: names tell operators apart, and a secret names one operator.
type tokenList struct {
	tokens  []server.Token
	names   map[string]bool
	digests map[[sha256.Size]byte]string
}

// add parses entry and appends its token. anonymous allows the role:secret
// form. Errors name the token but never show its secret.
func (l *tokenList) add(entry string, anonymous bool) error {
	t, err := parseToken(entry, anonymous)
	if err != nil {
		return err
	}
	name := t.Operator.Name
	digest := t.Digest()
	if l.names == nil {
		l.names, l.digests = map[string]bool{}, map[[sha256.Size]byte]string{}
	}
	switch {
	case l.names[name]:
		return fmt.Errorf("token %q: the name is listed twice; names tell operators apart", name)
	case l.digests[digest] != "":
		return fmt.Errorf("token %q: the same secret as token %q; each secret names one operator", name, l.digests[digest])
	}
	l.names[name], l.digests[digest] = true, name
	l.tokens = append(l.tokens, t)
	return nil
}

// parseToken parses name:role:secret, or role:secret when anonymous is
// allowed and the entry starts with a role.
func parseToken(entry string, anonymous bool) (server.Token, error) {
	first, rest, ok := strings.Cut(entry, ":")
	if !ok {
		return server.Token{}, errors.New("write name:role:secret, e.g. alice:admin:<secret>")
	}
	named := !anonymous || !switchyard.Role(strings.TrimSpace(first)).Valid()
	name, role, secret := "", first, rest
	if named {
		name = strings.TrimSpace(first)
		if role, secret, ok = strings.Cut(rest, ":"); !ok {
			return server.Token{}, errors.New("write name:role:secret, e.g. alice:admin:<secret>")
		}
	}
	r := switchyard.Role(strings.TrimSpace(role))
	secret = strings.TrimSpace(secret)
	what := fmt.Sprintf("token %q", name)
	if !named {
		what = fmt.Sprintf("the anonymous %s token", r)
	}
	switch {
	case named && !validName(name):
		return server.Token{}, fmt.Errorf("%s: a name is 1 to %d letters, digits and . _ @ -", what, maxNameLength)
	case !r.Valid():
		return server.Token{}, fmt.Errorf("%s: role %q is not %q, %q or %q", what, r, switchyard.RoleAdmin, switchyard.RoleViewer, switchyard.RoleClient)
	case secret == "":
		return server.Token{}, fmt.Errorf("%s: the secret is empty", what)
	}
	t := server.Token{Operator: switchyard.Operator{Name: name, Role: r}, Secret: secret}
	if hexDigest, ok := strings.CutPrefix(secret, digestPrefix); ok {
		b, err := hex.DecodeString(hexDigest)
		if err != nil || len(b) != sha256.Size {
			return server.Token{}, fmt.Errorf("%s: %s must be followed by the secret's SHA-256 in 64 hex digits (sha256sum prints it)", what, digestPrefix)
		}
		t.Secret, t.SecretSHA256 = "", (*[sha256.Size]byte)(b)
	}
	if !named {
		t.Operator.Name = anonymousName(r, t.Digest())
	}
	return t, nil
}

// anonymousName is the actor of a token configured without a name,
// "<role>:<first 6 hex digits of the secret's SHA-256>": it tells tokens
// apart without revealing them, as the audit log named every token before
// operators had names.
func anonymousName(role switchyard.Role, digest [sha256.Size]byte) string {
	return string(role) + ":" + hex.EncodeToString(digest[:])[:6]
}

// validName accepts 1 to maxNameLength letters, digits and . _ @ -, which
// read safely in logs and audit rows and cannot be mistaken for the
// anonymous role:digest form.
func validName(name string) bool {
	if name == "" || len(name) > maxNameLength {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch b := name[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '.', b == '_', b == '@', b == '-':
		default:
			return false
		}
	}
	return true
}

// tokenRequirements checks production's requirements on tokens: an admin
// token is configured, and every secret is long enough. A secret given as
// its digest cannot be measured, so only its owner can vouch for it.
func tokenRequirements(tokens []server.Token) (admin, secrets control.Requirement) {
	admin = control.Requirement{Name: reqAdminTokens,
		Why: "the admin API must accept only configured secrets; demo mode's generated token is shown once and dies with the process (--tokens-file, SWITCHYARD_TOKENS_FILE, or SWITCHYARD_TOKENS)"}
	secrets = control.Requirement{Name: reqTokenSecrets, Met: true,
		Why: fmt.Sprintf("every token's secret must have at least %d characters, or it can be guessed (openssl rand -hex 32 makes one)", minSecretLength)}
	var weak []string
	for _, t := range tokens {
		admin.Met = admin.Met || t.Operator.Role == switchyard.RoleAdmin
		if n := utf8.RuneCountInString(t.Secret); t.SecretSHA256 == nil && n < minSecretLength {
			weak = append(weak, fmt.Sprintf("token %q (%s) has %d", t.Operator.Name, t.Operator.Role, n))
		}
	}
	if !admin.Met {
		admin.Detail = "no admin token is configured"
	}
	if len(weak) > 0 {
		secrets.Met = false
		secrets.Detail = "too short: " + strings.Join(weak, ", ")
	}
	return admin, secrets
}

// operators holds the tokens switchyard serve accepts and the
// authenticator checking them. A SIGHUP re-reads the tokens file and swaps
// the new tokens in at once, without a restart or a refused request; a
// file that does not parse, or that production would refuse, keeps the
// tokens in force.
type operators struct {
	logger *slog.Logger
	// file is the tokens file; empty when the tokens come from
	// SWITCHYARD_TOKENS, which cannot change without a restart.
	file string
	auth *server.Authenticator
	// configured is the tokens configured, for production's requirements;
	// it does not hold demo mode's generated token.
	configured atomic.Pointer[[]server.Token]
}

// newOperators serves configured, from file when it is set, and also
// extra (demo mode's generated token).
func newOperators(logger *slog.Logger, file string, configured, extra []server.Token) *operators {
	o := &operators{logger: logger, file: file, auth: server.NewAuthenticator(slices.Concat(configured, extra))}
	o.configured.Store(&configured)
	return o
}

// current returns the tokens configured now.
func (o *operators) current() []server.Token { return *o.configured.Load() }

// reload re-reads the tokens file and serves its tokens, unless it cannot
// be read or mode is production and production would refuse them (no
// admin token, a short secret): then the tokens in force stay, and the
// error says why.
func (o *operators) reload(mode string) error {
	if o.file == "" {
		return errors.New("no tokens file to re-read: the tokens come from SWITCHYARD_TOKENS, which needs a restart to change (SWITCHYARD_TOKENS_FILE is re-read on SIGHUP)")
	}
	tokens, err := readTokensFile(o.file)
	if err != nil {
		return err
	}
	admin, secrets := tokenRequirements(tokens)
	if mode == switchyard.ModeProduction {
		for _, r := range []control.Requirement{admin, secrets} {
			if !r.Met {
				return fmt.Errorf("tokens file %s: production refuses it: %s: %s [%s]", o.file, r.Name, r.Why, r.Detail)
			}
		}
	}
	warnWeakSecrets(o.logger, secrets)
	o.auth.Replace(tokens)
	o.configured.Store(&tokens)
	names := make([]string, len(tokens))
	for i, t := range tokens {
		names[i] = t.Operator.Name
	}
	o.logger.Info("tokens reloaded", "file", o.file, "operators", names)
	return nil
}

// warnWeakSecrets logs the short secrets a demo process accepts and
// production would refuse.
func warnWeakSecrets(logger *slog.Logger, secrets control.Requirement) {
	if !secrets.Met {
		logger.Warn("token secrets production refuses", "problem", secrets.Detail, "min_length", minSecretLength)
	}
}
