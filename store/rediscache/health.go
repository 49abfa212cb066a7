package rediscache

import (
	"sync"
	"sync/atomic"
	"time"
)

// Health says whether Redis answered the last call and, when it did not,
// why. The server's /readyz reports it: a Redis outage degrades the
// service (reads go to the store behind the cache) but does not stop it.
type Health struct {
	// OK is false from the first failed Redis call of an outage until a
	// call succeeds again.
	OK bool `json:"ok"`
	// Error is the failure that began the outage; empty when OK.
	Error string `json:"error,omitempty"`
	// Since is when the current state began (zero before the first outage).
	Since time.Time `json:"since,omitzero"`
	// Failures counts failed Redis calls since the cache was created.
	Failures int64 `json:"failures"`
	// Outages counts transitions from reachable to unreachable.
	Outages int64 `json:"outages"`
}

// health tracks Redis reachability. A failure opens a short window during
// which the read path skips Redis altogether, so an outage costs one
// deadline per window, not one per read; the invalidation loop keeps
// probing and closes the window as soon as Redis answers.
type health struct {
	// retryAt is the Unix nanosecond time before which reads skip Redis;
	// 0 while Redis is up. down mirrors err != nil. Both are read on every
	// cache miss, so they are atomic; they change only under mu.
	retryAt  atomic.Int64
	down     atomic.Bool
	failures atomic.Int64

	mu      sync.Mutex
	err     error
	since   time.Time
	outages int64
}

// usable reports whether a read should try Redis now.
func (h *health) usable(now time.Time) bool {
	r := h.retryAt.Load()
	return r == 0 || now.UnixNano() >= r
}

// fail records a failed call and reports whether it began an outage, so
// the caller logs once per outage.
func (h *health) fail(err error, now time.Time, backoff time.Duration) bool {
	h.failures.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.retryAt.Store(now.Add(backoff).UnixNano())
	if h.err != nil {
		return false
	}
	h.err, h.since = err, now
	h.outages++
	h.down.Store(true)
	return true
}

// ok records a successful call and returns how long the outage it ended
// lasted, or 0 when Redis was already up.
func (h *health) ok(now time.Time) time.Duration {
	if !h.down.Load() {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		return 0
	}
	down := now.Sub(h.since)
	h.err, h.since = nil, now
	h.retryAt.Store(0)
	h.down.Store(false)
	return max(down, time.Nanosecond)
}

// snapshot returns the current Health.
func (h *health) snapshot() Health {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := Health{OK: h.err == nil, Since: h.since, Failures: h.failures.Load(), Outages: h.outages}
	if h.err != nil {
		s.Error = h.err.Error()
	}
	return s
}

// outageCount returns how many outages began so far; the invalidation loop
// compares it between polls to know that it must resync.
func (h *health) outageCount() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.outages
}
