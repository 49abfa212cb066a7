package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strconv"
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

// remote evaluates flag with one OFREP call. A success without a value is
// the caller's default (OFREP's code default); 429 makes every call fail
// fast until its Retry-After has passed.
func (p *Provider) remote(ctx context.Context, flag string, flatCtx openfeature.FlattenedContext) evaluator.Result {
	if until := p.retryUntil.Load(); until != 0 {
		if time.Now().UnixNano() < until {
			return generalError(flag, fmt.Errorf("rate limited by the server until %s", time.Unix(0, until).UTC().Format(time.RFC3339)))
		}
		p.retryUntil.CompareAndSwap(until, 0)
	}
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
		return generalError(flag, fmt.Errorf("encode the evaluation context: %w", err))
	}
	path := "/ofrep/v1/evaluate/flags/" + url.PathEscape(flag)
	res, err := p.call(ctx, http.MethodPost, path, body, nil)
	if err != nil {
		return generalError(flag, err)
	}
	switch res.status {
	case http.StatusOK, http.StatusBadRequest, http.StatusNotFound:
	case http.StatusTooManyRequests:
		if d, ok := retryAfter(res.header.Get("Retry-After")); ok {
			p.retryUntil.Store(time.Now().Add(d).UnixNano())
		}
		return generalError(flag, unexpected(http.MethodPost, path, res))
	default:
		return generalError(flag, unexpected(http.MethodPost, path, res))
	}
	var a ofrepAnswer
	if err := json.Unmarshal(res.body, &a); err != nil {
		return generalError(flag, fmt.Errorf("POST %s: unreadable answer %d: %w", path, res.status, err))
	}
	if res.status != http.StatusOK {
		code := evaluator.ResolutionError(a.ErrorCode)
		if code == "" {
			code = evaluator.General
		}
		return evaluator.Result{Key: flag, Reason: evaluator.ReasonError, ErrorCode: code, ErrorMessage: a.ErrorDetails}
	}
	intMetadata(a.Metadata)
	return evaluator.Result{Key: flag, Value: a.Value, Variant: a.Variant, Reason: evaluator.Reason(a.Reason), Metadata: a.Metadata}
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
