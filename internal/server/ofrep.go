package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/internal/control"
)

// buffers recycles request and response bodies, so a steady stream of
// evaluations does not allocate a buffer per request.
var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooledBuffer keeps one oversized request from pinning its buffer.
const maxPooledBuffer = 64 << 10

// getBuffer returns an empty pooled buffer; hand what it grew into back
// to putBuffer.
func getBuffer() *[]byte { return buffers.Get().(*[]byte) }

func putBuffer(p *[]byte, grown []byte) {
	if cap(grown) <= maxPooledBuffer {
		*p = grown[:0]
		buffers.Put(p)
	}
}

// readAll appends everything r yields to b, as io.ReadAll does into a
// fresh slice.
func readAll(b []byte, r io.Reader) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// readEvaluationContext decodes an OFREP request body. Unknown top-level
// fields are ignored, as OFREP clients may send more than the protocol
// needs; the context, when present, must be an object.
func readEvaluationContext(body io.Reader) (map[string]any, *ofrepError) {
	buf := getBuffer()
	data, err := readAll(*buf, body)
	defer putBuffer(buf, data)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, bodyTooLarge(tooLarge.Limit)
		}
		return nil, parseError("the request body could not be read: " + err.Error())
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, parseError(`the request body is empty; send {"context": {...}}`)
	}
	// Decoding into an interface takes encoding/json's fast path, which
	// allocates a third of what decoding into a typed struct does.
	var decoded any
	if err := json.Unmarshal(data, &decoded); err != nil {
		return nil, parseError("the request body is not valid JSON: " + strings.TrimPrefix(err.Error(), "json: "))
	}
	req, ok := decoded.(map[string]any)
	if !ok {
		return nil, parseError(`the request body must be a JSON object like {"context": {...}}`)
	}
	evalCtx, ok := req["context"].(map[string]any)
	if !ok && req["context"] != nil {
		return nil, invalidContext("context must be an object")
	}
	if id, ok := evalCtx[switchyard.SessionIDAttribute]; ok {
		s, isString := id.(string)
		if !isString {
			return nil, invalidContext(switchyard.SessionIDAttribute + " must be a string")
		}
		if err := switchyard.ValidateSessionID(s); err != nil {
			return nil, invalidContext(switchyard.SessionIDAttribute + ": " + switchyard.AsError(err).Message)
		}
	}
	return evalCtx, nil
}

// evaluation returns the flag set a request is evaluated against: the
// live one, or the pinned one of the session the context names. Only a
// session needs to know who asks (its client's limit of new sessions).
func (s *server) evaluation(c *gin.Context, evalCtx map[string]any) (control.Evaluation, error) {
	id, _ := evalCtx[switchyard.SessionIDAttribute].(string)
	var client string
	if id != "" {
		client = s.client(c)
	}
	return s.core.Evaluation(c.Request.Context(), client, id)
}

// evaluateFlag serves POST /ofrep/v1/evaluate/flags/{key}.
func (s *server) evaluateFlag(c *gin.Context) {
	key := c.Param("key")
	evalCtx, oerr := readEvaluationContext(c.Request.Body)
	if oerr != nil {
		s.ofrepFailure(c, key, oerr)
		return
	}
	ev, err := s.evaluation(c, evalCtx)
	if err != nil {
		s.ofrepServerError(c, err)
		return
	}
	r := ev.Result(key, evalCtx)
	traceEvaluation(trace.SpanFromContext(c.Request.Context()), r, evalCtx, ev.Set.Revision())
	switch r.ErrorCode {
	case "":
		s.writeOFREP(c, http.StatusOK, func(b []byte) ([]byte, error) { return appendSuccess(b, r) })
	default:
		s.ofrepFailure(c, key, &ofrepError{code: r.ErrorCode, details: r.ErrorMessage})
	}
}

// evaluateFlags serves POST /ofrep/v1/evaluate/flags: every flag, each a
// success or an error item, with a weak ETag of the answers (bulkETag), so
// a client polling or refetching with If-None-Match gets 304 until
// something it would see changes. The answer advertises the OFREP event
// stream (eventStreams, ADR-0008), except to a pinned session, whose
// answers never change. A refetch an event triggered names the
// configuration the event announced (flagConfigEtag): the answer waits a
// moment for this replica to serve it, when it does not yet.
func (s *server) evaluateFlags(c *gin.Context) {
	evalCtx, oerr := readEvaluationContext(c.Request.Body)
	if oerr != nil {
		s.ofrepFailure(c, "", oerr)
		return
	}
	if n, mode, ok := parseConfigETag(c.Query("flagConfigEtag")); ok {
		s.core.Await(c.Request.Context(), mode, n, catchUpTimeout)
	}
	ev, err := s.evaluation(c, evalCtx)
	if err != nil {
		s.ofrepServerError(c, err)
		return
	}
	streams := ""
	if ev.Set.Pinned() != ev.Set {
		streams = s.eventStreamURI(c)
	}
	buf := getBuffer()
	b, answers, err := appendBulk(*buf, ev, evalCtx, streams, trace.SpanFromContext(c.Request.Context()))
	if err != nil {
		putBuffer(buf, *buf)
		s.ofrepServerError(c, err)
		return
	}
	defer putBuffer(buf, b)
	etag := bulkETag(b[answers[0]:answers[1]])
	c.Header("ETag", etag)
	if etagMatches(c.GetHeader("If-None-Match"), etag) {
		c.Status(http.StatusNotModified)
		return
	}
	writeJSON(c, http.StatusOK, b)
}

// ofrepInactivityDelaySec is the inactivity delay a bulk evaluation
// advertises with its event stream: a provider whose application is
// inactive (a hidden tab) this long closes the stream, and evaluates
// afresh when it is active again. OFREP's default, said outright.
const ofrepInactivityDelaySec = 120

// eventStreamURI is the path of the OFREP event stream a bulk evaluation
// advertises: with client tokens required, it carries the stream key of
// the token the request presented, since a browser's EventSource cannot
// send it.
func (s *server) eventStreamURI(c *gin.Context) string {
	if v, ok := c.Get(credentialKey); ok && s.requireClientToken {
		return ofrepEventsPath + "?" + url.Values{streamKeyParam: {streamKey(v.(credential))}}.Encode()
	}
	return ofrepEventsPath
}

// appendBulk appends the bulk evaluation of every flag in ev, the first
// of them recorded on span: the answers, the event stream to follow (none
// when streamURI is empty) and the revision evaluated, which the answers
// leave out of their metadata, so that an answer a revision does not
// change is the same bytes in both (an OFREP web provider compares them to
// tell its application what changed). answers are the offsets of the
// answers in the result.
func appendBulk(b []byte, ev control.Evaluation, evalCtx map[string]any, streamURI string, span trace.Span) (_ []byte, answers [2]int, _ error) {
	b = append(b, `{"flags":[`...)
	answers[0] = len(b)
	for i, key := range ev.Set.Keys() {
		if i > 0 {
			b = append(b, ',')
		}
		r := ev.Result(key, evalCtx)
		if i < maxEvaluationEvents {
			traceEvaluation(span, r, evalCtx, ev.Set.Revision())
		}
		var err error
		if b, err = appendResult(b, r, evaluator.MetadataRevision); err != nil {
			return nil, answers, err
		}
	}
	answers[1] = len(b)
	b = append(b, ']')
	if streamURI != "" {
		b = append(b, `,"eventStreams":[{"type":"sse","endpoint":{"requestUri":`...)
		b = appendString(b, streamURI)
		b = append(b, `},"inactivityDelaySec":`...)
		b = appendInt(b, ofrepInactivityDelaySec)
		b = append(b, "}]"...)
	}
	b = append(b, `,"metadata":{"pinned":`...)
	b = appendBool(b, ev.Set.Pinned() == ev.Set)
	b = append(b, `,"revision":`...)
	b = appendInt(b, ev.Set.Revision())
	return append(b, "}}"...), answers, nil
}

// writeOFREP writes the body fill appends, through a pooled buffer.
func (s *server) writeOFREP(c *gin.Context, status int, fill func([]byte) ([]byte, error)) {
	buf := getBuffer()
	b, err := fill(*buf)
	if err != nil {
		putBuffer(buf, *buf)
		s.ofrepServerError(c, err)
		return
	}
	writeJSON(c, status, b)
	putBuffer(buf, b)
}

// jsonContentType is shared by every OFREP answer; net/http never modifies
// header values, so one slice serves all.
var jsonContentType = []string{"application/json"}

// writeJSON writes an encoded JSON answer. net/http adds Content-Length for
// an answer this small, so only the type is set.
func writeJSON(c *gin.Context, status int, b []byte) {
	c.Writer.Header()["Content-Type"] = jsonContentType
	c.Writer.WriteHeader(status)
	if _, err := c.Writer.Write(b); err != nil {
		// The client went away; there is no one left to answer.
		c.Abort()
	}
}
