package control

import (
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard"
)

// Every refused attempt to change the runtime is a row of the append-only
// audit log, and every refused token a line of the service log, so each
// sender (an operator, or the address of a client with no valid token) has
// an allowance of refusals: RefusalBurst at once, then one more every
// RefusalInterval. Once it is spent, the sender's requests are answered
// RATE_LIMITED before anything else is checked, and counted, not recorded
// one by one: a flood costs the logs at most the allowance.
const (
	RefusalBurst    = 10
	RefusalInterval = 30 * time.Second
	// refusalSenders bounds the senders whose allowance is tracked; the
	// one refused least recently is forgotten first, and starts again
	// with a whole allowance.
	refusalSenders = 10_000
	// rateLimitedLogEvery is how often rate-limited requests are logged:
	// the first, then every this many.
	rateLimitedLogEvery = 100
)

// refusals tracks each sender's allowance of refusals.
type refusals struct {
	*tokenBuckets
	// limited counts the requests answered RATE_LIMITED.
	limited atomic.Int64
}

func newRefusals() *refusals {
	return &refusals{tokenBuckets: newTokenBuckets(1/RefusalInterval.Seconds(), RefusalBurst, refusalSenders)}
}

// spend takes a refusal from sender's allowance at now, if it has one
// left, and reports whether it had.
func (r *refusals) spend(sender string, now time.Time) bool {
	_, ok := r.take(sender, now)
	return ok
}

// rateLimited counts and returns the RATE_LIMITED answer to sender, which
// must wait before it may be refused again. The first such answer is
// logged, then every rateLimitedLogEvery-th, so the log says a flood is
// held back without growing with it.
func (c *Core) rateLimited(sender string) error {
	wait := c.refusals.wait(sender, c.now())
	n := c.refusals.limited.Add(1)
	if n == 1 || n%rateLimitedLogEvery == 0 {
		c.logger.Warn("refused requests are rate-limited: answered 429, not recorded", "sender", sender, "rate_limited", n)
	}
	seconds := retryAfter(wait)
	return switchyard.Errorf(switchyard.CodeRateLimited,
		"%s was refused too often; nothing was checked or recorded: try again in %d seconds", sender, seconds).
		With(switchyard.RetryAfterField, seconds)
}

// Refused spends a refusal from sender's allowance for a request a surface
// refused itself, before any change was tried: one with no valid token,
// sender naming its client's address. It returns nil while the allowance
// lasts, and the surface logs the refusal; past it, the RATE_LIMITED error
// to answer instead, and the surface logs nothing.
func (c *Core) Refused(sender string) error {
	if c.refusals.spend(sender, c.now()) {
		return nil
	}
	return c.rateLimited(sender)
}
