package telemetry

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
)

// The outcomes of a store call, as store_calls_total labels them.
const (
	outcomeOK       = "ok"
	outcomeMiss     = "miss"
	outcomeNotFound = "not_found"
	outcomeError    = "error"
)

// Store returns st with every call counted, timed and traced as a call to
// the store named name (memory, postgres). st must not be a store.Notifier
// or a store.HealthReporter, which the wrapper would hide: wrap the store
// a cache wraps, not the cache.
func (m *Metrics) Store(st store.Store, name string) store.Store {
	return &instrumented{inner: st, name: name, m: m}
}

// instrumented is a store.Store whose calls are counted, timed and traced.
type instrumented struct {
	inner store.Store
	name  string
	m     *Metrics
}

// call runs fn as the store operation op: a span named after the store and
// the operation, a count by outcome and a duration.
func (s *instrumented) call(ctx context.Context, op string, fn func(context.Context) error) {
	ctx, span := s.m.tracer.Start(ctx, s.name+" "+op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("switchyard.store", s.name), attribute.String("switchyard.store.operation", op)))
	defer span.End()
	start := time.Now()
	err := fn(ctx)
	s.m.storeSeconds.WithLabelValues(s.name, op).Observe(time.Since(start).Seconds())
	outcome := outcomeOK
	switch code := switchyard.ErrorCode(err); {
	case err == nil:
	case code == switchyard.CodeNotFound:
		outcome = outcomeNotFound
	case code == switchyard.CodeUnavailable || code == switchyard.CodeOutcomeUnknown || code == switchyard.CodeInternal:
		outcome = outcomeError
		span.SetStatus(codes.Error, switchyard.AsError(err).Message)
		span.SetAttributes(semconv.ErrorTypeKey.String(string(code)))
	default:
		// A refusal (a stale expected revision, a frozen runtime) is the
		// store answering, not failing.
		span.SetAttributes(attribute.String("switchyard.refusal", string(code)))
	}
	s.m.storeCalls.WithLabelValues(s.name, op, outcome).Inc()
}

func (s *instrumented) Current(ctx context.Context) (rev *switchyard.Revision, err error) {
	s.call(ctx, "current", func(ctx context.Context) error { rev, err = s.inner.Current(ctx); return err })
	return rev, err
}

func (s *instrumented) Revision(ctx context.Context, n int64) (rev *switchyard.Revision, err error) {
	s.call(ctx, "revision", func(ctx context.Context) error { rev, err = s.inner.Revision(ctx, n); return err })
	return rev, err
}

func (s *instrumented) CreateSession(ctx context.Context, snap switchyard.Snapshot) (stored switchyard.Snapshot, created bool, err error) {
	s.call(ctx, "create_session", func(ctx context.Context) error {
		stored, created, err = s.inner.CreateSession(ctx, snap)
		return err
	})
	return stored, created, err
}

func (s *instrumented) Session(ctx context.Context, id string) (snap switchyard.Snapshot, err error) {
	s.call(ctx, "session", func(ctx context.Context) error { snap, err = s.inner.Session(ctx, id); return err })
	return snap, err
}

func (s *instrumented) Apply(ctx context.Context, c store.Change) (rev *switchyard.Revision, e store.AuditEntry, err error) {
	s.call(ctx, "apply", func(ctx context.Context) error { rev, e, err = s.inner.Apply(ctx, c); return err })
	return rev, e, err
}

func (s *instrumented) Reject(ctx context.Context, a store.Attempt, why error) (e store.AuditEntry, err error) {
	s.call(ctx, "reject", func(ctx context.Context) error { e, err = s.inner.Reject(ctx, a, why); return err })
	return e, err
}

func (s *instrumented) Record(ctx context.Context, a store.Attempt, before, after any) (e store.AuditEntry, err error) {
	s.call(ctx, "record", func(ctx context.Context) error { e, err = s.inner.Record(ctx, a, before, after); return err })
	return e, err
}

func (s *instrumented) Keyed(ctx context.Context, key string) (k store.Keyed, err error) {
	s.call(ctx, "keyed", func(ctx context.Context) error { k, err = s.inner.Keyed(ctx, key); return err })
	return k, err
}

func (s *instrumented) Audit(ctx context.Context, q store.AuditQuery) (es []store.AuditEntry, err error) {
	s.call(ctx, "audit", func(ctx context.Context) error { es, err = s.inner.Audit(ctx, q); return err })
	return es, err
}

func (s *instrumented) VerifyAudit(ctx context.Context) (v store.Verification, err error) {
	s.call(ctx, "verify_audit", func(ctx context.Context) error { v, err = s.inner.VerifyAudit(ctx); return err })
	return v, err
}

// RedisHook counts, times and traces every Redis command as a call to the
// store named redis, by command: add it to the client with AddHook. A
// missing key is the outcome miss.
func (m *Metrics) RedisHook() redis.Hook { return redisHook{m} }

type redisHook struct{ m *Metrics }

func (h redisHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		op := strings.ToLower(cmd.Name())
		ctx, span := h.m.tracer.Start(ctx, "redis "+op, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(semconv.DBSystemNameRedis, semconv.DBOperationName(op)))
		defer span.End()
		start := time.Now()
		err := next(ctx, cmd)
		h.m.storeSeconds.WithLabelValues("redis", op).Observe(time.Since(start).Seconds())
		outcome := outcomeOK
		switch {
		case errors.Is(err, redis.Nil):
			outcome = outcomeMiss
		case err != nil:
			outcome = outcomeError
			span.SetStatus(codes.Error, err.Error())
		}
		h.m.storeCalls.WithLabelValues("redis", op, outcome).Inc()
		return err
	}
}

func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		ctx, span := h.m.tracer.Start(ctx, "redis pipeline", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(semconv.DBSystemNameRedis))
		defer span.End()
		start := time.Now()
		err := next(ctx, cmds)
		h.m.storeSeconds.WithLabelValues("redis", "pipeline").Observe(time.Since(start).Seconds())
		outcome := outcomeOK
		if err != nil && !errors.Is(err, redis.Nil) {
			outcome = outcomeError
			span.SetStatus(codes.Error, err.Error())
		}
		h.m.storeCalls.WithLabelValues("redis", "pipeline", outcome).Inc()
		return err
	}
}

func (s *instrumented) ProposeChange(ctx context.Context, cr switchyard.ChangeRequest, a store.Attempt) (out switchyard.ChangeRequest, e store.AuditEntry, err error) {
	s.call(ctx, "propose_change", func(ctx context.Context) error { out, e, err = s.inner.ProposeChange(ctx, cr, a); return err })
	return out, e, err
}

func (s *instrumented) ChangeRequest(ctx context.Context, id int64) (cr switchyard.ChangeRequest, err error) {
	s.call(ctx, "change_request", func(ctx context.Context) error { cr, err = s.inner.ChangeRequest(ctx, id); return err })
	return cr, err
}

func (s *instrumented) ChangeRequests(ctx context.Context, q store.ChangeQuery) (crs []switchyard.ChangeRequest, err error) {
	s.call(ctx, "change_requests", func(ctx context.Context) error { crs, err = s.inner.ChangeRequests(ctx, q); return err })
	return crs, err
}

func (s *instrumented) MoveChange(ctx context.Context, id int64, m store.Move) (cr switchyard.ChangeRequest, e store.AuditEntry, err error) {
	s.call(ctx, "move_change", func(ctx context.Context) error { cr, e, err = s.inner.MoveChange(ctx, id, m); return err })
	return cr, e, err
}

// ClaimDue is counted as one call, the work done in it included.
func (s *instrumented) ClaimDue(ctx context.Context, q store.DueQuery, work func(switchyard.ChangeRequest) (store.Move, bool)) (n int64, err error) {
	s.call(ctx, "claim_due", func(ctx context.Context) error { n, err = s.inner.ClaimDue(ctx, q, work); return err })
	return n, err
}

// Identity implements store.Identifier with the wrapped store's identity,
// so counting a store's calls hides nothing of which store it is (the
// last-known-good file records it).
func (s *instrumented) Identity() store.Identity {
	if id, ok := s.inner.(store.Identifier); ok {
		return id.Identity()
	}
	return store.Identity{}
}

var _ store.Identifier = (*instrumented)(nil)
