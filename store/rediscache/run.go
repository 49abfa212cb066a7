package rediscache

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/switchyard-dev/switchyard"
)

// OnChange implements store.Notifier: fn hears every new current revision
// this replica learns of, from its own Apply, the Redis channel, the
// version key poll, an Announce or a resync. The calls come from a goroutine
// of the cache's, one at a time with rising numbers (or, once the store's
// history was found rewound, the current revision of the history it holds
// now), and every listener hears a revision after the listeners registered
// before it; a listener still busy with one revision hears only the newest
// of those that arrived meanwhile. fn may be slow and may call back into
// the cache. The server refreshes its compiled flag set and feeds
// /v1/stream from it.
func (s *Store) OnChange(fn func(rev *switchyard.Revision)) { s.listeners.add(fn) }

// Run keeps this replica's cache in step with the others until ctx ends.
// It listens on the Redis channel for new revision numbers and, because
// pub/sub is fire-and-forget, also polls the shared version key every poll
// interval (with jitter), and resyncs from the wrapped store in full when
// it (re)subscribes and when Redis comes back from an outage. While Redis
// is down the poll asks the wrapped store instead, so changes still arrive.
// It returns nil when ctx ends.
func (s *Store) Run(ctx context.Context) error {
	ps := s.rdb.Subscribe(ctx, s.keys.channel)
	defer ps.Close()
	msgs := ps.ChannelWithSubscriptions()
	timer := time.NewTimer(s.jitter())
	defer timer.Stop()
	outages := s.health.outageCount()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-msgs:
			switch m := m.(type) {
			case *redis.Subscription:
				// Every (re)subscription may follow missed messages.
				if m.Kind == "subscribe" {
					s.resync(ctx)
				}
			case *redis.Message:
				s.cfg.announced("pubsub")
				if n, id, ok := parseHead(m.Payload); ok {
					s.advance(ctx, n, id)
				}
			}
		case <-timer.C:
			outages = s.poll(ctx, outages)
			timer.Reset(s.jitter())
		}
	}
}

// jitter returns the poll interval ±25%, so replicas do not poll in step.
func (s *Store) jitter() time.Duration {
	d := s.cfg.pollInterval
	return d*3/4 + rand.N(d/2+1)
}

// poll compares the shared version key with the in-process revision. It
// probes Redis even while reads skip it, and resyncs in full when an outage
// began since the last poll (outages is the count then; the new count is
// returned). When Redis is down it asks the wrapped store directly.
func (s *Store) poll(ctx context.Context, outages int64) int64 {
	var raw string
	err := s.probe(ctx, func(ctx context.Context) error {
		var err error
		raw, err = s.rdb.Get(ctx, s.keys.current).Result()
		return err
	})
	now := s.health.outageCount()
	switch {
	case errors.Is(err, redis.Nil) || (err == nil && now != outages):
		s.resync(ctx)
	case err != nil:
		// Redis is down: the truth is still there, and cheap to ask.
		if rev, err := s.inner.Current(ctx); err == nil {
			s.learn(ctx, rev, false)
		}
		// Stay behind the outage count so the first poll after recovery
		// resyncs.
		return outages
	default:
		if n, id, ok := parseHead(raw); ok {
			if e := s.current.Load(); e == nil || e.rev.Number < n || e.rev.ID != id {
				s.cfg.announced("poll")
			}
			s.advance(ctx, n, id)
		} else {
			// Not a revision as this version names one: read the truth.
			s.resync(ctx)
		}
	}
	return now
}

// advance moves the in-process revision to revision n, ID id, when n is
// newer, loading it through the caches; when it cannot be loaded the
// in-process revision is dropped, so the next read goes to the source
// rather than serve it stale. Another revision numbered no higher than the
// one served is an old announcement, or that of a replica that found the
// store's history rewound: the store says which.
func (s *Store) advance(ctx context.Context, n int64, id string) {
	e := s.current.Load()
	switch {
	case e != nil && e.rev.ID == id:
		return
	case e != nil && e.rev.Number >= n:
		s.resync(ctx)
		return
	}
	rev, err := s.revisionByID(ctx, n, id)
	if err != nil {
		s.drop(n)
		return
	}
	s.observe(rev)
}

// Announce tells the cache that rev is the wrapped store's current
// revision, as the store's own change feed reports it (Postgres
// LISTEN/NOTIFY through postgres.(*Store).Listen): it is installed at
// once, shared and republished on the Redis channel for replicas whose
// feed lagged, and OnChange listeners are told of it without Announce
// waiting for them. Announcing the revision served does nothing, so every
// replica may announce every commit; announcing an older one makes the
// cache check whether the store's history was rewound.
func (s *Store) Announce(ctx context.Context, rev *switchyard.Revision) {
	if e := s.current.Load(); e != nil && e.rev.ID == rev.ID {
		return
	}
	s.learn(ctx, rev, true)
}

// drop forgets the in-process current revision if it is older than n.
func (s *Store) drop(n int64) {
	if e := s.current.Load(); e != nil && e.rev.Number < n {
		s.current.CompareAndSwap(e, nil)
	}
}

// resync reads the current revision from the wrapped store, the truth, and
// shares it: after an outage or a reconnect, Redis may hold a number older
// than a change made meanwhile, and messages may have been lost.
func (s *Store) resync(ctx context.Context) {
	rev, err := s.inner.Current(ctx)
	if err != nil {
		if switchyard.ErrorCode(err) != switchyard.CodeUnavailable {
			s.cfg.log.Warn("resync the revision cache", "err", err)
		}
		return
	}
	s.learn(ctx, rev, false)
}
