package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/internal/server"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/lazy"
	"github.com/switchyard-dev/switchyard/store/memory"
	"github.com/switchyard-dev/switchyard/store/postgres"
	"github.com/switchyard-dev/switchyard/store/rediscache"
)

// serve runs the HTTP server until ctx is cancelled, then drains in-flight
// requests for up to the shutdown timeout.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig("serve", args, getenv, stderr)
	if err != nil {
		return err
	}
	logger, err := cfg.logger(stderr)
	if err != nil {
		return err
	}
	tokens, err := server.ParseTokens(cfg.Tokens)
	if err != nil {
		return fmt.Errorf("SWITCHYARD_TOKENS: %w", err)
	}
	isAdmin := func(t server.Token) bool { return t.Role == switchyard.RoleAdmin }
	be := &backends{cfg: cfg, logger: logger, adminTokens: slices.ContainsFunc(tokens, isAdmin)}
	// Released last, after the server has drained: whatever store is open
	// then, the start mode's or one a live switch opened.
	defer be.close()
	var st store.Store
	var release func()
	if cfg.Mode == switchyard.ModeProduction {
		unreachable, err := startable(ctx, be, cfg, logger)
		if err != nil {
			return err
		}
		if st, release, err = openProduction(ctx, cfg, logger, true, unreachable); err != nil {
			return err
		}
		release = be.track(release)
	} else {
		st = memory.NewDemo()
	}
	if len(tokens) == 0 {
		secret, err := newToken()
		if err != nil {
			return err
		}
		tokens = []server.Token{{Role: switchyard.RoleAdmin, Secret: secret}}
		// Printed once, to stdout and not to the log, so it is not kept in
		// log storage; it dies with the process.
		fmt.Fprintf(stdout, "demo admin token (generated, shown once): %s\n", secret)
	}
	core := control.New(logger, control.Config{
		Mode:            cfg.Mode,
		ModeSource:      cfg.ModeSource,
		Backends:        be,
		AllowLiveSwitch: cfg.AllowLiveSwitch,
		ReleaseStore:    release,
		SessionTTL:      cfg.SessionTTL,
		CacheTTL:        cfg.CacheTTL,
		StateDir:        cfg.StateDir,
	}, st)
	handler := server.New(logger, core, server.Config{Tokens: tokens})

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := newHTTPServer(handler, requestTimeout)
	fmt.Fprintf(stdout, "switchyard %s mode listening on http://%s\n", cfg.Mode, ln.Addr())
	logger.Info("serving", "addr", ln.Addr().String(), "mode", cfg.Mode)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	// The state the next start resumes from (the last-known-good file, the
	// sessions pinned here) is saved whether or not every request drained.
	if err := core.Close(shutdownCtx); err != nil {
		logger.Error("stopping before the last-known-good file holds the revision served", "err", err)
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Info("stopped")
	return nil
}

// requestTimeout bounds reading a request (an import's body included) and
// writing its answer. A stream, meant to stay open, is bounded by it in
// each of its writes instead.
const requestTimeout = 30 * time.Second

// newHTTPServer is the HTTP server serve runs handler with, each request
// bounded by timeout; tests build theirs with it too, with a timeout they
// can outlast.
func newHTTPServer(handler http.Handler, timeout time.Duration) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       timeout,
		WriteTimeout:      timeout,
		IdleTimeout:       2 * time.Minute,
	}
}

// startCheckTimeout bounds the check of production's requirements at
// start; each probe has its own shorter deadline.
const startCheckTimeout = 15 * time.Second

// startable checks production's requirements before a production start and
// returns an error naming each one missing. A replica whose state directory
// holds production's last-known-good file starts through an outage (a store
// that does not answer, nothing misconfigured): it serves that file until
// the stores answer, as a replica restarted in an outage must. unreachable
// is then why the database did not answer, so the start goes on without
// probing it again; nil when it answered.
func startable(ctx context.Context, be *backends, cfg *config, logger *slog.Logger) (unreachable, err error) {
	ctx, cancel := context.WithTimeout(ctx, startCheckTimeout)
	defer cancel()
	missing := control.Unmet(be.check(ctx))
	if len(missing) == 0 {
		return nil, nil
	}
	if _, err := os.Stat(control.StateFilePath(cfg.StateDir, switchyard.ModeProduction)); err != nil || !onlyOutages(missing) {
		return nil, refusal(missing)
	}
	for _, r := range missing {
		logger.Error("starting production through an outage: serving the last-known-good file until the stores answer",
			"requirement", r.Name, "detail", r.Detail)
		if r.Name == reqDatabase {
			unreachable = errors.New(r.Detail)
		}
	}
	return unreachable, nil
}

// openProduction returns Postgres (migrated first unless told not to, with
// the sweeper of expired sessions and idempotency keys running) behind the
// Redis cache, and the function that releases it. With lazily set, a
// database where nothing answers gives a lazy.Store that connects in the
// background: a replica started through an outage serves its state file
// meanwhile, for reads never fail because a store did. unreachable, when
// set, is a probe's finding that nothing answers, so the database is not
// probed again.
func openProduction(ctx context.Context, cfg *config, logger *slog.Logger, lazily bool, unreachable error) (store.Store, func(), error) {
	// Background loops run until the store is released, not until a
	// signal: serve drains requests first and releases the store last.
	bg, stopBackground := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var closeConnected func()
	connect := func(ctx context.Context) (store.Store, error) {
		st, closeFn, err := connectPostgres(ctx, bg, &wg, cfg, logger)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		closeConnected = closeFn
		mu.Unlock()
		return st, nil
	}
	release := func() {
		stopBackground()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		if closeConnected != nil {
			closeConnected()
		}
	}
	if lazily {
		err := unreachable
		if err == nil {
			err = probeDatabase(ctx, cfg.DatabaseURL)
		}
		if err != nil {
			logger.Error("starting WITHOUT the database: evaluations are served from the state file or the "+
				"conservative fallback and writes are refused until it answers", "err", err, "retry_every", reconnectInterval.String())
			l := lazy.New(err)
			wg.Go(func() {
				l.Run(bg, logger, reconnectInterval, func(ctx context.Context) (store.Store, error) {
					if err := probeDatabase(ctx, cfg.DatabaseURL); err != nil {
						return nil, err
					}
					return connect(ctx)
				})
			})
			return l, release, nil
		}
	}
	st, err := connect(ctx)
	if err != nil {
		release()
		return nil, nil, err
	}
	return st, release, nil
}

// connectPostgres migrates (unless told not to) and opens Postgres, behind
// the Redis cache, and starts their background loops on bg under wg. The
// function it returns releases what it opened once those loops have
// stopped.
func connectPostgres(ctx, bg context.Context, wg *sync.WaitGroup, cfg *config, logger *slog.Logger) (store.Store, func(), error) {
	if cfg.Migrate == "true" {
		applied, err := postgres.Migrate(ctx, cfg.DatabaseURL, postgres.WithLogger(logger))
		if err != nil {
			return nil, nil, fmt.Errorf("migrate: %w", err)
		}
		logger.Info("migrations applied", "count", len(applied), "applied", applied)
	}
	pg, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.WithLogger(logger))
	if err != nil {
		return nil, nil, fmt.Errorf("open the database: %w", err)
	}
	rdb, err := rediscache.NewClient(cfg.RedisURL)
	if err != nil {
		pg.Close()
		return nil, nil, fmt.Errorf("redis URL: %w", err)
	}
	wg.Go(func() { pg.RunSweeper(bg, sweepInterval) })
	cache := rediscache.New(pg, rdb, rediscache.WithLogger(logger), rediscache.WithPrefix(cfg.RedisPrefix),
		rediscache.WithLocalTTL(cfg.CacheTTL), rediscache.WithRedisTTL(cfg.RedisTTL))
	wg.Go(func() { _ = cache.Run(bg) })
	// A commit on any replica reaches this one through Postgres NOTIFY; the
	// cache's own channel and version-key poll cover a missed notification.
	wg.Go(func() { _ = pg.Listen(bg, func(rev *switchyard.Revision) { cache.Announce(bg, rev) }) })
	return cache, func() {
		pg.Close()
		_ = rdb.Close()
	}, nil
}

// sweepInterval is how often expired session snapshots and idempotency
// keys are removed.
const sweepInterval = time.Minute

// newToken returns 32 random bytes in hex.
func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return hex.EncodeToString(b), nil
}
