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
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/internal/server"
	"github.com/switchyard-dev/switchyard/store"
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
	if len(tokens) == 0 && cfg.Mode == "production" {
		return errors.New("production mode needs admin tokens: set SWITCHYARD_TOKENS (admin:<secret>,viewer:<secret>)")
	}
	if len(tokens) == 0 {
		secret, err := newToken()
		if err != nil {
			return err
		}
		tokens = []server.Token{{Role: server.RoleAdmin, Secret: secret}}
		// Printed once, to stdout and not to the log, so it is not kept in
		// log storage; it dies with the process.
		fmt.Fprintf(stdout, "demo admin token (generated, shown once): %s\n", secret)
	}
	st, closeStore, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer closeStore()
	handler := server.NewServer(logger, server.Config{
		Mode:       cfg.Mode,
		Tokens:     tokens,
		SessionTTL: cfg.SessionTTL,
		CacheTTL:   cfg.CacheTTL,
	}, st)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
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
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Info("stopped")
	return nil
}

// openStore returns the store of the configured mode and the function that
// releases it: the in-memory demo fixtures, or Postgres (migrated first
// unless told not to, with the expired-session sweeper running), behind the
// Redis cache when a Redis URL is set.
func openStore(ctx context.Context, cfg *config, logger *slog.Logger) (store.Store, func(), error) {
	if cfg.Mode == "demo" {
		return memory.NewDemo(), func() {}, nil
	}
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
	// Background loops run until the store is released, not until a
	// signal: serve drains requests first and releases the store last.
	bg, stopBackground := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { pg.RunSweeper(bg, sweepInterval) })
	release := func() {
		stopBackground()
		wg.Wait()
		pg.Close()
	}
	if cfg.RedisURL == "" {
		return pg, release, nil
	}
	rdb, err := rediscache.NewClient(cfg.RedisURL)
	if err != nil {
		release()
		return nil, nil, fmt.Errorf("redis URL: %w", err)
	}
	cache := rediscache.New(pg, rdb, rediscache.WithLogger(logger), rediscache.WithPrefix(cfg.RedisPrefix),
		rediscache.WithLocalTTL(cfg.CacheTTL), rediscache.WithRedisTTL(cfg.RedisTTL))
	wg.Go(func() { _ = cache.Run(bg) })
	// A commit on any replica reaches this one through Postgres NOTIFY; the
	// cache's own channel and version-key poll cover a missed notification.
	wg.Go(func() { _ = pg.Listen(bg, func(n int64) { cache.Announce(bg, n) }) })
	return cache, func() {
		release()
		_ = rdb.Close()
	}, nil
}

// sweepInterval is how often expired session snapshots are removed.
const sweepInterval = time.Minute

// newToken returns 32 random bytes in hex.
func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return hex.EncodeToString(b), nil
}
