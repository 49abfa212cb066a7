package provider

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// The OFREP environment variables, honoured where no option says otherwise,
// so one deployment setting configures every OpenFeature SDK alike.
const (
	EnvEndpoint  = "OFREP_ENDPOINT"
	EnvHeaders   = "OFREP_HEADERS"
	EnvTimeoutMS = "OFREP_TIMEOUT_MS"
)

// The defaults of the options below.
const (
	defaultTimeout      = 2 * time.Second
	defaultSessions     = 100_000
	defaultPollInterval = 10 * time.Second
	defaultGracePeriod  = 30 * time.Second
	// missedHeartbeats is how many of the heartbeat intervals the server
	// advertises a stream may stay silent: longer, it is lost, though its
	// connection looks open.
	missedHeartbeats = 3
	// revisionsBytes bounds the compiled flag sets of old revisions that
	// pinned sessions read, by what each holds of its own: a revision
	// compiled from the live one shares every flag it did not change, so
	// a toggle's costs a few kilobytes however many flags there are.
	revisionsBytes = 32 << 20
)

// Mode says where flags are evaluated.
type Mode int

const (
	// InProcess fetches the compiled flag set once, evaluates locally and
	// follows changes over /v1/stream: evaluations make no network call.
	InProcess Mode = iota
	// Remote makes one OFREP call per evaluation, for services that want no
	// local state.
	Remote
)

// config is what the options set.
type config struct {
	mode         Mode
	token        string
	headers      http.Header
	client       *http.Client
	timeout      time.Duration
	sessions     int
	pollInterval time.Duration
	gracePeriod  time.Duration
}

// Option configures a Provider.
type Option func(*config)

// WithMode chooses in-process (the default) or remote evaluation.
func WithMode(m Mode) Option { return func(c *config) { c.mode = m } }

// WithToken sends token as a bearer token on every request, for servers
// (or proxies) that require one.
func WithToken(token string) Option { return func(c *config) { c.token = token } }

// WithHeaders adds headers to every request; it replaces OFREP_HEADERS.
func WithHeaders(h http.Header) Option { return func(c *config) { c.headers = h.Clone() } }

// WithHTTPClient sends every request through client, for custom transports
// and TLS. Its Timeout should be zero: the provider sets a deadline per
// call, and a client timeout would also cut the long-lived stream.
func WithHTTPClient(client *http.Client) Option { return func(c *config) { c.client = client } }

// WithTimeout bounds every request but the stream; it replaces
// OFREP_TIMEOUT_MS. The default is 2 s.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithSessionCacheSize bounds how many session snapshots an in-process
// provider keeps (100,000 by default); the least recently used is dropped
// and fetched again when its session comes back.
func WithSessionCacheSize(n int) Option { return func(c *config) { c.sessions = n } }

// WithPollInterval sets how often an in-process provider polls the bundle
// while the stream is unavailable (10 s by default).
func WithPollInterval(d time.Duration) Option { return func(c *config) { c.pollInterval = d } }

// WithGracePeriod sets how long an in-process provider may go without
// reaching the server (stream and polls failing) before it reports
// PROVIDER_STALE (30 s by default).
func WithGracePeriod(d time.Duration) Option { return func(c *config) { c.gracePeriod = d } }

// newConfig applies opts over the environment and the defaults.
func newConfig(opts []Option) (config, error) {
	c := config{sessions: defaultSessions, pollInterval: defaultPollInterval, gracePeriod: defaultGracePeriod}
	for _, o := range opts {
		o(&c)
	}
	if c.headers == nil {
		h, err := parseHeaders(os.Getenv(EnvHeaders))
		if err != nil {
			return c, fmt.Errorf("%s: %w", EnvHeaders, err)
		}
		c.headers = h
	}
	if c.timeout <= 0 {
		c.timeout = defaultTimeout
		if s := os.Getenv(EnvTimeoutMS); s != "" {
			ms, err := strconv.Atoi(s)
			if err != nil || ms <= 0 {
				return c, fmt.Errorf("%s=%q: want a positive number of milliseconds", EnvTimeoutMS, s)
			}
			c.timeout = time.Duration(ms) * time.Millisecond
		}
	}
	if c.client == nil {
		c.client = &http.Client{}
	}
	if c.sessions <= 0 {
		c.sessions = defaultSessions
	}
	if c.pollInterval <= 0 {
		c.pollInterval = defaultPollInterval
	}
	if c.gracePeriod <= 0 {
		c.gracePeriod = defaultGracePeriod
	}
	return c, nil
}

// parseHeaders parses OFREP_HEADERS: comma-separated name=value pairs.
func parseHeaders(s string) (http.Header, error) {
	h := http.Header{}
	for pair := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		name, value, ok := strings.Cut(pair, "=")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("%q is not name=value", pair)
		}
		h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	return h, nil
}
