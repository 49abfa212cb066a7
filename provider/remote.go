package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-dev/switchyard/evaluator"
)

// ofrepAnswer is an OFREP single-flag answer, success or failure.
type ofrepAnswer struct {
	Value        any            `json:"value"`
	Reason       string         `json:"reason"`
	Variant      string         `json:"variant"`
	Metadata     map[string]any `json:"metadata"`
	ErrorCode    string         `json:"errorCode"`
	ErrorDetails string         `json:"errorDetails"`
}

// circuit stops a remote provider from asking a server that does not
// answer. After circuitFailures evaluations in a row failed (no answer
// within the timeout, or a 5xx) it opens: evaluations fail at once, but
// one, after a backoff, which asks the server; its answer closes the
// circuit, its failure doubles the backoff. A hung server so costs one
// caller a timeout per backoff interval, not every caller every time.
type circuit struct {
	failures atomic.Int64
	// openUntil is when the next evaluation may ask the server (Unix
	// nanoseconds); 0 while the circuit is closed.
	openUntil atomic.Int64
	// probing is set while one evaluation asks the server with the
	// circuit open.
	probing atomic.Bool
	// mu guards backoff, which paces the asks while open.
	mu      sync.Mutex
	backoff *backoff
}

// trip opens the circuit at now, or, when it is open, moves its next ask a
// longer backoff away; it reports whether it opened it.
func (c *circuit) trip(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	opened := c.openUntil.Load() == 0
	c.openUntil.Store(now.Add(c.backoff.wait()).UnixNano())
	return opened
}

// close closes the circuit and reports whether it was open.
func (c *circuit) close() bool {
	c.failures.Store(0)
	if c.openUntil.Load() == 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.backoff.restart()
	return c.openUntil.Swap(0) != 0
}

// remote evaluates flag with one OFREP call. A success without a value is
// the caller's default (OFREP's code default); 429 makes every call fail
// fast until its Retry-After has passed. Calls that fail in a row open the
// circuit: PROVIDER_ERROR, and evaluations fail fast but for one probe a
// backoff apart; the first answer closes it, with PROVIDER_READY.
func (p *Provider) remote(ctx context.Context, flag string, flatCtx openfeature.FlattenedContext) evaluator.Result {
	if until := p.retryUntil.Load(); until != 0 {
		if time.Now().UnixNano() < until {
			return generalError(flag, fmt.Errorf("rate limited by the server until %s", time.Unix(0, until).UTC().Format(time.RFC3339)))
		}
		p.retryUntil.CompareAndSwap(until, 0)
	}
	if until := p.circuit.openUntil.Load(); until != 0 {
		if time.Now().UnixNano() < until || !p.circuit.probing.CompareAndSwap(false, true) {
			if !p.answered.Load() {
				return notReady(flag)
			}
			return generalError(flag, fmt.Errorf("the server did not answer the last calls; it is asked again from %s",
				time.Unix(0, until).UTC().Format(time.RFC3339Nano)))
		}
		defer p.circuit.probing.Store(false)
	}
	r, answered := p.ask(ctx, flag, flatCtx)
	if !answered {
		if p.circuit.failures.Add(1) >= circuitFailures && p.circuit.trip(time.Now()) {
			p.emit(openfeature.ProviderError, openfeature.ProviderEventDetails{ErrorCode: openfeature.GeneralCode,
				Message: fmt.Sprintf("switchyard does not answer (%s); evaluations fail fast until it does", r.ErrorMessage)})
		}
		return r
	}
	p.answered.Store(true)
	if p.circuit.close() {
		p.emit(openfeature.ProviderReady, openfeature.ProviderEventDetails{Message: "switchyard answers again"})
	}
	return r
}

// ask makes one OFREP call for flag; answered is false when the server
// did not answer within the timeout or answered with a 5xx.
func (p *Provider) ask(ctx context.Context, flag string, flatCtx openfeature.FlattenedContext) (r evaluator.Result, answered bool) {
	evalCtx := map[string]any(flatCtx)
	if id, ok := evalCtx[SessionIDKey]; ok && id == "" {
		// An empty session ID means no session (the guards send it to
		// read the live value); the server would refuse it as invalid.
		evalCtx = maps.Clone(evalCtx)
		delete(evalCtx, SessionIDKey)
	}
	if evalCtx == nil {
		evalCtx = map[string]any{}
	}
	body, err := json.Marshal(map[string]any{"context": evalCtx})
	if err != nil {
		return generalError(flag, fmt.Errorf("encode the evaluation context: %w", err)), true
	}
	path := "/ofrep/v1/evaluate/flags/" + url.PathEscape(flag)
	res, err := p.call(ctx, http.MethodPost, path, body, nil)
	if err != nil {
		return generalError(flag, err), false
	}
	switch res.status {
	case http.StatusOK, http.StatusBadRequest, http.StatusNotFound:
	case http.StatusTooManyRequests:
		if d, ok := retryAfter(res.header.Get("Retry-After")); ok {
			p.retryUntil.Store(time.Now().Add(d).UnixNano())
		}
		return generalError(flag, unexpected(http.MethodPost, path, res)), true
	default:
		return generalError(flag, unexpected(http.MethodPost, path, res)), res.status < http.StatusInternalServerError
	}
	var a ofrepAnswer
	if err := json.Unmarshal(res.body, &a); err != nil {
		return generalError(flag, fmt.Errorf("POST %s: unreadable answer %d: %w", path, res.status, err)), true
	}
	if res.status != http.StatusOK {
		code := evaluator.ResolutionError(a.ErrorCode)
		if code == "" {
			code = evaluator.General
		}
		return evaluator.Result{Key: flag, Reason: evaluator.ReasonError, ErrorCode: code, ErrorMessage: a.ErrorDetails}, true
	}
	intMetadata(a.Metadata)
	return evaluator.Result{Key: flag, Value: a.Value, Variant: a.Variant, Reason: evaluator.Reason(a.Reason), Metadata: a.Metadata}, true
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(h string) (time.Duration, bool) {
	if s, err := strconv.Atoi(h); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return time.Until(t), true
	}
	return 0, false
}

// probe checks at Init that the server answers OFREP and accepts the token.
func (p *Provider) probe(ctx context.Context) error {
	const path = "/ofrep/v1/evaluate/flags"
	res, err := p.call(ctx, http.MethodPost, path, []byte(`{"context":{}}`), nil)
	if err != nil {
		return err
	}
	if res.status != http.StatusOK {
		return unexpected(http.MethodPost, path, res)
	}
	return nil
}
