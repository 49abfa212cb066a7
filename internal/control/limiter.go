package control

import (
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/internal/lru"
)

// The bounds of the limiter's own state and log.
const (
	// maxLimitedClients bounds the clients whose buckets are kept (about a
	// hundred bytes each). Past it the least recently seen client's bucket
	// is dropped, and that client starts again from a full burst: more
	// clients than this at once are bounded by the store's session cap.
	maxLimitedClients = 100_000
	// refusalLogInterval is how often refused new sessions are logged, as
	// one line with their count, so a flood does not flood the log.
	refusalLogInterval = time.Minute
)

// sessionLimiter limits how fast each client makes new sessions: a token
// bucket per client, holding up to burst sessions and refilled at rate a
// second. A nil *sessionLimiter limits nothing.
type sessionLimiter struct {
	logger *slog.Logger
	rate   float64
	burst  float64

	mu      sync.Mutex
	buckets *lru.Cache[string, *bucket]
	// refused counts the refusals since loggedAt, and last names the
	// client refused last, for the next log line.
	refused  int
	last     string
	loggedAt time.Time
}

// bucket is one client's new sessions: tokens available at time at.
type bucket struct {
	tokens float64
	at     time.Time
}

// newSessionLimiter returns the limiter of rate new sessions a second after
// a burst of burst (at least one), or nil when rate is not positive: no
// limit.
func newSessionLimiter(logger *slog.Logger, rate float64, burst int) *sessionLimiter {
	if rate <= 0 {
		return nil
	}
	return &sessionLimiter{logger: logger, rate: rate, burst: float64(max(burst, 1)),
		buckets: lru.New[string, *bucket](maxLimitedClients)}
}

// take takes one new session from client's bucket at now. When the bucket
// is empty it returns false and how long until it holds one again.
func (l *sessionLimiter) take(client string, now time.Time) (time.Duration, bool) {
	if l == nil {
		return 0, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets.Get(client)
	if !ok {
		b = &bucket{tokens: l.burst, at: now}
		l.buckets.Add(client, b)
	}
	if elapsed := now.Sub(b.at); elapsed > 0 {
		b.tokens = min(l.burst, b.tokens+elapsed.Seconds()*l.rate)
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	l.refused++
	l.last = client
	if now.Sub(l.loggedAt) >= refusalLogInterval {
		l.logger.Warn("new sessions refused to clients over their rate limit; their evaluations are served unpinned",
			"refused", l.refused, "last_client", l.last, "rate", l.rate, "burst", l.burst)
		l.refused, l.loggedAt = 0, now
	}
	return time.Duration((1 - b.tokens) / l.rate * float64(time.Second)), false
}

// give returns to client's bucket a session it took but did not make: the
// session existed, or the store refused it.
func (l *sessionLimiter) give(client string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.buckets.Get(client); ok {
		b.tokens = min(l.burst, b.tokens+1)
	}
}

// retryAfter is wait in whole seconds, at least one: what Retry-After says.
func retryAfter(wait time.Duration) int {
	return max(1, int(math.Ceil(wait.Seconds())))
}
