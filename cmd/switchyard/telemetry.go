package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-dev/switchyard/internal/telemetry"
)

// shutdownTracingTimeout bounds sending the spans still buffered at exit.
const shutdownTracingTimeout = 5 * time.Second

// startTracing starts the tracer provider OTEL_* asks for; nil and a stop
// that does nothing when tracing is off.
func startTracing(ctx context.Context, getenv func(string) string, logger *slog.Logger) (trace.TracerProvider, func(), error) {
	tp, err := telemetry.Tracing(ctx, getenv, logger)
	if err != nil || tp == nil {
		return nil, func() {}, err
	}
	logger.Info("tracing on: exporting spans over OTLP/HTTP")
	return tp, func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTracingTimeout)
		defer cancel()
		if err := tp.Shutdown(ctx); err != nil {
			logger.Warn("send the last spans", "err", err)
		}
	}, nil
}

// metricsTimeout bounds a request to the metrics address; a CPU profile
// runs 30 seconds unless asked otherwise.
const metricsTimeout = 2 * time.Minute

// serveMetrics serves GET /metrics on --metrics-addr, and /debug/pprof/
// there too with --pprof, until the function it returns is called.
func serveMetrics(cfg *config, metrics http.Handler, logger *slog.Logger, stdout io.Writer) (func(), error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	ln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s for metrics: %w", cfg.MetricsAddr, err)
	}
	srv := newHTTPServer(mux, metricsTimeout)
	srv.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	fmt.Fprintf(stdout, "metrics on http://%s/metrics\n", ln.Addr())
	logger.Info("serving metrics", "addr", ln.Addr().String(), "pprof", cfg.Pprof)
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			logger.Error("serve metrics", "err", err)
		}
	}()
	return func() { _ = srv.Close() }, nil
}

// redisLogger writes go-redis' own log lines (a pub/sub connection
// dropped, a dial that failed) through slog, which would otherwise print
// them to stderr as plain text, in the middle of JSON logs.
type redisLogger struct{ logger *slog.Logger }

// Printf implements go-redis' logging interface.
func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.logger.WarnContext(ctx, strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: "), "component", "redis")
}

// routeLibraryLogs sends go-redis' log lines through logger. go-redis
// keeps one logger for the process: the last serve to start sets it.
func routeLibraryLogs(logger *slog.Logger) { redis.SetLogger(redisLogger{logger}) }
