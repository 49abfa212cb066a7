package provider

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
)

// local evaluates flag against the local flag set: the session's pinned
// one when the context names a session, else the live one. It makes no
// network call: a session seen for the first time is pinned here, to the
// live revision, and registered with the server in the background.
func (p *Provider) local(flag string, flatCtx openfeature.FlattenedContext) evaluator.Result {
	st := p.live.Load()
	if st == nil {
		return notReady(flag)
	}
	if id, _ := flatCtx[SessionIDKey].(string); id != "" {
		set, err := p.sessionSet(id, st)
		if err != nil {
			return evaluator.Result{Key: flag, Reason: evaluator.ReasonError, ErrorCode: evaluator.InvalidContext,
				ErrorMessage: fmt.Sprintf("flag %q: %s: %s", flag, SessionIDKey, switchyard.AsError(err).Message)}
		}
		return set.Evaluate(flag, flatCtx)
	}
	r := st.set.Evaluate(flag, flatCtx)
	if r.ErrorCode == "" && p.stale.Load() {
		r.Reason = evaluator.ReasonStale
	}
	return r
}

// snapshot is the part of a session snapshot the provider reads.
type snapshot struct {
	Revision   int64     `json:"revision"`
	RevisionID string    `json:"revision_id"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// session is a session's pin: the revision it is pinned to, compiled, kept
// until the session expires on the server, which then pins it afresh.
type session struct {
	rev     *bundleState
	expires time.Time
}

// StartSession pins sessionID (for userID) to the current revision on the
// server, or reads its snapshot when it exists (first writer wins), and
// keeps its flag set locally. Evaluations naming an unknown session pin it
// themselves, without waiting for the server; starting the session
// explicitly records the user and makes the server's pin the one served
// from the first evaluation on.
func (p *Provider) StartSession(ctx context.Context, sessionID, userID string) error {
	snap, err := p.createSession(ctx, sessionID, userID, nil)
	if err != nil || p.cfg.mode == Remote {
		return err
	}
	st, err := p.revisionSet(ctx, snap.Revision, snap.RevisionID)
	if err != nil {
		return fmt.Errorf("session %q: %w", sessionID, err)
	}
	p.sessions.Add(sessionID, session{rev: st, expires: snap.ExpiresAt})
	return nil
}

// sessionSet returns session id's pinned flag set, pinning it at first
// sight to live, the live revision; a session ID the server would refuse
// (empty, too long, with spaces) is refused here too.
func (p *Provider) sessionSet(id string, live *bundleState) (*evaluator.FlagSet, error) {
	if s, ok := p.cachedSession(id); ok {
		return s.rev.set.Pinned(), nil
	}
	if err := switchyard.ValidateSessionID(id); err != nil {
		return nil, err
	}
	p.pinning.Lock()
	defer p.pinning.Unlock()
	// Another evaluation of the session may have pinned it meanwhile.
	if s, ok := p.cachedSession(id); ok {
		return s.rev.set.Pinned(), nil
	}
	p.sessions.Add(id, session{rev: live, expires: time.Now().Add(localPinTTL)})
	select {
	case p.registrations <- id:
	default:
		// Full: the session keeps its local pin, unregistered.
	}
	return live.set.Pinned(), nil
}

// cachedSession returns session id's pin unless it is not cached or has
// expired.
func (p *Provider) cachedSession(id string) (session, bool) {
	s, ok := p.sessions.Get(id)
	if !ok || !time.Now().Before(s.expires) {
		return session{}, false
	}
	return s, true
}

// registerPins registers the sessions pinned at first sight with the
// server, one at a time, until ctx ends.
func (p *Provider) registerPins(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-p.registrations:
			p.register(ctx, id)
		}
	}
}

// register registers session id's local pin with the server, which pins
// the session to that revision unless it has a pin already (first writer
// wins, as when replicas pin a session): from then on the server's pin is
// served, with the server's expiry. While the server cannot be reached it
// retries with backoff; a session the server refuses, or no longer
// cached, is left as it is.
func (p *Provider) register(ctx context.Context, id string) {
	b := p.cfg.newBackoff()
	b.reset()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(b.wait()):
		}
		local, ok := p.sessions.Get(id)
		if !ok {
			return
		}
		snap, err := p.createSession(ctx, id, "", local.rev.rev)
		if err != nil {
			if retryable(err) {
				continue
			}
			return
		}
		st := local.rev
		if snap.Revision != st.rev.Number || snap.RevisionID != st.rev.ID {
			if st, err = p.revisionSet(ctx, snap.Revision, snap.RevisionID); err != nil {
				if retryable(err) {
					continue
				}
				return
			}
		}
		p.pinning.Lock()
		// Unless the session was pinned again meanwhile (a history change
		// purged it, it expired and was seen anew).
		if cur, ok := p.sessions.Get(id); ok && cur == local {
			p.sessions.Add(id, session{rev: st, expires: snap.ExpiresAt})
		}
		p.pinning.Unlock()
		return
	}
}

// retryable reports whether asking the server again may succeed: it did
// not answer, or answered that it could not answer now.
func retryable(err error) bool {
	var se *statusError
	return !errors.As(err, &se) || se.status >= http.StatusInternalServerError || se.status == http.StatusTooManyRequests
}

// createSession calls POST /v1/sessions, which creates the session,
// pinned to rev when set, or returns its existing snapshot.
func (p *Provider) createSession(ctx context.Context, id, userID string, rev *switchyard.Revision) (snapshot, error) {
	req := map[string]any{"session_id": id, "user_id": userID}
	if rev != nil && rev.ID != "" {
		req["revision"], req["revision_id"] = rev.Number, rev.ID
	}
	body, err := json.Marshal(req)
	if err != nil {
		return snapshot{}, fmt.Errorf("session %q: %w", id, err)
	}
	res, err := p.call(ctx, http.MethodPost, "/v1/sessions", body, nil)
	if err != nil {
		return snapshot{}, fmt.Errorf("session %q: %w", id, err)
	}
	if res.status != http.StatusOK && res.status != http.StatusCreated {
		return snapshot{}, fmt.Errorf("session %q: %w", id, unexpected(http.MethodPost, "/v1/sessions", res))
	}
	var snap snapshot
	if err := json.Unmarshal(res.body, &snap); err != nil || snap.Revision < 1 {
		return snapshot{}, fmt.Errorf("session %q: the server answered an unreadable snapshot: %s", id, res.body)
	}
	return snap, nil
}

// revisionSet returns revision n, ID id (empty: whichever the server
// numbers n), compiled: the live one, a cached old one, or one fetched now
// (old revisions never change).
func (p *Provider) revisionSet(ctx context.Context, n int64, id string) (*bundleState, error) {
	if st := p.live.Load(); st != nil && st.rev.Number == n && (id == "" || st.rev.ID == id) {
		return st, nil
	}
	if id != "" {
		if st, ok := p.revisions.Get(id); ok {
			return st, nil
		}
	}
	st, _, err := p.fetchBundle(ctx, n, "")
	if err != nil {
		return nil, err
	}
	if id != "" && st.rev.ID != id {
		return nil, fmt.Errorf("the server's revision %d is %s, not %s: its history changed", n, st.rev.ID, id)
	}
	p.revisions.Add(st.rev.ID, st)
	return st, nil
}

// fetchBundle fetches and compiles revision n (the current one when n is
// 0), from the live flag set, so the two share what did not change. With
// etag set, an unchanged bundle answers notModified.
func (p *Provider) fetchBundle(ctx context.Context, n int64, etag string) (st *bundleState, notModified bool, err error) {
	path := "/v1/bundle"
	if n > 0 {
		path += "?revision=" + strconv.FormatInt(n, 10)
	}
	var header http.Header
	if etag != "" {
		header = http.Header{"If-None-Match": {etag}}
	}
	res, err := p.call(ctx, http.MethodGet, path, nil, header)
	if err != nil {
		return nil, false, err
	}
	switch res.status {
	case http.StatusOK:
	case http.StatusNotModified:
		return nil, true, nil
	default:
		return nil, false, unexpected(http.MethodGet, path, res)
	}
	var b switchyard.Bundle
	if err := json.Unmarshal(res.body, &b); err != nil || b.Revision == nil {
		return nil, false, fmt.Errorf("GET %s: the bundle is unreadable: %v", path, err)
	}
	intMetadata(b.Revision.Metadata)
	for _, f := range b.Revision.Flags {
		intMetadata(f.Metadata)
	}
	// Compiled from the live flag set of the same mode, the revision
	// shares every compiled flag it did not change with it.
	var base *evaluator.FlagSet
	if cur := p.live.Load(); cur != nil && cur.mode == b.Mode {
		base = cur.set
	}
	set, err := evaluator.CompileFrom(ctx, base, b.Revision, b.Mode)
	if err != nil {
		return nil, false, fmt.Errorf("GET %s: compile revision %d: %w", path, b.Revision.Number, err)
	}
	return &bundleState{rev: b.Revision, mode: b.Mode, set: set, etag: res.header.Get("ETag")}, false, nil
}

// intMetadata turns integral numbers in metadata, which JSON decodes as
// float64, into int64: OpenFeature reads integer metadata as int64.
func intMetadata(md map[string]any) {
	for k, v := range md {
		if f, ok := v.(float64); ok && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			md[k] = int64(f)
		}
	}
}

// run makes the provider ready, when Init could not, then follows the
// server until ctx ends: it watches for staleness, registers the sessions
// pinned at first sight and keeps the live flag set current.
func (p *Provider) run(ctx context.Context, done chan struct{}, ready bool) {
	defer close(done)
	if !ready && !p.retryInit(ctx) {
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { p.watchStale(ctx) })
	wg.Go(func() { p.registerPins(ctx) })
	p.follow(ctx)
	wg.Wait()
}

// retryInit fetches the current flag set with backoff until it gets a
// usable one, then emits PROVIDER_READY and returns true; it returns false
// when ctx ends or the server refuses the token, which it reports as
// PROVIDER_ERROR with PROVIDER_FATAL. Its first attempt waits one backoff
// interval: Init has just failed, and the SDK records that first.
func (p *Provider) retryInit(ctx context.Context) bool {
	b := p.cfg.newBackoff()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(b.wait()):
		}
		st, _, err := p.fetchBundle(ctx, 0, "")
		switch {
		case fatal(err):
			p.emit(openfeature.ProviderError, openfeature.ProviderEventDetails{Message: err.Error(),
				ErrorCode: openfeature.ProviderFatalCode})
			return false
		case err != nil:
			continue
		}
		p.live.Store(st)
		p.contacted()
		p.emit(openfeature.ProviderReady, openfeature.ProviderEventDetails{
			Message: fmt.Sprintf("switchyard reached at revision %d", st.rev.Number)})
		return true
	}
}

// contacted records that the server was heard from now, and emits
// PROVIDER_READY when that ends a STALE period.
func (p *Provider) contacted() {
	p.contact.Store(time.Now().UnixNano())
	if p.stale.Load() && p.stale.CompareAndSwap(true, false) {
		p.emit(openfeature.ProviderReady, openfeature.ProviderEventDetails{
			Message: fmt.Sprintf("switchyard reachable again at revision %d", p.live.Load().rev.Number)})
	}
}

// watchStale emits PROVIDER_STALE when the server has not been heard from
// for the grace period, on a timer of its own, so it comes at the end of
// the grace period, whatever the stream and the polls are doing.
func (p *Provider) watchStale(ctx context.Context) {
	t := time.NewTimer(p.cfg.gracePeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		last := time.Unix(0, p.contact.Load())
		if rest := p.cfg.gracePeriod - time.Since(last); rest > 0 {
			t.Reset(rest)
			continue
		}
		if !p.stale.Swap(true) {
			p.emit(openfeature.ProviderStale, openfeature.ProviderEventDetails{
				Message: fmt.Sprintf("switchyard unreachable since %s: serving revision %d",
					last.UTC().Format(time.RFC3339), p.live.Load().rev.Number)})
		}
		t.Reset(p.cfg.gracePeriod)
	}
}

// follow keeps the live flag set current until ctx ends, over the stream:
// a stream that had settled is reconnected at once when it ends, and the
// new stream's first event names the server's current revision, so
// whatever changed meanwhile is fetched. A stream that cannot be opened is
// tried again with backoff, the bundle polled at each attempt; where the
// server has no stream, the bundle is polled every poll interval.
func (p *Provider) follow(ctx context.Context) {
	b := p.cfg.newBackoff()
	for {
		lived, supported := p.stream(ctx)
		if ctx.Err() != nil {
			return
		}
		if lived >= streamSettled {
			b.reset()
		}
		if lived < 0 {
			// Errors are retried at the next attempt; STALE is the watcher's.
			_ = p.refresh(ctx)
		}
		wait := b.wait()
		if !supported {
			wait = p.cfg.pollInterval
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// current reports whether ev names the revision served: the same ID (or,
// from a server without IDs, the same number) in the same mode.
func (p *Provider) current(ev switchyard.RevisionEvent) bool {
	live := p.live.Load()
	return ev.RevisionID == live.rev.ID && ev.Revision == live.rev.Number && ev.Mode == live.mode
}

// refresh fetches the current bundle unless it is the one served, installs
// it and tells the SDK which flags changed. A revision whose parent is the
// one served is its successor; any other is either a later one of the same
// history (changes were missed) or one of another history (the server's
// store was replaced or rewound), and the server is asked which: whether
// its revision numbered as the one served is still that one. Another
// history drops every revision and session cached and changes every flag;
// the same history with a lower number is a server behind this provider
// (a replica not caught up yet), and is not installed.
func (p *Provider) refresh(ctx context.Context) error {
	cur := p.live.Load()
	st, notModified, err := p.fetchBundle(ctx, 0, cur.etag)
	if err != nil {
		return err
	}
	p.contacted()
	if notModified || st.rev.ID == cur.rev.ID && st.rev.Number == cur.rev.Number && st.mode == cur.mode {
		return nil
	}
	switched := st.mode != cur.mode
	if !switched && (st.rev.Parent == "" || st.rev.Parent != cur.rev.ID) {
		held, err := p.holds(ctx, cur)
		if err != nil {
			return err
		}
		if held && st.rev.Number <= cur.rev.Number {
			return nil
		}
		switched = !held
	}
	var changed []string
	if switched {
		changed = slices.Compact(slices.Sorted(slices.Values(append(
			evaluator.ChangedFlags(nil, cur.rev, cur.mode), evaluator.ChangedFlags(nil, st.rev, st.mode)...))))
		p.revisions.Purge()
		p.sessions.Purge()
	} else {
		changed = evaluator.ChangedFlags(cur.rev, st.rev, st.mode)
		p.revisions.Add(cur.rev.ID, cur)
	}
	p.live.Store(st)
	if len(changed) > 0 {
		p.emit(openfeature.ProviderConfigChange, openfeature.ProviderEventDetails{
			Message:       fmt.Sprintf("revision %d", st.rev.Number),
			FlagChanges:   changed,
			EventMetadata: map[string]any{"revision": st.rev.Number, "revision_id": st.rev.ID}})
	}
	return nil
}

// holds asks the server whether its history still holds st, the revision
// served here: whether its bundle of st's number has st's ETag.
func (p *Provider) holds(ctx context.Context, st *bundleState) (bool, error) {
	path := "/v1/bundle?revision=" + strconv.FormatInt(st.rev.Number, 10)
	res, err := p.call(ctx, http.MethodGet, path, nil, http.Header{"If-None-Match": {st.etag}})
	if err != nil {
		return false, err
	}
	switch res.status {
	case http.StatusNotModified:
		return true, nil
	case http.StatusOK, http.StatusNotFound:
		return false, nil
	}
	return false, unexpected(http.MethodGet, path, res)
}

// stream follows GET /v1/stream until it ends, refreshing whenever it
// announces a revision other than the live one. It returns how long the
// stream was open after its first event (negative when it never sent
// one), and whether the server has a stream at all. Every line read
// counts as contact with the server. A stream silent for missedHeartbeats
// of the heartbeat interval its events advertise is lost: it is closed,
// and follow reconnects.
func (p *Provider) stream(ctx context.Context) (lived time.Duration, supported bool) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var opened time.Time
	defer func() {
		lived = -1
		if !opened.IsZero() {
			lived = time.Since(opened)
		}
	}()
	// The connection must answer within the timeout, then send something
	// (an event or a heartbeat) at least every silence.
	idle := time.AfterFunc(p.cfg.timeout, cancel)
	defer idle.Stop()
	silence := missedHeartbeats * switchyard.StreamHeartbeat
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/v1/stream", nil)
	if err != nil {
		return 0, true
	}
	p.setHeaders(req)
	req.Header.Set("Accept", "text/event-stream")
	res, err := p.cfg.client.Do(req)
	if err != nil {
		return 0, true
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return 0, false
	default:
		return 0, true
	}
	r := bufio.NewReader(res.Body)
	var data string
	for {
		idle.Reset(silence)
		line, err := r.ReadString('\n')
		if err != nil {
			return 0, true
		}
		// Any line, a heartbeat too, shows the server is there.
		p.contacted()
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "data:"):
			data = strings.TrimSpace(strings.TrimPrefix(line, "data:"))
		case line == "" && data != "":
			var ev switchyard.RevisionEvent
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				return 0, true
			}
			data = ""
			if opened.IsZero() {
				opened = time.Now()
			}
			if ev.HeartbeatMS > 0 {
				silence = missedHeartbeats * time.Duration(ev.HeartbeatMS) * time.Millisecond
			}
			if !p.current(ev) {
				// The refresh has a deadline of its own; the silence is
				// the stream's.
				idle.Stop()
				if err := p.refresh(ctx); err != nil {
					return 0, true
				}
			}
		}
	}
}
