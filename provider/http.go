package provider

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
)

// maxResponseBytes bounds a response body the provider reads; a bundle of
// a large flag set is the biggest.
const maxResponseBytes = 64 << 20

// statusError is an answer other than the one a call expects.
type statusError struct {
	method, path string
	status       int
	body         string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: the server answered %d %s", e.method, e.path, e.status, e.body)
}

// response is a whole HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// call sends one request with the provider's headers and token and reads
// the whole answer, all within the provider's timeout.
func (p *Provider) call(ctx context.Context, method, path string, body []byte, header http.Header) (response, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.base+path, rd)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	p.setHeaders(req)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := p.cfg.client.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxResponseBytes))
	if err != nil {
		return response{}, fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: data}, nil
}

// setHeaders adds the configured headers and the bearer token.
func (p *Provider) setHeaders(req *http.Request) {
	for k, v := range p.cfg.headers {
		req.Header[k] = v
	}
	if p.cfg.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.cfg.token)
	}
}

// unexpected builds the error of an answer a call did not expect.
func unexpected(method, path string, res response) error {
	body := string(res.body)
	if len(body) > 200 {
		body = body[:200] + "…"
	}
	return &statusError{method: method, path: path, status: res.status, body: body}
}
