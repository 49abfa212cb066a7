package provider

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/internal/lru"
)

// Provider is Switchyard's OpenFeature provider. In-process (the default)
// it evaluates a local copy of the server's compiled flag set and follows
// its changes; remote, it asks the server's OFREP API on every evaluation.
// Either way the context attribute sessionId (SessionIDKey) pins every flag
// to that session's snapshot, and no evaluation ever panics. A pinned
// session's results are never STALE: its snapshot cannot change.
//
// It follows the server's revisions by ID, never by number: a number
// repeats once the server's history changed (a demo server restarted, a
// database restored from an earlier backup, a live mode switch), and the
// provider then drops every revision and session it cached and reports
// every flag changed.
type Provider struct {
	cfg    config
	base   string
	events chan openfeature.Event

	// live is the current revision's flag set; nil until the provider has
	// fetched one (Init, or its retries in the background).
	live atomic.Pointer[bundleState]
	// stale is set while the server has been out of reach beyond the grace
	// period: live results then say STALE. contact is when the server was
	// last heard from (Unix nanoseconds).
	stale   atomic.Bool
	contact atomic.Int64
	// sessions maps a session ID to its pin; revisions holds the compiled
	// flag sets of old revisions sessions are pinned to, by revision ID.
	sessions  *lru.Cache[string, session]
	revisions *lru.Cache[string, *bundleState]
	// pinning orders first sights of sessions, so the evaluations of a
	// new session that arrive together agree on one pin.
	pinning sync.Mutex
	// registrations queues the sessions pinned at first sight, for
	// registerPins to register with the server.
	registrations chan string
	// retryUntil is when a remote provider, told 429, may call again
	// (Unix nanoseconds; 0 when it may call now).
	retryUntil atomic.Int64
	// circuit stops a remote provider from asking a server that does not
	// answer; answered says the server has answered it once.
	circuit  circuit
	answered atomic.Bool

	mu   sync.Mutex
	stop context.CancelFunc
	done chan struct{}
}

// bundleState is a compiled bundle and the ETag it was served with.
type bundleState struct {
	rev  *switchyard.Revision
	mode string
	set  *evaluator.FlagSet
	etag string
}

var (
	_ openfeature.FeatureProvider          = (*Provider)(nil)
	_ openfeature.ContextAwareStateHandler = (*Provider)(nil)
	_ openfeature.EventHandler             = (*Provider)(nil)
)

// New returns a provider for the Switchyard server at baseURL (e.g.
// "http://switchyard:8080"); an empty baseURL reads OFREP_ENDPOINT. Nothing
// is fetched until the SDK calls Init.
func New(baseURL string, opts ...Option) (*Provider, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("switchyard provider: %w", err)
	}
	if baseURL == "" {
		baseURL = os.Getenv(EnvEndpoint)
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("switchyard provider: base URL %q (or %s) must be an http or https URL", baseURL, EnvEndpoint)
	}
	return &Provider{
		cfg:           cfg,
		base:          strings.TrimRight(baseURL, "/"),
		events:        make(chan openfeature.Event, eventBuffer),
		sessions:      lru.New[string, session](cfg.sessions),
		revisions:     lru.NewSized[string](revisionsBytes, func(st *bundleState) int64 { return st.set.Size() }),
		registrations: make(chan string, registrationBuffer),
		circuit:       circuit{backoff: cfg.newBackoff()},
	}, nil
}

// Catalog returns the module catalog of the current revision, which a
// module Registry validates its registrations against at start-up: the
// live one once in-process Init has run, otherwise (remote mode, or before
// Init) the current bundle's, fetched now. The slice is shared: do not
// modify it.
func (p *Provider) Catalog(ctx context.Context) ([]switchyard.Module, error) {
	if st := p.live.Load(); st != nil {
		return st.rev.Catalog, nil
	}
	st, _, err := p.fetchBundle(ctx, 0, "")
	if err != nil {
		return nil, fmt.Errorf("switchyard provider: read the catalog: %w", err)
	}
	return st.rev.Catalog, nil
}

// Metadata names the provider.
func (p *Provider) Metadata() openfeature.Metadata { return openfeature.Metadata{Name: "switchyard"} }

// Hooks returns no hooks: the provider needs none.
func (p *Provider) Hooks() []openfeature.Hook { return nil }

// EventChannel carries PROVIDER_CONFIGURATION_CHANGED, PROVIDER_STALE,
// PROVIDER_ERROR and PROVIDER_READY (when the provider becomes ready after
// a failed Init, and on recovery) to the SDK.
func (p *Provider) EventChannel() <-chan openfeature.Event { return p.events }

// Init is InitWithContext without a deadline of the caller's; each request
// still has the provider's timeout.
func (p *Provider) Init(evalCtx openfeature.EvaluationContext) error {
	return p.InitWithContext(context.Background(), evalCtx)
}

// InitWithContext makes the provider ready. In-process it fetches the
// current flag set and starts following changes; remote it checks the
// server answers and accepts the token. When the server cannot be reached
// it fails, and keeps trying: in-process in the background, with backoff,
// until it has a usable flag set, when it emits PROVIDER_READY (until
// then evaluations answer the caller's default with PROVIDER_NOT_READY);
// remote with the circuit open, so the first evaluation after the backoff
// asks the server, and PROVIDER_READY follows its answer. A refused token
// (401/403) is PROVIDER_FATAL: retrying cannot help.
func (p *Provider) InitWithContext(ctx context.Context, _ openfeature.EvaluationContext) error {
	// A second Init replaces the first: stop following for the old one.
	if err := p.ShutdownWithContext(ctx); err != nil {
		return err
	}
	if p.cfg.mode == Remote {
		err := p.probe(ctx)
		if err == nil {
			p.answered.Store(true)
		} else if !fatal(err) {
			p.circuit.trip(time.Now())
		}
		return initError(err)
	}
	st, _, err := p.fetchBundle(ctx, 0, "")
	if fatal(err) {
		return initError(err)
	}
	if err == nil {
		p.live.Store(st)
		p.stale.Store(false)
		p.contacted()
	}
	fctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	p.mu.Lock()
	p.stop, p.done = stop, done
	p.mu.Unlock()
	go p.run(fctx, done, err == nil)
	return initError(err)
}

// Shutdown stops following changes and waits for that to end.
func (p *Provider) Shutdown() { _ = p.ShutdownWithContext(context.Background()) }

// ShutdownWithContext stops following changes, waiting until it has ended
// or ctx is done.
func (p *Provider) ShutdownWithContext(ctx context.Context) error {
	p.mu.Lock()
	stop, done := p.stop, p.done
	p.stop, p.done = nil, nil
	p.mu.Unlock()
	if stop == nil {
		return nil
	}
	stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("switchyard provider: shut down: %w", ctx.Err())
	}
}

// fatal reports whether err is the server refusing the provider's token:
// asking again cannot help.
func fatal(err error) bool {
	var se *statusError
	return errors.As(err, &se) && (se.status == http.StatusUnauthorized || se.status == http.StatusForbidden)
}

// initError marks a refused credential as fatal for the SDK.
func initError(err error) error {
	if fatal(err) {
		return &openfeature.ProviderInitError{ErrorCode: openfeature.ProviderFatalCode, Message: err.Error()}
	}
	return err
}

// BooleanEvaluation resolves a boolean flag.
func (p *Provider) BooleanEvaluation(ctx context.Context, flag string, defaultValue bool, flatCtx openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
	v, d := resolve(p, ctx, flag, defaultValue, flatCtx, evaluator.TypeBoolean)
	return openfeature.BoolResolutionDetail{Value: v, ProviderResolutionDetail: d}
}

// StringEvaluation resolves a string flag.
func (p *Provider) StringEvaluation(ctx context.Context, flag string, defaultValue string, flatCtx openfeature.FlattenedContext) openfeature.StringResolutionDetail {
	v, d := resolve(p, ctx, flag, defaultValue, flatCtx, evaluator.TypeString)
	return openfeature.StringResolutionDetail{Value: v, ProviderResolutionDetail: d}
}

// FloatEvaluation resolves a number flag as a float.
func (p *Provider) FloatEvaluation(ctx context.Context, flag string, defaultValue float64, flatCtx openfeature.FlattenedContext) openfeature.FloatResolutionDetail {
	v, d := resolve(p, ctx, flag, defaultValue, flatCtx, evaluator.TypeFloat)
	return openfeature.FloatResolutionDetail{Value: v, ProviderResolutionDetail: d}
}

// IntEvaluation resolves a number flag as an integer; a fractional value
// is a TYPE_MISMATCH.
func (p *Provider) IntEvaluation(ctx context.Context, flag string, defaultValue int64, flatCtx openfeature.FlattenedContext) openfeature.IntResolutionDetail {
	v, d := resolve(p, ctx, flag, defaultValue, flatCtx, evaluator.TypeInteger)
	return openfeature.IntResolutionDetail{Value: v, ProviderResolutionDetail: d}
}

// ObjectEvaluation resolves an object (or array) flag.
func (p *Provider) ObjectEvaluation(ctx context.Context, flag string, defaultValue any, flatCtx openfeature.FlattenedContext) openfeature.InterfaceResolutionDetail {
	v, d := resolve(p, ctx, flag, defaultValue, flatCtx, evaluator.TypeObject)
	return openfeature.InterfaceResolutionDetail{Value: v, ProviderResolutionDetail: d}
}

// resolve is every typed evaluation: it evaluates flag as type t and
// returns its value, or defaultValue when there is none (an error, a
// disabled flag, no default variant). OpenFeature requires evaluations
// never to throw and the Go SDK does not recover a provider's panic, so a
// panic anywhere in it becomes the caller's default with ERROR/GENERAL.
func resolve[T any](p *Provider, ctx context.Context, flag string, defaultValue T, flatCtx openfeature.FlattenedContext, t evaluator.Type) (value T, d openfeature.ProviderResolutionDetail) {
	defer func() {
		if v := recover(); v != nil {
			value, d = defaultValue, panicked(flag, v)
		}
	}()
	r := p.evaluate(ctx, flag, flatCtx, t)
	v, ok := r.Value.(T)
	if !ok || r.Value == nil {
		v = defaultValue
	}
	return v, detail(r)
}

// evaluate resolves flag in the provider's mode and checks its type.
func (p *Provider) evaluate(ctx context.Context, flag string, flatCtx openfeature.FlattenedContext, t evaluator.Type) evaluator.Result {
	if p.cfg.mode == Remote {
		return p.remote(ctx, flag, flatCtx).As(t)
	}
	return p.local(flag, flatCtx).As(t)
}

// detail converts a result into the SDK's resolution detail. The metadata
// is copied: the evaluator's map is shared by every evaluation of the flag,
// and parts of the SDK write into a result's metadata (the multi-provider's
// strategies add their own keys), which would otherwise race and leak into
// later evaluations. The copy is this path's one allocation.
func detail(r evaluator.Result) openfeature.ProviderResolutionDetail {
	d := openfeature.ProviderResolutionDetail{Reason: openfeature.Reason(r.Reason), Variant: r.Variant,
		FlagMetadata: maps.Clone(r.Metadata)}
	switch r.ErrorCode {
	case "":
	case providerNotReady:
		d.ResolutionError = openfeature.NewProviderNotReadyResolutionError(r.ErrorMessage)
	case evaluator.FlagNotFound:
		d.ResolutionError = openfeature.NewFlagNotFoundResolutionError(r.ErrorMessage)
	case evaluator.TypeMismatch:
		d.ResolutionError = openfeature.NewTypeMismatchResolutionError(r.ErrorMessage)
	case evaluator.ParseError:
		d.ResolutionError = openfeature.NewParseErrorResolutionError(r.ErrorMessage)
	case evaluator.TargetingKeyMissing:
		d.ResolutionError = openfeature.NewTargetingKeyMissingResolutionError(r.ErrorMessage)
	case evaluator.InvalidContext:
		d.ResolutionError = openfeature.NewInvalidContextResolutionError(r.ErrorMessage)
	default:
		d.ResolutionError = openfeature.NewGeneralResolutionError(r.ErrorMessage)
	}
	return d
}

// providerNotReady is the error code of an evaluation made before the
// provider could reach the server once: it has nothing to evaluate yet.
const providerNotReady evaluator.ResolutionError = "PROVIDER_NOT_READY"

// notReady is the result of an evaluation made before the provider could
// reach the server: the caller's default applies.
func notReady(flag string) evaluator.Result {
	return evaluator.Result{Key: flag, Reason: evaluator.ReasonError, ErrorCode: providerNotReady,
		ErrorMessage: fmt.Sprintf("flag %q: the provider has not reached the server yet; it keeps trying", flag)}
}

// generalError is a failure to evaluate at all: the caller's default
// applies.
func generalError(flag string, err error) evaluator.Result {
	return evaluator.Result{Key: flag, Reason: evaluator.ReasonError, ErrorCode: evaluator.General,
		ErrorMessage: fmt.Sprintf("flag %q: %v", flag, err)}
}

// panicked reports a recovered panic as a GENERAL error, so a bug or a
// corrupt flag set costs the caller its default value, not its process.
func panicked(flag string, v any) openfeature.ProviderResolutionDetail {
	return openfeature.ProviderResolutionDetail{Reason: openfeature.ErrorReason,
		ResolutionError: openfeature.NewGeneralResolutionError(fmt.Sprintf("flag %q: evaluation failed: %v", flag, v))}
}

// eventBuffer is how many events wait for the SDK, which drains the
// channel as they come.
const eventBuffer = 64

// emit sends an event to the SDK. It never blocks: a provider used without
// the SDK, which nobody drains, must still follow changes, so an event that
// finds the buffer full is dropped.
func (p *Provider) emit(t openfeature.EventType, details openfeature.ProviderEventDetails) {
	select {
	case p.events <- openfeature.Event{ProviderName: "switchyard", EventType: t, ProviderEventDetails: details}:
	default:
	}
}
