package provider

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/lru"
)

// ErrModuleDisabled is what Resolve returns when the module is switched
// off for the caller: operators disable a module in an incident, and the
// application must then skip it, which it can only do if it can tell this
// apart from a failure.
var ErrModuleDisabled = errors.New("module disabled")

// UnregisteredError is Resolve's answer when the runtime serves a version
// the application has no implementation for (an operator added it to the
// catalog after the application started). It names both, so the log says
// which implementation is missing.
type UnregisteredError struct {
	Module, Version string
}

func (e *UnregisteredError) Error() string {
	return fmt.Sprintf("module %q: version %q is served but has no registered implementation", e.Module, e.Version)
}

// ModuleClient is the part of an OpenFeature client Resolve needs;
// *openfeature.Client has it, and tests can supply anything smaller.
type ModuleClient interface {
	StringValueDetails(ctx context.Context, flag string, defaultValue string, evalCtx openfeature.EvaluationContext, options ...openfeature.Option) (openfeature.StringEvaluationDetails, error)
}

var _ ModuleClient = (*openfeature.Client)(nil)

// CatalogSource supplies the server's module catalog to Validate; the
// Provider is one, and a fixed catalog is another (CatalogFunc).
type CatalogSource interface {
	Catalog(ctx context.Context) ([]switchyard.Module, error)
}

var _ CatalogSource = (*Provider)(nil)

// CatalogFunc adapts a function, e.g. one returning a fixed catalog in a
// test, to a CatalogSource.
type CatalogFunc func(ctx context.Context) ([]switchyard.Module, error)

// Catalog calls f.
func (f CatalogFunc) Catalog(ctx context.Context) ([]switchyard.Module, error) { return f(ctx) }

// VersionStore records the version of each module a user was last served,
// which is how the registry notices a change and bridges the user's state
// exactly once. The in-memory default forgets on restart and is per
// process; applications running several replicas, or that must never miss
// a bridge, plug a shared, durable one (a table keyed by module and user).
type VersionStore interface {
	// Last returns the version last recorded for user, and false when
	// there is none.
	Last(ctx context.Context, module, user string) (version string, ok bool, err error)
	// Record makes version the last one served to user.
	Record(ctx context.Context, module, user, version string) error
}

// DefaultVersionStoreSize is how many (module, user) pairs the default
// in-memory VersionStore remembers.
const DefaultVersionStoreSize = 100_000

// MemoryVersionStore is the in-memory VersionStore. It is bounded: beyond
// its size it forgets the least recently served users, and a forgotten
// user's next version change is recorded without a bridge, as at first
// sight. Size it above the number of users active between two changes.
type MemoryVersionStore struct {
	last *lru.Cache[versionKey, string]
}

var _ VersionStore = (*MemoryVersionStore)(nil)

// versionKey identifies one user of one module.
type versionKey struct{ module, user string }

// NewMemoryVersionStore returns an empty in-memory store of at most size
// (module, user) pairs.
func NewMemoryVersionStore(size int) *MemoryVersionStore {
	return &MemoryVersionStore{last: lru.New[versionKey, string](size)}
}

// Last returns the version last recorded for user of module.
func (s *MemoryVersionStore) Last(_ context.Context, module, user string) (string, bool, error) {
	v, ok := s.last.Get(versionKey{module, user})
	return v, ok, nil
}

// Record remembers version as user's last of module.
func (s *MemoryVersionStore) Record(_ context.Context, module, user, version string) error {
	s.last.Add(versionKey{module, user}, version)
	return nil
}

// BridgeFunc moves one user's state from one version of a module to
// another, e.g. converting mastery scores kept by v1 into v0's form. An
// error leaves the transition unrecorded, so the next Resolve tries again.
type BridgeFunc func(ctx context.Context, user string) error

// RegistryOption configures a Registry.
type RegistryOption func(*registryConfig)

type registryConfig struct {
	versions VersionStore
}

// WithVersionStore replaces the in-memory record of each user's last
// version, e.g. with a shared one when the application runs several
// replicas.
func WithVersionStore(s VersionStore) RegistryOption {
	return func(c *registryConfig) { c.versions = s }
}

// Registry maps each module version to the application's implementation
// of it, so a request gets the implementation the runtime serves it
// without a switch statement per module, and moves a user's state across
// version changes with the registered bridges. Register everything, then
// Validate against the server's catalog before serving; Resolve is then
// safe for concurrent use.
type Registry[T any] struct {
	versions VersionStore
	users    keyedMutex

	mu      sync.RWMutex
	impls   map[string]map[string]T
	bridges map[transition]BridgeFunc
	// catalog is the catalog Validate checked against; Register and
	// RegisterBridge check against it from then on.
	catalog map[string]switchyard.Module
}

// transition is one version change of one module.
type transition struct{ module, from, to string }

// NewRegistry returns an empty registry with the in-memory VersionStore
// unless an option says otherwise.
func NewRegistry[T any](opts ...RegistryOption) *Registry[T] {
	cfg := registryConfig{}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.versions == nil {
		cfg.versions = NewMemoryVersionStore(DefaultVersionStoreSize)
	}
	return &Registry[T]{versions: cfg.versions, impls: map[string]map[string]T{}, bridges: map[transition]BridgeFunc{}}
}

// Register makes impl the implementation of module at version. A version
// registered twice is an error, as is (after Validate) one the catalog
// does not know: both are mistakes to catch at start-up.
func (r *Registry[T]) Register(module, version string, impl T) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if module == "" || version == "" {
		return fmt.Errorf("module registry: register %q at %q: module and version are required", module, version)
	}
	if _, dup := r.impls[module][version]; dup {
		return fmt.Errorf("module registry: module %q version %q is already registered", module, version)
	}
	if err := r.known(module, version); err != nil {
		return err
	}
	if r.impls[module] == nil {
		r.impls[module] = map[string]T{}
	}
	r.impls[module][version] = impl
	return nil
}

// RegisterBridge makes fn the bridge Resolve runs, once per user, when the
// version of module a user is served changes from from to to. Transitions
// without a bridge need none and are only recorded.
func (r *Registry[T]) RegisterBridge(module, from, to string, fn BridgeFunc) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := transition{module, from, to}
	switch {
	case module == "" || from == "" || to == "" || fn == nil:
		return fmt.Errorf("module registry: bridge %q %q -> %q: module, both versions and a function are required", module, from, to)
	case from == to:
		return fmt.Errorf("module registry: bridge %q %q -> %q: a bridge needs two different versions", module, from, to)
	}
	if _, dup := r.bridges[t]; dup {
		return fmt.Errorf("module registry: bridge %q %q -> %q is already registered", module, from, to)
	}
	if err := errors.Join(r.known(module, from), r.known(module, to)); err != nil {
		return err
	}
	r.bridges[t] = fn
	return nil
}

// Validate compares everything registered with the server's catalog and
// reports every module or version it does not know, so a typo or a
// version the server never heard of stops the application at start-up
// instead of failing requests. Versions of the catalog left unregistered
// are allowed: the catalog may grow before the application does, and
// Resolve reports them with an *UnregisteredError.
func (r *Registry[T]) Validate(ctx context.Context, src CatalogSource) error {
	modules, err := src.Catalog(ctx)
	if err != nil {
		return fmt.Errorf("module registry: read the catalog: %w", err)
	}
	catalog := make(map[string]switchyard.Module, len(modules))
	for _, m := range modules {
		catalog[m.Key] = m
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.catalog = catalog
	var errs []error
	for module, impls := range r.impls {
		for version := range impls {
			errs = append(errs, r.known(module, version))
		}
	}
	for t := range r.bridges {
		errs = append(errs, r.known(t.module, t.from), r.known(t.module, t.to))
	}
	if err := errors.Join(errs...); err != nil {
		r.catalog = nil
		return err
	}
	return nil
}

// known checks module and version against the validated catalog; before
// Validate every name passes. The caller holds r.mu.
func (r *Registry[T]) known(module, version string) error {
	if r.catalog == nil {
		return nil
	}
	m, ok := r.catalog[module]
	if !ok {
		return fmt.Errorf("module registry: module %q is not in the server's catalog", module)
	}
	if !m.Allows(version) {
		return fmt.Errorf("module registry: module %q has no version %q in the server's catalog (it has %v)", module, version, m.Versions)
	}
	return nil
}

// Resolve returns the implementation of module that evalCtx is served:
// it evaluates module.<module> (a session in evalCtx gets its pinned
// version), answers ErrModuleDisabled when the module is off, and an
// *UnregisteredError when the version has no implementation. When the
// user (evalCtx's targeting key) was last served another version, the
// bridge for that change runs first, once: calls for the same user wait
// for each other. Without a targeting key no bridge runs and nothing is
// recorded.
func (r *Registry[T]) Resolve(ctx context.Context, client ModuleClient, module string, evalCtx openfeature.EvaluationContext) (T, error) {
	var zero T
	d, err := client.StringValueDetails(ctx, switchyard.ModuleFlagKey(module), "", evalCtx)
	switch {
	case d.Reason == openfeature.DisabledReason:
		return zero, fmt.Errorf("module %q: %w", module, ErrModuleDisabled)
	case err != nil:
		return zero, fmt.Errorf("module %q: evaluate %s: %w", module, switchyard.ModuleFlagKey(module), err)
	case d.Value == "":
		return zero, fmt.Errorf("module %q: %s resolved no version (reason %s)", module, switchyard.ModuleFlagKey(module), d.Reason)
	}
	version := d.Value
	r.mu.RLock()
	impl, ok := r.impls[module][version]
	r.mu.RUnlock()
	if !ok {
		return zero, &UnregisteredError{Module: module, Version: version}
	}
	if user := evalCtx.TargetingKey(); user != "" {
		if err := r.bridge(ctx, module, user, version); err != nil {
			return zero, err
		}
	}
	return impl, nil
}

// bridge runs the bridge from user's last version of module to version,
// if they differ, and records version. It holds the user's lock
// throughout, so concurrent calls see the transition at most once.
func (r *Registry[T]) bridge(ctx context.Context, module, user, version string) error {
	unlock := r.users.lock(versionKey{module, user})
	defer unlock()
	last, seen, err := r.versions.Last(ctx, module, user)
	if err != nil {
		return fmt.Errorf("module %q: read user %q's last version: %w", module, user, err)
	}
	if seen && last == version {
		return nil
	}
	if seen {
		r.mu.RLock()
		fn := r.bridges[transition{module, last, version}]
		r.mu.RUnlock()
		if fn != nil {
			if err := fn(ctx, user); err != nil {
				return fmt.Errorf("module %q: bridge user %q from %s to %s: %w", module, user, last, version, err)
			}
		}
	}
	if err := r.versions.Record(ctx, module, user, version); err != nil {
		return fmt.Errorf("module %q: record user %q at %s: %w", module, user, version, err)
	}
	return nil
}

// keyedMutex is one mutex per key, held only while some caller uses it, so
// it grows with concurrent users, not with all users ever seen.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[versionKey]*refMutex
}

// refMutex is a mutex and how many callers hold or wait for it.
type refMutex struct {
	sync.Mutex
	refs int
}

// lock locks key's mutex and returns its unlock.
func (k *keyedMutex) lock(key versionKey) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[versionKey]*refMutex{}
	}
	m := k.locks[key]
	if m == nil {
		m = &refMutex{}
		k.locks[key] = m
	}
	m.refs++
	k.mu.Unlock()
	m.Lock()
	return func() {
		m.Unlock()
		k.mu.Lock()
		if m.refs--; m.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
