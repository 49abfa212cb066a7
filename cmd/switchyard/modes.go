package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/internal/telemetry"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/postgres"
	"github.com/switchyard-dev/switchyard/store/rediscache"
)

// The names of production's requirements, as GET /system-mode/current and
// a refused start list them.
const (
	reqDatabaseURL  = "database_url"
	reqDatabase     = "database"
	reqMigrations   = "migrations"
	reqRedisURL     = "redis_url"
	reqRedis        = "redis"
	reqAdminTokens  = "admin_tokens"
	reqTokenSecrets = "token_secrets"
	reqStateDir     = "state_dir"
)

// backends opens the store of each mode for switchyard serve and checks
// production's requirements; it is the server's control.Backends. It keeps
// the release function of every store it opened, so serve releases
// whatever is still open when it stops, whichever mode it ended in.
type backends struct {
	cfg    *config
	logger *slog.Logger
	// operators holds the tokens configured now.
	operators *operators
	// metrics counts and traces the calls to every store opened.
	metrics *telemetry.Metrics

	mu     sync.Mutex
	opened []func()
}

var _ control.Backends = (*backends)(nil)

// Requirements implements control.Backends.
func (b *backends) Requirements(ctx context.Context) []control.Requirement { return b.check(ctx) }

// check checks production's requirements; the database and Redis are
// probed at once, each within ctx's deadline.
func (b *backends) check(ctx context.Context) []control.Requirement {
	cfg := b.cfg
	dbURL := control.Requirement{Name: reqDatabaseURL, Met: cfg.DatabaseURL != "",
		Why: "Postgres is production's audited truth: every change and its audit row are stored there (--database-url, SWITCHYARD_DATABASE_URL)"}
	db := control.Requirement{Name: reqDatabase,
		Why: "the database must answer: changes are written there and a replica loads its revision from it"}
	migrations := control.Requirement{Name: reqMigrations,
		Why: "the schema must be at this binary's version; with --migrate true (the default) pending migrations are applied when production starts"}
	redisURL := control.Requirement{Name: reqRedisURL,
		Why: "Redis is the shared cache and change channel that keeps replicas in step (--redis-url, SWITCHYARD_REDIS_URL)"}
	redis := control.Requirement{Name: reqRedis,
		Why: "Redis must answer: replicas share revisions and hear of changes through it"}
	stateDir := control.Requirement{Name: reqStateDir,
		Why: "a replica restarted while the stores are down serves its last-known-good file from this directory, not the conservative fallback (--state-dir, SWITCHYARD_STATE_DIR)"}

	var wg sync.WaitGroup
	wg.Go(func() { b.checkDatabase(ctx, &dbURL, &db, &migrations) })
	wg.Go(func() { b.checkRedis(ctx, &redisURL, &redis) })
	tokens, secrets := tokenRequirements(b.operators.current())
	stateDir.Met, stateDir.Detail = stateDirUsable(cfg.StateDir)
	wg.Wait()
	return []control.Requirement{dbURL, db, migrations, redisURL, redis, tokens, secrets, stateDir}
}

// checkDatabase fills in the database's requirements.
func (b *backends) checkDatabase(ctx context.Context, url, reachable, migrated *control.Requirement) {
	if b.cfg.DatabaseURL == "" {
		url.Detail = "not set"
		reachable.Detail, migrated.Detail = "no database URL", "no database URL"
		return
	}
	if err := probeDatabase(ctx, b.cfg.DatabaseURL); err != nil {
		reachable.Detail, reachable.Outage = err.Error(), true
		migrated.Detail, migrated.Outage = "unknown: the database does not answer", true
		return
	}
	have, want, err := postgres.SchemaVersion(ctx, b.cfg.DatabaseURL)
	if err != nil {
		// The server answered (probeDatabase would have said otherwise), so
		// this is a refusal: a missing database, a wrong password.
		reachable.Detail = err.Error()
		migrated.Detail = "unknown: the database refused the connection"
		return
	}
	reachable.Met = true
	switch {
	case have >= want:
		migrated.Met = true
	case b.cfg.Migrate == "true":
		migrated.Met = true
		migrated.Detail = fmt.Sprintf("the schema is at version %d, this binary needs %d: migrated when production starts", have, want)
	default:
		migrated.Detail = fmt.Sprintf("the schema is at version %d, this binary needs %d, and --migrate is false: run switchyard migrate up", have, want)
	}
}

// checkRedis fills in Redis' requirements.
func (b *backends) checkRedis(ctx context.Context, url, reachable *control.Requirement) {
	if b.cfg.RedisURL == "" {
		url.Detail, reachable.Detail = "not set", "no Redis URL"
		return
	}
	rdb, err := rediscache.NewClient(b.cfg.RedisURL)
	if err != nil {
		url.Detail, reachable.Detail = err.Error(), "no usable Redis URL"
		return
	}
	defer rdb.Close()
	url.Met = true
	if err := rdb.Ping(ctx).Err(); err != nil {
		reachable.Detail, reachable.Outage = "does not answer: "+err.Error(), true
		return
	}
	reachable.Met = true
}

// stateDirUsable reports whether dir is a directory this process can
// write its last-known-good file into, and if not why.
func stateDirUsable(dir string) (bool, string) {
	if dir == "" {
		return false, "not set"
	}
	f, err := os.CreateTemp(dir, ".switchyard-check-*")
	if err != nil {
		return false, "not writable: " + err.Error()
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return false, "not writable: " + err.Error()
	}
	return true, ""
}

// Open implements control.Backends: the demo fixtures, fresh every time, or
// Postgres behind Redis, migrated first unless told not to.
func (b *backends) Open(ctx context.Context, mode string) (store.Store, func(), error) {
	switch mode {
	case switchyard.ModeDemo:
		return b.metrics.Store(newDemoStore(b.cfg), "memory"), func() {}, nil
	case switchyard.ModeProduction:
		st, release, err := openProduction(ctx, b.cfg, b.logger, b.metrics, false, nil)
		if err != nil {
			return nil, nil, err
		}
		return st, b.track(release), nil
	}
	return nil, nil, fmt.Errorf("mode %q: use demo or production", mode)
}

// track keeps release to run at close, and returns it made safe to call
// twice: by the server when it switches away, and by close.
func (b *backends) track(release func()) func() {
	once := sync.OnceFunc(release)
	b.mu.Lock()
	b.opened = append(b.opened, once)
	b.mu.Unlock()
	return once
}

// close releases every store still open.
func (b *backends) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, release := range b.opened {
		release()
	}
	b.opened = nil
}

// errRequirements is a start refused because production's requirements are
// missing; the message lists them.
var errRequirements = errors.New("production mode cannot start")

// refusal explains a refused production start: each missing requirement,
// why it matters and what was found.
func refusal(missing []control.Requirement) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d requirement(s) missing:", len(missing))
	for _, r := range missing {
		fmt.Fprintf(&sb, "\n  - %s: %s", r.Name, r.Why)
		if r.Detail != "" {
			fmt.Fprintf(&sb, " [%s]", r.Detail)
		}
	}
	sb.WriteString("\nset what is missing, or start in demo mode (--mode demo)")
	return fmt.Errorf("%w: %s", errRequirements, sb.String())
}

// onlyOutages reports whether every missing requirement is a store that
// does not answer.
func onlyOutages(missing []control.Requirement) bool {
	for _, r := range missing {
		if !r.Outage {
			return false
		}
	}
	return true
}
