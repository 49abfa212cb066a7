package server

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/telemetry"
)

// discardWriter is a reusable http.ResponseWriter, so the benchmark
// measures the handler and not the recorder.
type discardWriter struct {
	header http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header { return w.header }

func (w *discardWriter) Write(b []byte) (int, error) {
	w.n += len(b)
	return len(b), nil
}

func (w *discardWriter) WriteHeader(status int) { w.status = status }

// BenchmarkOFREPEvaluate measures one single-flag OFREP evaluation through
// the full handler (routing, middleware, decoding, evaluation, encoding),
// live and pinned to a session, without metrics and with them (counted by
// the core and the transport; tracing off), which must cost no allocation.
func BenchmarkOFREPEvaluate(b *testing.B) {
	for _, bm := range []struct {
		name, key, body string
		metrics         bool
	}{
		{"live", "module.mastery", `{"context":{"targetingKey":"user-1","plan":"pro"}}`, false},
		{"pinned", "module.mastery", `{"context":{"targetingKey":"user-1","sessionId":"bench-session"}}`, false},
		{"live-metrics", "module.mastery", `{"context":{"targetingKey":"user-1","plan":"pro"}}`, true},
		{"pinned-metrics", "module.mastery", `{"context":{"targetingKey":"user-1","sessionId":"bench-session"}}`, true},
	} {
		b.Run(bm.name, func(b *testing.B) {
			h := newHarness(b, func(c *testConfig) {
				c.CacheTTL = 1 << 40
				if bm.metrics {
					m := telemetry.New(telemetry.Options{FlagLabels: telemetry.DefaultFlagLabels})
					c.Observer, c.Telemetry.Observer, c.Telemetry.Metrics = m, m, m.Handler()
				}
			})
			body := strings.NewReader(bm.body)
			req, err := http.NewRequest("POST", "http://switchyard.test/ofrep/v1/evaluate/flags/"+bm.key, nil)
			if err != nil {
				b.Fatal(err)
			}
			// net/http sets the peer's address, which names the client of
			// a session.
			req.RemoteAddr = "192.0.2.1:1234"
			w := &discardWriter{header: http.Header{}}
			serveOnce := func() {
				body.Reset(bm.body)
				req.Body = io.NopCloser(body)
				clear(w.header)
				w.status, w.n = 0, 0
				h.handler.ServeHTTP(w, req)
			}
			serveOnce()
			if w.status != http.StatusOK {
				b.Fatalf("status %d", w.status)
			}
			b.ReportAllocs()
			for b.Loop() {
				serveOnce()
			}
		})
	}
}

// TestMetricsCostNoAllocation: counting an evaluation in the core and its
// request in the transport allocates nothing; with tracing off, neither
// does recording it on the request's span.
func TestMetricsCostNoAllocation(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes the request buffers' pool drop buffers at random, so allocation counts vary")
	}
	allocs := func(metrics bool) float64 {
		h := newHarness(t, func(c *testConfig) {
			if metrics {
				m := telemetry.New(telemetry.Options{FlagLabels: telemetry.DefaultFlagLabels})
				c.Observer, c.Telemetry.Observer, c.Telemetry.Metrics = m, m, m.Handler()
			}
		})
		const body = `{"context":{"targetingKey":"user-1"}}`
		r := strings.NewReader(body)
		req, err := http.NewRequest("POST", "http://switchyard.test/ofrep/v1/evaluate/flags/module.mastery", nil)
		if err != nil {
			t.Fatal(err)
		}
		w := &discardWriter{header: http.Header{}}
		return testing.AllocsPerRun(200, func() {
			r.Reset(body)
			req.Body = io.NopCloser(r)
			clear(w.header)
			h.handler.ServeHTTP(w, req)
			if w.status != http.StatusOK {
				t.Fatalf("status %d", w.status)
			}
		})
	}
	without, with := allocs(false), allocs(true)
	if with > without {
		t.Errorf("an evaluation allocates %v times with metrics, %v without", with, without)
	}
}
