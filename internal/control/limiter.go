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
	*tokenBuckets

	mu sync.Mutex
	// refused counts the refusals since loggedAt, and last names the
	// client refused last, for the next log line.
	refused  int
	last     string
	loggedAt time.Time
}

// newSessionLimiter returns the limiter of rate new sessions a second after
// a burst of burst (at least one), or nil when rate is not positive: no
// limit.
func newSessionLimiter(logger *slog.Logger, rate float64, burst int) *sessionLimiter {
	if rate <= 0 {
		return nil
	}
	return &sessionLimiter{logger: logger, tokenBuckets: newTokenBuckets(rate, float64(max(burst, 1)), maxLimitedClients)}
}

// take takes one new session from client's bucket at now. When the bucket
// is empty it returns false and how long until it holds one again.
func (l *sessionLimiter) take(client string, now time.Time) (time.Duration, bool) {
	if l == nil {
		return 0, true
	}
	wait, ok := l.tokenBuckets.take(client, now)
	if ok {
		return 0, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refused++
	l.last = client
	if now.Sub(l.loggedAt) >= refusalLogInterval {
		l.logger.Warn("new sessions refused to clients over their rate limit; their evaluations are served unpinned",
			"refused", l.refused, "last_client", l.last, "rate", l.rate, "burst", l.burst)
		l.refused, l.loggedAt = 0, now
	}
	return wait, false
}

// give returns to client's bucket a session it took but did not make: the
// session existed, or the store refused it.
func (l *sessionLimiter) give(client string) {
	if l != nil {
		l.tokenBuckets.give(client)
	}
}

// tokenBuckets is a token bucket for each key, a sender of requests: burst
// tokens at once, then rate more a second. Past max keys, the one used
// least recently is forgotten, and starts again with a full bucket.
type tokenBuckets struct {
	rate, burst float64

	mu      sync.Mutex
	buckets *lru.Cache[string, bucket]
}

// bucket is one key's tokens at a time.
type bucket struct {
	tokens float64
	at     time.Time
}

func newTokenBuckets(rate, burst float64, max int) *tokenBuckets {
	return &tokenBuckets{rate: rate, burst: burst, buckets: lru.New[string, bucket](max)}
}

// level returns key's bucket refilled to now; t.mu must be held.
func (t *tokenBuckets) level(key string, now time.Time) bucket {
	b, ok := t.buckets.Get(key)
	if !ok {
		return bucket{tokens: t.burst, at: now}
	}
	if elapsed := now.Sub(b.at); elapsed > 0 {
		b.tokens = min(t.burst, b.tokens+elapsed.Seconds()*t.rate)
		b.at = now
	}
	return b
}

// until returns how long a bucket holding tokens waits for a whole one.
func (t *tokenBuckets) until(tokens float64) time.Duration {
	return time.Duration((1 - tokens) / t.rate * float64(time.Second))
}

// wait returns how long key must wait at now for a token: 0 while it has
// one. It takes nothing.
func (t *tokenBuckets) wait(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if b := t.level(key, now); b.tokens < 1 {
		return t.until(b.tokens)
	}
	return 0
}

// take takes a token from key's bucket at now, or returns false and how
// long until it holds one.
func (t *tokenBuckets) take(key string, now time.Time) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.level(key, now)
	if b.tokens < 1 {
		t.buckets.Add(key, b)
		return t.until(b.tokens), false
	}
	b.tokens--
	t.buckets.Add(key, b)
	return 0, true
}

// give returns a token to key's bucket.
func (t *tokenBuckets) give(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if b, ok := t.buckets.Get(key); ok {
		b.tokens = min(t.burst, b.tokens+1)
		t.buckets.Add(key, b)
	}
}

// retryAfter is wait in whole seconds, at least one: what Retry-After says.
func retryAfter(wait time.Duration) int {
	return max(1, int(math.Ceil(wait.Seconds())))
}
