package telemetry

import (
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/control"
)

// servingSource is what a scrape reads the core's state from.
type servingSource interface {
	Serving() control.Serving
}

// Watch has every scrape read what core serves: its revision, where the
// values come from, the mode and the system flags.
func (m *Metrics) Watch(core servingSource) { m.serving.Store(&core) }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
}

var (
	revisionDesc = desc("revision", "The revision this replica serves evaluations from (0: the conservative fallback), by mode.", "mode")
	ageDesc      = desc("revision_age_seconds", "Seconds since the served revision was installed on this replica.")
	sourceDesc   = desc("serving_source", "1 for what evaluations are served from: store (the store's revision), last_known (the last revision read, while the store does not answer), "+
		"state_file (the last-known-good file, since a start without the store) or fallback (the conservative fallback); 0 for the others.", "source")
	modeDesc = desc("system_mode", "1 for the mode this replica serves (demo or production), 0 for the other.", "mode")
	flagDesc = desc("system_flag", "The system flags of the served revision: 1 on, 0 off.", "flag")
	pinsDesc = desc("session_pins_waiting", "Sessions pinned on this replica during a store outage and not yet written to the store.")
)

var (
	sources = []string{control.SourceStore, control.SourceLastKnown, control.SourceStateFile, control.SourceFallback}
	modes   = []string{switchyard.ModeDemo, switchyard.ModeProduction}
)

// servingCollector reads the core's state at each scrape.
type servingCollector struct{ m *Metrics }

func (c servingCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{revisionDesc, ageDesc, sourceDesc, modeDesc, flagDesc, pinsDesc} {
		ch <- d
	}
}

func (c servingCollector) Collect(ch chan<- prometheus.Metric) {
	src := c.m.serving.Load()
	if src == nil {
		return
	}
	s := (*src).Serving()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(revisionDesc, float64(s.Revision), s.Mode)
	gauge(ageDesc, time.Since(s.InstalledAt).Seconds())
	for _, source := range sources {
		gauge(sourceDesc, one(source == s.Source), source)
	}
	for _, mode := range modes {
		gauge(modeDesc, one(mode == s.Mode), mode)
	}
	for _, name := range switchyard.SystemFlagNames {
		on, _ := s.System.Get(name)
		gauge(flagDesc, one(on), name)
	}
	gauge(pinsDesc, float64(s.PinsWaiting))
}

func one(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// poolSources are the connection pools of the production store open now.
type poolSources struct {
	postgres func() *pgxpool.Stat
	redis    redis.UniversalClient
}

// WatchPools has every scrape read the statistics of a Postgres pool and
// a Redis client, until the function it returns is called. The store of a
// live switch or of a late connection replaces the one watched before.
func (m *Metrics) WatchPools(postgres func() *pgxpool.Stat, rdb redis.UniversalClient) (stop func()) {
	m.poolsMu.Lock()
	defer m.poolsMu.Unlock()
	p := &poolSources{postgres: postgres, redis: rdb}
	m.pools.Store(p)
	return func() {
		m.poolsMu.Lock()
		defer m.poolsMu.Unlock()
		m.pools.CompareAndSwap(p, nil)
	}
}

var (
	pgConnsDesc     = desc("postgres_pool_connections", "Connections in the Postgres pool, by state (acquired, idle, constructing).", "state")
	pgMaxDesc       = desc("postgres_pool_max_connections", "The most connections the Postgres pool opens.")
	pgAcquiresDesc  = desc("postgres_pool_acquires_total", "Connections acquired from the Postgres pool.")
	pgWaitsDesc     = desc("postgres_pool_empty_acquires_total", "Acquisitions from the Postgres pool that had to wait for a connection.")
	pgWaitDesc      = desc("postgres_pool_acquire_seconds_total", "Time spent acquiring connections from the Postgres pool.")
	redisConnsDesc  = desc("redis_pool_connections", "Connections in the Redis pool, by state (total, idle).", "state")
	redisHitsDesc   = desc("redis_pool_hits_total", "Redis commands that found a free connection in the pool.")
	redisMissesDesc = desc("redis_pool_misses_total", "Redis commands that found no free connection in the pool.")
	redisWaitsDesc  = desc("redis_pool_timeouts_total", "Redis commands that timed out waiting for a connection.")
)

// poolCollector reads the pools' statistics at each scrape.
type poolCollector struct{ m *Metrics }

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{pgConnsDesc, pgMaxDesc, pgAcquiresDesc, pgWaitsDesc, pgWaitDesc,
		redisConnsDesc, redisHitsDesc, redisMissesDesc, redisWaitsDesc} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	p := c.m.pools.Load()
	if p == nil {
		return
	}
	metric := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, t, v, labels...)
	}
	if p.postgres != nil {
		pg := p.postgres()
		metric(pgConnsDesc, prometheus.GaugeValue, float64(pg.AcquiredConns()), "acquired")
		metric(pgConnsDesc, prometheus.GaugeValue, float64(pg.IdleConns()), "idle")
		metric(pgConnsDesc, prometheus.GaugeValue, float64(pg.ConstructingConns()), "constructing")
		metric(pgMaxDesc, prometheus.GaugeValue, float64(pg.MaxConns()))
		metric(pgAcquiresDesc, prometheus.CounterValue, float64(pg.AcquireCount()))
		metric(pgWaitsDesc, prometheus.CounterValue, float64(pg.EmptyAcquireCount()))
		metric(pgWaitDesc, prometheus.CounterValue, pg.AcquireDuration().Seconds())
	}
	if p.redis != nil {
		rs := p.redis.PoolStats()
		metric(redisConnsDesc, prometheus.GaugeValue, float64(rs.TotalConns), "total")
		metric(redisConnsDesc, prometheus.GaugeValue, float64(rs.IdleConns), "idle")
		metric(redisHitsDesc, prometheus.CounterValue, float64(rs.Hits))
		metric(redisMissesDesc, prometheus.CounterValue, float64(rs.Misses))
		metric(redisWaitsDesc, prometheus.CounterValue, float64(rs.Timeouts))
	}
}
