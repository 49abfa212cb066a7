package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/console"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/internal/telemetry"
)

// config is every setting of switchyard serve. Each has a flag and a
// SWITCHYARD_* environment variable; the flag wins. Defaults live here and
// nowhere else.
type config struct {
	Addr string
	Mode string
	// ModeSource says how Mode was chosen: a flag, the environment, the
	// default.
	ModeSource      string
	Tokens          string
	TokensFile      string
	DatabaseURL     string
	RedisURL        string
	RedisTTL        time.Duration
	RedisPrefix     string
	Migrate         string
	LogFormat       string
	LogLevel        string
	SessionTTL      time.Duration
	CacheTTL        time.Duration
	ShutdownTimeout time.Duration
	StateDir        string
	// AllowLiveSwitch says whether an admin may switch this process's mode
	// live: --allow-live-switch or SWITCHYARD_ALLOW_LIVE_SWITCH when set,
	// else on in demo mode and off in production mode, so a production
	// process is not switched to demo by one admin call unless its owner
	// said it may be.
	AllowLiveSwitch bool
	// liveSwitch is the setting as given, before the start mode decides
	// its default.
	liveSwitch optionalBool
	// MaxSessions is --max-sessions; 0 when unset: each mode's default
	// (see maxSessions).
	MaxSessions  int
	SessionRate  float64
	SessionBurst int
	// TrustedProxies is --trusted-proxies, split and checked by loadConfig
	// into Proxies.
	TrustedProxies string
	Proxies        []string
	// MetricsAddr, when set, moves GET /metrics from the main listener to
	// a listener of its own, where Pprof adds /debug/pprof/.
	MetricsAddr string
	Pprof       bool
	// MetricsFlagLabels is how many general flags get a label of their
	// own in switchyard_evaluations_total.
	MetricsFlagLabels int
	// AccessLog logs every request.
	AccessLog bool
	// RequireApproval and ApprovalPolicy are --require-approval and
	// --approval-policy, read into a policy by approvals.
	RequireApproval string
	ApprovalPolicy  string
	// RequireClientToken is --require-client-token: evaluation, sessions,
	// the bundle and the streams need a valid token.
	RequireClientToken bool
	requireClient      optionalBool
	// CORS is --cors-origins and CORSAdmin --cors-admin-origins, checked by
	// loadConfig into CORSOrigins and CORSAdminOrigins.
	CORS             string
	CORSAdmin        string
	CORSOrigins      []string
	CORSAdminOrigins []string
	// FlagFiles is --flags: flagd files demo mode serves and follows.
	FlagFiles fileList
	// Console serves the operator console at /console/;
	// ConsoleSecureCookie marks its session cookie Secure on plain HTTP
	// too (behind a proxy that terminates TLS), and ConsoleIdleTimeout
	// ends a console session unused that long.
	Console             bool
	ConsoleSecureCookie bool
	ConsoleIdleTimeout  time.Duration
}

// fileList is a setting of files given once each (--flags a --flags b),
// or comma-separated in the environment; files given as flags replace the
// environment's, as every flag does.
type fileList struct {
	files []string
	// fromEnv is set while files holds the environment's list.
	fromEnv bool
}

// Set implements flag.Value: one file, after the environment's list was
// set as the default, which the first file given replaces.
func (l *fileList) Set(s string) error {
	if l.fromEnv {
		*l = fileList{}
	}
	if s = strings.TrimSpace(s); s != "" {
		l.files = append(l.files, s)
	}
	return nil
}

// setDefault sets the environment's comma-separated list.
func (l *fileList) setDefault(s string) {
	*l = fileList{fromEnv: true}
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			l.files = append(l.files, f)
		}
	}
}

// String implements flag.Value.
func (l *fileList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(l.files, ",")
}

// The bound on live sessions of each mode when --max-sessions is not set.
// Demo mode keeps its sessions in the process, about 1.5 KiB each, so its
// bound is about 150 MiB; production keeps them in Postgres, and one
// client at the default rate (10 a second for a 24 h TTL, plus its burst)
// cannot hold all of them.
const (
	defaultMaxSessionsDemo       = 100_000
	defaultMaxSessionsProduction = 1_000_000
)

// maxSessions is the bound on live sessions of mode's store.
func (c *config) maxSessions(mode string) int {
	switch {
	case c.MaxSessions > 0:
		return c.MaxSessions
	case mode == switchyard.ModeProduction:
		return defaultMaxSessionsProduction
	}
	return defaultMaxSessionsDemo
}

// optionalBool is a boolean setting that may be left unset, for a default
// that depends on another setting. As a flag it may be given bare
// (--allow-live-switch) or with a value (--allow-live-switch=false).
type optionalBool struct {
	set, value bool
}

// Set implements flag.Value; the empty string leaves it unset.
func (b *optionalBool) Set(s string) error {
	if s == "" {
		*b = optionalBool{}
		return nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("%q: use true or false", s)
	}
	*b = optionalBool{set: true, value: v}
	return nil
}

// String implements flag.Value.
func (b *optionalBool) String() string {
	if b == nil || !b.set {
		return ""
	}
	return strconv.FormatBool(b.value)
}

// IsBoolFlag lets the flag be given without a value, meaning true.
func (b *optionalBool) IsBoolFlag() bool { return true }

// setting describes one configuration entry: its flag, its environment
// variable, its default and its help text. The README's configuration
// table lists the same entries.
type setting struct {
	flag, env, def, help string
	bind                 func(fs *flag.FlagSet, name, value, help string)
}

func (c *config) settings() []setting {
	str := func(p *string) func(*flag.FlagSet, string, string, string) {
		return func(fs *flag.FlagSet, name, value, help string) { fs.StringVar(p, name, value, help) }
	}
	dur := func(p *time.Duration) func(*flag.FlagSet, string, string, string) {
		return func(fs *flag.FlagSet, name, value, help string) {
			fs.Func(name, help+" (default "+value+")", func(s string) error { return parseDuration(p, name, s) })
		}
	}
	count := func(p *int, lowest int) func(*flag.FlagSet, string, string, string) {
		return func(fs *flag.FlagSet, name, value, help string) {
			if value != "" {
				help += " (default " + value + ")"
			}
			fs.Func(name, help, func(s string) error { return parseCount(p, name, s, lowest) })
		}
	}
	boolean := func(p *bool) func(*flag.FlagSet, string, string, string) {
		return func(fs *flag.FlagSet, name, value, help string) {
			fs.BoolVar(p, name, false, help+" (default "+value+")")
		}
	}
	rate := func(p *float64) func(*flag.FlagSet, string, string, string) {
		return func(fs *flag.FlagSet, name, value, help string) {
			fs.Func(name, help+" (default "+value+")", func(s string) error { return parseRate(p, name, s) })
		}
	}
	return []setting{
		{"addr", "SWITCHYARD_ADDR", "127.0.0.1:8080", "address to listen on", str(&c.Addr)},
		{"mode", "SWITCHYARD_MODE", "", "start mode: demo (in memory, fixtures) or production (Postgres and Redis; refused while a requirement is missing); empty: production when a database URL is set, else demo. An admin switches it live at POST /system-mode/toggle", str(&c.Mode)},
		{"database-url", "SWITCHYARD_DATABASE_URL", "", "Postgres URL (postgres://user@host:5432/db?sslmode=disable); the store of production mode", str(&c.DatabaseURL)},
		{"redis-url", "SWITCHYARD_REDIS_URL", "", "Redis URL (redis://host:6379/0; Sentinel and Cluster forms too): the shared cache of production mode", str(&c.RedisURL)},
		{"redis-ttl", "SWITCHYARD_REDIS_TTL", "10s", "how long Redis holds the current revision's number before replicas read the store", dur(&c.RedisTTL)},
		{"redis-prefix", "SWITCHYARD_REDIS_PREFIX", "switchyard:", "prefix of every Redis key and channel; installations sharing a Redis need distinct prefixes", str(&c.RedisPrefix)},
		{"migrate", "SWITCHYARD_MIGRATE", "true", "apply pending migrations at start (true or false)", str(&c.Migrate)},
		{"tokens", "SWITCHYARD_TOKENS", "", "API tokens as name:role:secret,... (roles admin, viewer, client; role:secret for an anonymous token); demo mode generates an admin token when no tokens are configured", str(&c.Tokens)},
		{"tokens-file", "SWITCHYARD_TOKENS_FILE", "", "file of API tokens, one name:role:secret a line (the secret may be sha256:<hex digest>); re-read on SIGHUP. Use it or --tokens, not both", str(&c.TokensFile)},
		{"log-format", "SWITCHYARD_LOG_FORMAT", "text", "log format: text or json", str(&c.LogFormat)},
		{"log-level", "SWITCHYARD_LOG_LEVEL", "info", "log level: debug, info, warn or error", str(&c.LogLevel)},
		{"access-log", "SWITCHYARD_ACCESS_LOG", "false", "log every request once answered: method, path, route, status, duration, request ID, actor", boolean(&c.AccessLog)},
		{"metrics-addr", "SWITCHYARD_METRICS_ADDR", "", "serve GET /metrics on this address instead of the main one", str(&c.MetricsAddr)},
		{"pprof", "SWITCHYARD_PPROF", "false", "serve /debug/pprof/ on the metrics address (needs --metrics-addr)", boolean(&c.Pprof)},
		{"metrics-flag-labels", "SWITCHYARD_METRICS_FLAG_LABELS", strconv.Itoa(telemetry.DefaultFlagLabels), "how many general flags get a label of their own in switchyard_evaluations_total (the runtime's flags always do; the rest count as other)", count(&c.MetricsFlagLabels, 0)},
		{"session-ttl", "SWITCHYARD_SESSION_TTL", control.DefaultSessionTTL.String(), "how long a session's snapshot is kept", dur(&c.SessionTTL)},
		{"max-sessions", "SWITCHYARD_MAX_SESSIONS", "", fmt.Sprintf("most live sessions kept; past it, demo mode drops the oldest and production refuses new ones "+
			"(evaluated unpinned, POST /v1/sessions answers 429); empty: %d in demo mode, %d in production", defaultMaxSessionsDemo, defaultMaxSessionsProduction), count(&c.MaxSessions, 1)},
		{"session-rate", "SWITCHYARD_SESSION_RATE", "10", "new sessions a second each client (a token, else an address) may make once its burst is spent; past it a new session is evaluated unpinned and POST /v1/sessions answers 429; 0: no limit", rate(&c.SessionRate)},
		{"session-burst", "SWITCHYARD_SESSION_BURST", "5000", "new sessions a client may make at once (a school behind one address, an application server starting an exam)", count(&c.SessionBurst, 1)},
		{"trusted-proxies", "SWITCHYARD_TRUSTED_PROXIES", "", "comma-separated addresses or CIDR ranges of the proxies whose X-Forwarded-For names the client; empty: the peer address is the client", str(&c.TrustedProxies)},
		{"cache-ttl", "SWITCHYARD_CACHE_TTL", control.DefaultCacheTTL.String(), "how long the in-process flag set is served before it is reloaded", dur(&c.CacheTTL)},
		{"state-dir", "SWITCHYARD_STATE_DIR", "", "directory of the last-known-good file: every new revision is written there, and a start with the stores down serves it", str(&c.StateDir)},
		{"shutdown-timeout", "SWITCHYARD_SHUTDOWN_TIMEOUT", "15s", "how long in-flight requests may finish on SIGINT/SIGTERM", dur(&c.ShutdownTimeout)},
		{"require-approval", "SWITCHYARD_REQUIRE_APPROVAL", "", "comma-separated actions, as the audit log names them (set_flag,set_profile,...), that another admin must approve: a direct write of one answers 403 APPROVAL_REQUIRED, and it is proposed at POST /v1/admin/changes instead; empty: none", str(&c.RequireApproval)},
		{"approval-policy", "SWITCHYARD_APPROVAL_POLICY", "", `JSON file of the approvals each action needs and whether it may be break-glass, e.g. {"set_profile": {"approvals": 2, "break_glass": true}}; use it or --require-approval, not both`, str(&c.ApprovalPolicy)},
		{"require-client-token", "SWITCHYARD_REQUIRE_CLIENT_TOKEN", "", "make evaluation (OFREP), sessions, the bundle and the streams need a valid token of any role, e.g. a name:client:secret one (true or false); unset, they need none, which suits a private network only",
			func(fs *flag.FlagSet, name, _, help string) { fs.Var(&c.requireClient, name, help) }},
		{"cors-origins", "SWITCHYARD_CORS_ORIGINS", "", "comma-separated browser origins (https://app.example.com) that may call evaluation, sessions, the bundle and the streams, or * for any; empty: none", str(&c.CORS)},
		{"cors-admin-origins", "SWITCHYARD_CORS_ADMIN_ORIGINS", "", "comma-separated browser origins that may call the admin API, each named (never *); empty: none", str(&c.CORSAdmin)},
		{"flags", "SWITCHYARD_FLAGS", "", "a flagd flag file (JSON or YAML; a path or file: URI) demo mode serves and follows, as flagd -f does; give it once per file (the environment: comma-separated)",
			func(fs *flag.FlagSet, name, _, help string) { fs.Var(&c.FlagFiles, name, help) }},
		{"console", "SWITCHYARD_CONSOLE", "true", "serve the operator console at /console/ (true or false)", boolean(&c.Console)},
		{"console-secure-cookie", "SWITCHYARD_CONSOLE_SECURE_COOKIE", "false", "mark the console's session cookie Secure on plain HTTP too, behind a proxy that terminates TLS (it is Secure over TLS anyway)", boolean(&c.ConsoleSecureCookie)},
		{"console-idle-timeout", "SWITCHYARD_CONSOLE_IDLE_TIMEOUT", console.DefaultIdleTimeout.String(), "how long a console session lives unused before its operator must sign in again", dur(&c.ConsoleIdleTimeout)},
		{"allow-live-switch", "SWITCHYARD_ALLOW_LIVE_SWITCH", "", "let an admin switch the mode of this process live at POST /system-mode/toggle (true or false); empty: on when it starts in demo mode, off in production mode",
			func(fs *flag.FlagSet, name, _, help string) { fs.Var(&c.liveSwitch, name, help) }},
	}
}

// parseCount parses a whole number of at least lowest; empty is 0, the
// setting's own default.
func parseCount(p *int, name, s string, lowest int) error {
	if s == "" {
		*p = 0
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lowest {
		return fmt.Errorf("%s: %q is not a whole number of at least %d", name, s, lowest)
	}
	*p = n
	return nil
}

// parseRate parses a rate a second, 0 or more.
func parseRate(p *float64, name, s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f >= 0 && f <= 1e9) {
		return fmt.Errorf("%s: %q is not a rate a second like 10 or 0.5 (0: no limit)", name, s)
	}
	*p = f
	return nil
}

// parseProxies splits a comma-separated list of addresses and CIDR ranges,
// refusing anything else.
func parseProxies(s string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				return nil, fmt.Errorf("trusted proxies: %q is not an address or a CIDR range", p)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// parseOrigins splits a comma-separated list of browser origins, each
// scheme://host[:port] and nothing more, as a browser sends it in Origin;
// anyOrigin allows "*" for every origin.
func parseOrigins(name, s string, anyOrigin bool) ([]string, error) {
	var out []string
	for _, o := range strings.Split(s, ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		if o == "*" {
			if !anyOrigin {
				return nil, fmt.Errorf("%s: * is allowed for evaluation only; name each origin that may call the admin API", name)
			}
			out = append(out, o)
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("%s: %q is not an origin like https://app.example.com (a scheme, a host, a port if any)", name, o)
		}
		out = append(out, strings.ToLower(u.Scheme+"://"+u.Host))
	}
	return out, nil
}

func parseDuration(p *time.Duration, name, s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("%s: %q is not a positive duration like 30s or 24h", name, s)
	}
	*p = d
	return nil
}

// bindConfig defines every setting of serve on fs, each defaulting to its
// environment variable over its default, and returns the first
// environment variable that does not parse; resolve completes the
// configuration once fs has parsed the command line.
func bindConfig(fs *flag.FlagSet, getenv func(string) string) (*config, error) {
	c := &config{}
	var first error
	for _, s := range c.settings() {
		value := s.def
		if v := getenv(s.env); v != "" {
			value = v
		}
		s.bind(fs, s.flag, value, s.help+" ["+s.env+"]")
		if l, ok := fs.Lookup(s.flag).Value.(*fileList); ok {
			l.setDefault(value)
			continue
		}
		// Durations bind through Func, which has no default: set it now.
		if err := fs.Set(s.flag, value); err != nil && first == nil {
			first = fmt.Errorf("%s: %w", s.env, err)
		}
	}
	return c, first
}

// resolve chooses the start mode and what depends on it, and checks the
// settings that have a fixed set of values.
func (c *config) resolve(getenv func(string) string) error {
	switch env := getenv("SWITCHYARD_MODE"); {
	case c.Mode != "" && c.Mode == env:
		c.ModeSource = "SWITCHYARD_MODE=" + c.Mode
	case c.Mode != "":
		c.ModeSource = "--mode " + c.Mode
	case c.DatabaseURL != "":
		c.Mode, c.ModeSource = switchyard.ModeProduction, "default: a database URL is set"
	default:
		c.Mode, c.ModeSource = switchyard.ModeDemo, "default: no database URL is set"
	}
	c.AllowLiveSwitch = c.Mode == switchyard.ModeDemo
	if c.liveSwitch.set {
		c.AllowLiveSwitch = c.liveSwitch.value
	}
	switch {
	case c.Mode != switchyard.ModeDemo && c.Mode != switchyard.ModeProduction:
		return fmt.Errorf("mode %q: use demo or production", c.Mode)
	case c.Migrate != "true" && c.Migrate != "false":
		return fmt.Errorf("migrate %q: use true or false", c.Migrate)
	case c.Pprof && c.MetricsAddr == "":
		return errors.New("--pprof needs --metrics-addr: profiles are served only on the metrics address, never on the main one")
	}
	proxies, err := parseProxies(c.TrustedProxies)
	if err != nil {
		return err
	}
	c.Proxies = proxies
	c.RequireClientToken = c.requireClient.value
	if c.CORSOrigins, err = parseOrigins("cors origins", c.CORS, true); err != nil {
		return err
	}
	if c.CORSAdminOrigins, err = parseOrigins("cors admin origins", c.CORSAdmin, false); err != nil {
		return err
	}
	return nil
}

// logger builds the slog logger the configuration asks for.
func (c *config) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("log level %q: use debug, info, warn or error", c.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: use text or json", c.LogFormat)
}

// approvals reads the approval policy: --approval-policy's file, or one
// approval for each action --require-approval names; none by default.
func (c *config) approvals() (control.Policy, error) {
	switch {
	case c.RequireApproval != "" && c.ApprovalPolicy != "":
		return nil, errors.New("SWITCHYARD_REQUIRE_APPROVAL and SWITCHYARD_APPROVAL_POLICY are both set: configure the approval policy in one place")
	case c.ApprovalPolicy != "":
		data, err := os.ReadFile(c.ApprovalPolicy)
		if err != nil {
			return nil, fmt.Errorf("approval policy: %w", err)
		}
		p, err := control.ParsePolicy(data)
		if err != nil {
			return nil, fmt.Errorf("approval policy %s: %w", c.ApprovalPolicy, err)
		}
		return p, nil
	}
	p, err := control.RequireApproval(c.RequireApproval)
	if err != nil {
		return nil, fmt.Errorf("SWITCHYARD_REQUIRE_APPROVAL: %w", err)
	}
	return p, nil
}
