package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/console"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/internal/server"
	"github.com/switchyard-dev/switchyard/internal/telemetry"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/lazy"
	"github.com/switchyard-dev/switchyard/store/memory"
	"github.com/switchyard-dev/switchyard/store/postgres"
	"github.com/switchyard-dev/switchyard/store/rediscache"
)

// serveCommand is "switchyard serve": its flags are every setting of
// config.go.
func serveCommand(fs *flag.FlagSet, c *cli) runner {
	cfg, bindErr := bindConfig(fs, c.getenv)
	return func(ctx context.Context, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		if bindErr != nil {
			return usageError{bindErr}
		}
		if err := cfg.resolve(c.getenv); err != nil {
			return usageError{err}
		}
		return serve(ctx, cfg, c.getenv, c.stdout, c.stderr)
	}
}

// serve runs the HTTP server until ctx is cancelled, then drains in-flight
// requests for up to the shutdown timeout.
func serve(ctx context.Context, cfg *config, getenv func(string) string, stdout, stderr io.Writer) error {
	logger, err := cfg.logger(stderr)
	if err != nil {
		return err
	}
	tokens, err := cfg.tokens()
	if err != nil {
		return err
	}
	approvals, err := cfg.approvals()
	if err != nil {
		return err
	}
	if len(cfg.FlagFiles.files) > 0 && cfg.Mode != switchyard.ModeDemo {
		return errors.New("--flags serves flag files in demo mode only: in production, import them (switchyard import --from flagd), " +
			"which audits who brought them")
	}
	// Demo mode generates an admin token when none is configured. It is
	// printed once, to stdout and not to the log, so it is not kept in log
	// storage; it dies with the process. A production start without tokens
	// is refused below.
	var generated []server.Token
	if cfg.Tokens == "" && cfg.TokensFile == "" && cfg.Mode == switchyard.ModeDemo {
		secret, err := newToken()
		if err != nil {
			return err
		}
		t := server.Token{Operator: switchyard.Operator{Role: switchyard.RoleAdmin}, Secret: secret}
		t.Operator.Name = anonymousName(t.Operator.Role, t.Digest())
		generated = []server.Token{t}
		fmt.Fprintf(stdout, "demo admin token (generated, shown once): %s\n", secret)
	}
	ops := newOperators(logger, cfg.TokensFile, tokens, generated)
	if cfg.Mode == switchyard.ModeDemo {
		_, secrets := tokenRequirements(tokens)
		warnWeakSecrets(logger, secrets)
	}
	routeLibraryLogs(logger)
	tracing, stopTracing, err := startTracing(ctx, getenv, logger)
	if err != nil {
		return err
	}
	defer stopTracing()
	metrics := telemetry.New(telemetry.Options{FlagLabels: cfg.MetricsFlagLabels, Tracing: tracing})
	be := &backends{cfg: cfg, logger: logger, operators: ops, metrics: metrics}
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
		if st, release, err = openProduction(ctx, cfg, logger, metrics, true, unreachable); err != nil {
			return err
		}
		release = be.track(release)
	} else {
		st = metrics.Store(newDemoStore(cfg), "memory")
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
		// Unset, each mode's default bound is above what the core keeps
		// in process anyway.
		MaxSessions:  cfg.MaxSessions,
		SessionRate:  cfg.SessionRate,
		SessionBurst: cfg.SessionBurst,
		Observer:     metrics,
		Approvals:    approvals,
	}, st)
	metrics.Watch(core)
	scfg := server.Config{Auth: ops.auth, TrustedProxies: cfg.Proxies, Observer: metrics, Tracing: tracing, AccessLog: cfg.AccessLog,
		RequireClientToken: cfg.RequireClientToken, CORSOrigins: cfg.CORSOrigins, CORSAdminOrigins: cfg.CORSAdminOrigins}
	if cfg.MetricsAddr == "" {
		scfg.Metrics = metrics.Handler()
	} else {
		stopMetrics, err := serveMetrics(cfg, metrics.Handler(), logger, stdout)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	if cfg.Console {
		scfg.Console = console.New(logger, core, console.Config{Tokens: ops.auth,
			SecureCookie: cfg.ConsoleSecureCookie, IdleTimeout: cfg.ConsoleIdleTimeout})
	}
	handler := server.New(logger, core, scfg)
	stopReloading := reloadOnSIGHUP(logger, ops, core)
	defer stopReloading()
	if len(cfg.FlagFiles.files) > 0 {
		ff, err := loadFlagFiles(ctx, logger, core, cfg.FlagFiles.files)
		if err != nil {
			return err
		}
		watch, stopWatching := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { ff.run(watch, flagFilesInterval) })
		defer wg.Wait()
		defer stopWatching()
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := newHTTPServer(handler, requestTimeout)
	// net/http's own complaints (a bad TLS handshake, a panic) go to the
	// service log, in its format.
	srv.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
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

// reloadOnSIGHUP re-reads the tokens file on every SIGHUP, for the mode
// served at that moment, until the returned function is called. A SIGHUP
// never stops the process: without a tokens file it is logged and ignored.
func reloadOnSIGHUP(logger *slog.Logger, ops *operators, core *control.Core) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-hup:
				if err := ops.reload(core.Mode()); err != nil {
					logger.Error("SIGHUP: keeping the tokens in force", "err", err)
				}
			}
		}
	})
	return func() {
		signal.Stop(hup)
		close(done)
		wg.Wait()
	}
}

// startCheckTimeout bounds the check of production's requirements at
// start; each probe has its own shorter deadline.
const startCheckTimeout = 15 * time.Second

// startable checks production's requirements before a production start and
// returns an error naming each one missing. A replica whose state directory
// holds production's last-known-good file, written from the database
// configured, starts through an outage (a store that does not answer,
// nothing misconfigured): it serves that file until the stores answer, as a
// replica restarted in an outage must. unreachable is then why the
// database did not answer, so the start goes on without probing it again;
// nil when it answered.
func startable(ctx context.Context, be *backends, cfg *config, logger *slog.Logger) (unreachable, err error) {
	ctx, cancel := context.WithTimeout(ctx, startCheckTimeout)
	defer cancel()
	missing := control.Unmet(be.check(ctx))
	if len(missing) == 0 {
		return nil, nil
	}
	if !onlyOutages(missing) {
		return nil, refusal(missing)
	}
	// The database may not answer: compare what is known without it.
	address, err := postgres.Address(cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if _, err := control.ReadStateFile(cfg.StateDir, switchyard.ModeProduction, store.Identity{Address: address}); err != nil {
		return nil, fmt.Errorf("%w\nthe last-known-good file cannot stand in meanwhile: %v", refusal(missing), err)
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
func openProduction(ctx context.Context, cfg *config, logger *slog.Logger, metrics *telemetry.Metrics, lazily bool, unreachable error) (store.Store, func(), error) {
	address, err := postgres.Address(cfg.DatabaseURL)
	if err != nil {
		return nil, nil, err
	}
	// Background loops run until the store is released, not until a
	// signal: serve drains requests first and releases the store last.
	bg, stopBackground := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var closeConnected func()
	connect := func(ctx context.Context) (store.Store, error) {
		st, closeFn, err := connectPostgres(ctx, bg, &wg, cfg, logger, metrics)
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
			l := lazy.New(err, store.Identity{Address: address})
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
// the Redis cache, and starts their background loops on bg under wg.
// Postgres calls and Redis commands are counted and traced, and their pools
// watched, by metrics. The function it returns releases what it opened once
// those loops have stopped.
func connectPostgres(ctx, bg context.Context, wg *sync.WaitGroup, cfg *config, logger *slog.Logger, metrics *telemetry.Metrics) (store.Store, func(), error) {
	if cfg.Migrate == "true" {
		applied, err := postgres.Migrate(ctx, cfg.DatabaseURL, postgres.WithLogger(logger))
		if err != nil {
			return nil, nil, fmt.Errorf("migrate: %w", err)
		}
		logger.Info("migrations applied", "count", len(applied), "applied", applied)
	}
	pg, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.WithLogger(logger),
		postgres.WithMaxSessions(cfg.maxSessions(switchyard.ModeProduction)))
	if err != nil {
		return nil, nil, fmt.Errorf("open the database: %w", err)
	}
	rdb, err := rediscache.NewClient(cfg.RedisURL)
	if err != nil {
		pg.Close()
		return nil, nil, fmt.Errorf("redis URL: %w", err)
	}
	wg.Go(func() { pg.RunSweeper(bg, sweepInterval) })
	rdb.AddHook(metrics.RedisHook())
	stopWatching := metrics.WatchPools(pg.PoolStat, rdb)
	cache := rediscache.New(metrics.Store(pg, "postgres"), rdb, rediscache.WithLogger(logger), rediscache.WithPrefix(cfg.RedisPrefix),
		rediscache.WithLocalTTL(cfg.CacheTTL), rediscache.WithRedisTTL(cfg.RedisTTL), rediscache.WithAnnouncements(metrics.Announced))
	wg.Go(func() { _ = cache.Run(bg) })
	// A commit on any replica reaches this one through Postgres NOTIFY; the
	// cache's own channel and version-key poll cover a missed notification.
	wg.Go(func() {
		_ = pg.Listen(bg, func(rev *switchyard.Revision) {
			metrics.Announced("notify")
			cache.Announce(bg, rev)
		})
	})
	return cache, func() {
		stopWatching()
		pg.Close()
		_ = rdb.Close()
	}, nil
}

// newDemoStore returns demo mode's store: the fixtures, with its bound on
// live sessions.
func newDemoStore(cfg *config) *memory.Store {
	return memory.NewDemo(memory.WithMaxSessions(cfg.maxSessions(switchyard.ModeDemo)))
}

// sweepInterval is how often expired session snapshots and idempotency
// keys are removed, and the live sessions counted for the bound.
const sweepInterval = time.Minute

// newToken returns 32 random bytes in hex.
func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return hex.EncodeToString(b), nil
}
