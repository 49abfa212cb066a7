package provider

import (
	"fmt"
	"math/rand/v2"
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
	defaultMaxBackoff   = time.Second
)

// The provider's other bounds and paces.
const (
	// missedHeartbeats is how many of the heartbeat intervals the server
	// advertises a stream may stay silent: longer, it is lost, though its
	// connection looks open.
	missedHeartbeats = 3
	// revisionsBytes bounds the compiled flag sets of old revisions that
	// pinned sessions read, by what each holds of its own: a revision
	// compiled from the live one shares every flag it did not change, so
	// a toggle's costs a few kilobytes however many flags there are.
	revisionsBytes = 32 << 20
	// minBackoff is the first wait of a backoff after a failure (jittered,
	// doubling up to the maximum backoff).
	minBackoff = 250 * time.Millisecond
	// streamSettled is how long a stream must have been open for its end
	// to be followed by an immediate reconnect: a stream that keeps ending
	// sooner is reconnected with backoff, so it cannot make the provider
	// hammer the server.
	streamSettled = time.Second
	// circuitFailures is how many remote evaluations in a row may fail
	// (no answer within the timeout, or a 5xx) before the circuit opens.
	circuitFailures = 3
	// registrationBuffer bounds the sessions pinned at first sight that
	// wait to be registered with the server; past it a session is served
	// its local pin unregistered, and the server pins it itself if ever
	// asked.
	registrationBuffer = 1024
	// localPinTTL is how long a session pinned at first sight keeps its
	// pin until the server, registering it, says how long it lives: the
	// server's default session lifetime.
	localPinTTL = 24 * time.Hour
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
	maxBackoff   time.Duration
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
// where the server has no stream (10 s by default). Where it has one, a
// lost stream is reconnected with backoff (WithMaxBackoff) and the bundle
// polled at each attempt.
func WithPollInterval(d time.Duration) Option { return func(c *config) { c.pollInterval = d } }

// WithGracePeriod sets how long an in-process provider may go without
// reaching the server (no stream line, no poll answered) before it reports
// PROVIDER_STALE (30 s by default); it reports PROVIDER_READY as soon as
// it reaches the server again.
func WithGracePeriod(d time.Duration) Option { return func(c *config) { c.gracePeriod = d } }

// WithMaxBackoff caps the waits between attempts to reach a server that
// does not answer (1 s by default, so a recovered server is found within
// a second): reconnecting a lost stream, retrying a failed Init, probing
// in remote mode with the circuit open. The first wait is 250 ms (or the
// cap, when lower), each next one doubles, and each is jittered (half to
// all of it), so providers restarted together spread out.
func WithMaxBackoff(d time.Duration) Option { return func(c *config) { c.maxBackoff = d } }

// newConfig applies opts over the environment and the defaults.
func newConfig(opts []Option) (config, error) {
	c := config{sessions: defaultSessions, pollInterval: defaultPollInterval, gracePeriod: defaultGracePeriod,
		maxBackoff: defaultMaxBackoff}
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
	if c.maxBackoff <= 0 {
		c.maxBackoff = defaultMaxBackoff
	}
	return c, nil
}

// backoff paces the attempts to reach a server that does not answer. The
// zero wait comes first only after a reset, so a lost stream that had
// worked is reconnected at once.
type backoff struct {
	max  time.Duration
	next time.Duration
}

// newBackoff returns a backoff capped at the configured maximum whose
// first wait is the shortest nonzero one.
func (c config) newBackoff() *backoff {
	b := &backoff{max: c.maxBackoff}
	b.restart()
	return b
}

// reset makes the next wait zero.
func (b *backoff) reset() { b.next = 0 }

// restart makes the next wait the shortest nonzero one.
func (b *backoff) restart() { b.next = min(minBackoff, b.max) }

// wait returns the next wait, between half of it and all of it, and
// doubles the one after, up to the cap.
func (b *backoff) wait() time.Duration {
	d := b.next
	if b.next = min(2*d, b.max); d == 0 {
		b.restart()
	}
	return d/2 + rand.N(d/2+1)
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
