// Package client is a typed Go client for the Switchyard REST API: the
// runtime's status, the changes an operator makes, the audit log, sessions
// and evaluations. The switchyard command is built on it.
//
// Every change carries what the server requires of it (a Write): the
// police-mode phrase that confirms it (switchyard.SystemFlagPhrase and the
// others say which), a reason for the audit log, optionally the revision it
// is based on, and an idempotency key, so that sending it again, as the
// client itself does after a failure that leaves the outcome unknown,
// applies it at most once.
//
// A failure the server answers is a *switchyard.Error with the API's code,
// message and fields (switchyard.ErrorCode reads the code); a call that got
// no answer wraps ErrUnreachable.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard"
)

// The defaults of the options below, and the limits of what the client
// waits for and reads.
const (
	// defaultTimeout bounds one attempt of a call. An import uploads a file
	// of up to 10 MiB, which the server converts and stores in seconds.
	defaultTimeout = time.Minute
	// defaultAttempts is how many times a call is sent before its failure
	// is returned, when the server does not answer or answers that it
	// could not (503, 504).
	defaultAttempts = 3
	// maxRetryWait bounds the wait between two attempts, whatever the
	// server's Retry-After says: a client waiting longer should be told.
	maxRetryWait = 5 * time.Second
	// transportRetryWait is the wait after an attempt that got no answer.
	transportRetryWait = 500 * time.Millisecond
	// maxAnswerBytes bounds an answer read: an export of the largest
	// revision (10 MiB of imported flags and the runtime's own) fits.
	maxAnswerBytes = 64 << 20
)

// headerIdempotencyKey names a change, so that sending it again applies it
// at most once.
const headerIdempotencyKey = "Idempotency-Key"

// ErrUnreachable is wrapped by the error of a call that got no answer from
// the server: it could not connect, or the connection failed or timed out
// before an answer came. A change may have been applied all the same;
// sending it again with the same idempotency key applies it at most once.
var ErrUnreachable = errors.New("no answer from the server")

// unreachable is a call that got no answer from server.
type unreachable struct {
	server string
	err    error
}

func (e *unreachable) Error() string        { return "no answer from " + e.server + ": " + e.err.Error() }
func (e *unreachable) Unwrap() error        { return e.err }
func (e *unreachable) Is(target error) bool { return target == ErrUnreachable }

// Client calls the REST API of one Switchyard server (any replica). It is
// safe for concurrent use.
type Client struct {
	base     string
	token    string
	http     *http.Client
	timeout  time.Duration
	attempts int
}

// Option configures a Client.
type Option func(*Client)

// WithToken sends token as the bearer token of every call: a viewer's to
// read the status and the audit log, an admin's to make changes.
// Evaluations and sessions need none.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithHTTPClient sends calls with hc instead of http.DefaultClient, e.g.
// for a proxy or TLS settings.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithTimeout bounds each attempt of a call (one minute by default; a
// duration not above zero keeps the default).
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithAttempts sets how many times a call is sent when the server does
// not answer, or answers 503 UNAVAILABLE or 504 OUTCOME_UNKNOWN (3 by
// default; 1 never sends a call again). A change is sent again with the
// same idempotency key, so it is applied at most once.
func WithAttempts(n int) Option { return func(c *Client) { c.attempts = max(n, 1) } }

// New returns a client of the server at baseURL, e.g.
// http://127.0.0.1:8080.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want http://host:port or https://host:port", baseURL)
	}
	c := &Client{base: strings.TrimRight(baseURL, "/"), http: http.DefaultClient, timeout: defaultTimeout, attempts: defaultAttempts}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// NewIdempotencyKey returns a new random idempotency key. A Write without
// one is given a new key; a caller that may want to send the change again
// later (after an unknown outcome) makes the key itself and keeps it.
func NewIdempotencyKey() string { return rand.Text() }

// call is one request of the API.
type call struct {
	method, path string
	// body is sent as JSON when set.
	body any
	// ifMatch, when set, is the revision a change is based on.
	ifMatch int64
	// key is the change's idempotency key.
	key string
	// answers lists statuses besides 200 whose body is the answer, not an
	// error (GET /readyz answers 503 with its status).
	answers []int
}

// answer is what the server answered a call.
type answer struct {
	status int
	header http.Header
}

// do sends cl, decodes the answer into out and returns its status and
// headers. It sends cl again, unchanged (a change with the same
// idempotency key), when the server does not answer or answers 503 or
// 504, up to the client's attempts, waiting as the server's Retry-After
// says. A failure the server answers in the API's error shape is a
// *switchyard.Error.
func (c *Client) do(ctx context.Context, cl call, out any) (answer, error) {
	var body []byte
	if cl.body != nil {
		var err error
		if body, err = json.Marshal(cl.body); err != nil {
			return answer{}, fmt.Errorf("encode the request: %w", err)
		}
	}
	for attempt := 1; ; attempt++ {
		a, err := c.send(ctx, cl, body, out)
		wait, again := retryable(a, err)
		if !again || attempt == c.attempts {
			return a, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return a, err
		case <-t.C:
		}
	}
}

// retryable says whether an attempt that answered a and failed with err
// may be sent again, and after how long.
func retryable(a answer, err error) (time.Duration, bool) {
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, ErrUnreachable):
		return transportRetryWait, true
	case a.status == http.StatusServiceUnavailable, a.status == http.StatusGatewayTimeout:
		seconds, convErr := strconv.Atoi(a.header.Get("Retry-After"))
		if convErr != nil || seconds < 0 {
			return transportRetryWait, true
		}
		return min(time.Duration(seconds)*time.Second, maxRetryWait), true
	}
	return 0, false
}

// send makes one attempt of cl, with body, within the client's timeout.
func (c *Client) send(ctx context.Context, cl call, body []byte, out any) (answer, error) {
	if err := ctx.Err(); err != nil {
		return answer{}, err
	}
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, cl.method, c.base+cl.path, reader)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: %w", cl.method, cl.path, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cl.ifMatch > 0 {
		req.Header.Set("If-Match", `"`+strconv.FormatInt(cl.ifMatch, 10)+`"`)
	}
	if cl.key != "" {
		req.Header.Set(headerIdempotencyKey, cl.key)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return answer{}, c.noAnswer(ctx, err)
	}
	defer res.Body.Close()
	a := answer{status: res.StatusCode, header: res.Header}
	data, err := io.ReadAll(io.LimitReader(res.Body, maxAnswerBytes+1))
	switch {
	case err != nil:
		return a, c.noAnswer(ctx, err)
	case len(data) > maxAnswerBytes:
		return a, fmt.Errorf("%s %s: the answer is larger than %d bytes", cl.method, cl.path, maxAnswerBytes)
	}
	if res.StatusCode != http.StatusOK && !slices.Contains(cl.answers, res.StatusCode) {
		return a, apiError(cl, res, data)
	}
	if out == nil {
		return a, nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return a, fmt.Errorf("%s %s answered %s with something other than the expected JSON: %w", cl.method, cl.path, res.Status, err)
	}
	return a, nil
}

// noAnswer is the error of an attempt that got no (whole) answer: the
// caller's own cancellation as it is, anything else unreachable.
func (c *Client) noAnswer(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	return &unreachable{server: c.base, err: err}
}

// apiError reads a failure: the API's {"error": {"code", "message",
// ...fields}}, or, from something else in the way (a proxy), a code
// chosen by the status.
func apiError(cl call, res *http.Response, data []byte) error {
	var e struct {
		Error map[string]any `json:"error"`
	}
	if json.Unmarshal(data, &e) == nil {
		code, _ := e.Error["code"].(string)
		message, _ := e.Error["message"].(string)
		if code != "" {
			fields := e.Error
			delete(fields, "code")
			delete(fields, "message")
			if len(fields) == 0 {
				fields = nil
			}
			return &switchyard.Error{Code: switchyard.Code(code), Message: message, Fields: fields}
		}
	}
	code := switchyard.CodeInternal
	switch res.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		code = switchyard.CodeUnavailable
	case http.StatusUnauthorized:
		code = switchyard.CodeUnauthorized
	case http.StatusForbidden:
		code = switchyard.CodeForbidden
	case http.StatusNotFound:
		code = switchyard.CodeNotFound
	}
	return switchyard.Errorf(code, "%s %s answered %s: %.200s", cl.method, cl.path, res.Status, bytes.TrimSpace(data))
}
