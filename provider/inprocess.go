package provider

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
)

// errNotReady is the failure of an evaluation before Init.
var errNotReady = errors.New("the provider is not initialised")

// local evaluates flag against the local flag set: the session's pinned
// one when the context names a session, else the live one. Only a session
// seen for the first time costs network calls. A session the server
// refuses to pin is evaluated unpinned, as the server itself would.
func (p *Provider) local(ctx context.Context, flag string, flatCtx openfeature.FlattenedContext) evaluator.Result {
	if id, _ := flatCtx[SessionIDKey].(string); id != "" {
		set, err := p.sessionSet(ctx, id)
		if err != nil {
			if r := (*refusal)(nil); errors.As(err, &r) {
				return p.unpinned(flag, flatCtx, r)
			}
			return generalError(flag, err)
		}
		return set.Evaluate(flag, flatCtx)
	}
	st := p.live.Load()
	if st == nil {
		return generalError(flag, errNotReady)
	}
	r := st.set.Evaluate(flag, flatCtx)
	if r.ErrorCode == "" && p.stale.Load() {
		r.Reason = evaluator.ReasonStale
	}
	return r
}

// snapshot is the part of a session snapshot the provider reads.
type snapshot struct {
	Revision  int64     `json:"revision"`
	ExpiresAt time.Time `json:"expires_at"`
}

// session is a session's pinned flag set, kept until the session expires
// on the server, which then pins it afresh.
type session struct {
	set     *evaluator.FlagSet
	expires time.Time
}

// StartSession pins sessionID (for userID) to the current revision on the
// server, or reads its snapshot when it exists (first writer wins), and
// keeps its flag set locally. Evaluations naming an unknown session do the
// same at first sight; starting the session explicitly moves that cost out
// of the first evaluation and records the user.
func (p *Provider) StartSession(ctx context.Context, sessionID, userID string) error {
	if p.cfg.mode == Remote {
		_, err := p.createSession(ctx, sessionID, userID)
		return err
	}
	_, err := p.pin(ctx, sessionID, userID)
	return err
}

// refusal is the server's 429 to a new session: this provider (its
// address, or its token) made more new sessions lately than it may, or the
// server holds as many as it may. Until it passes, a session not cached
// here is evaluated unpinned without asking the server.
type refusal struct {
	code  switchyard.Code
	until time.Time
}

func (r *refusal) Error() string {
	return fmt.Sprintf("the server refuses new sessions (%s) until %s", r.code, r.until.UTC().Format(time.RFC3339))
}

// newRefusal reads a 429 to POST /v1/sessions: its error code and
// Retry-After (a second when it has none).
func newRefusal(res response) *refusal {
	var body struct {
		Error struct {
			Code switchyard.Code `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(res.body, &body)
	wait, ok := retryAfter(res.header.Get("Retry-After"))
	if !ok {
		wait = time.Second
	}
	return &refusal{code: body.Error.Code, until: time.Now().Add(wait)}
}

// unpinned evaluates flag for a session the server refused to pin: the
// live values, reason STALE, metadata pin naming the limit, as the server
// answers such a session over OFREP.
func (p *Provider) unpinned(flag string, flatCtx openfeature.FlattenedContext, r *refusal) evaluator.Result {
	st := p.live.Load()
	if st == nil {
		return generalError(flag, errNotReady)
	}
	res := st.set.Evaluate(flag, flatCtx)
	if res.ErrorCode != "" {
		return res
	}
	res.Reason = evaluator.ReasonStale
	res.Metadata = maps.Clone(res.Metadata)
	if res.Metadata == nil {
		res.Metadata = map[string]any{}
	}
	res.Metadata[switchyard.MetadataPin] = switchyard.PinRateLimited
	if r.code == switchyard.CodeSessionLimit {
		res.Metadata[switchyard.MetadataPin] = switchyard.PinSessionLimit
	}
	return res
}

// sessionSet returns session id's pinned flag set, pinning it at first
// sight, or the server's refusal to pin it.
func (p *Provider) sessionSet(ctx context.Context, id string) (*evaluator.FlagSet, error) {
	if set, ok := p.cachedSession(id); ok {
		return set, nil
	}
	if r := p.refused.Load(); r != nil && time.Now().Before(r.until) {
		return nil, r
	}
	v, err, _ := p.pinning.Do(id, func() (any, error) {
		// A fetch that ended just before this one began has cached it.
		if set, ok := p.cachedSession(id); ok {
			return set, nil
		}
		return p.pin(ctx, id, "")
	})
	set, _ := v.(*evaluator.FlagSet)
	return set, err
}

// cachedSession returns session id's pinned flag set unless it is not
// cached or has expired.
func (p *Provider) cachedSession(id string) (*evaluator.FlagSet, bool) {
	s, ok := p.sessions.Get(id)
	if !ok || !time.Now().Before(s.expires) {
		return nil, false
	}
	return s.set, true
}

// pin fetches session id's snapshot (creating it if absent) and its
// revision's flag set, and caches the pinned set.
func (p *Provider) pin(ctx context.Context, id, userID string) (*evaluator.FlagSet, error) {
	snap, err := p.createSession(ctx, id, userID)
	if err != nil {
		return nil, err
	}
	set, err := p.revisionSet(ctx, snap.Revision)
	if err != nil {
		return nil, fmt.Errorf("session %q: %w", id, err)
	}
	pinned := set.Pinned()
	p.sessions.Add(id, session{set: pinned, expires: snap.ExpiresAt})
	return pinned, nil
}

// createSession calls POST /v1/sessions, which creates the session or
// returns its existing snapshot.
func (p *Provider) createSession(ctx context.Context, id, userID string) (snapshot, error) {
	body, err := json.Marshal(map[string]string{"session_id": id, "user_id": userID})
	if err != nil {
		return snapshot{}, fmt.Errorf("session %q: %w", id, err)
	}
	res, err := p.call(ctx, http.MethodPost, "/v1/sessions", body, nil)
	if err != nil {
		return snapshot{}, fmt.Errorf("session %q: %w", id, err)
	}
	if res.status == http.StatusTooManyRequests {
		r := newRefusal(res)
		p.refused.Store(r)
		return snapshot{}, fmt.Errorf("session %q: %w", id, r)
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

// revisionSet returns the flag set of revision n: the live one, a cached
// old one, or one fetched now (old revisions never change).
func (p *Provider) revisionSet(ctx context.Context, n int64) (*evaluator.FlagSet, error) {
	if st := p.live.Load(); st != nil && st.rev.Number == n {
		return st.set, nil
	}
	if set, ok := p.revisions.Get(n); ok {
		return set, nil
	}
	st, _, err := p.fetchBundle(ctx, n, "")
	if err != nil {
		return nil, err
	}
	p.revisions.Add(n, st.set)
	return st.set, nil
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

// follow keeps the live flag set current until ctx ends: over the stream
// while it is up, else by polling the bundle, reporting STALE when the
// server has been out of reach beyond the grace period.
func (p *Provider) follow(ctx context.Context, done chan struct{}) {
	defer close(done)
	contact := time.Now()
	for {
		p.stream(ctx, &contact)
		if ctx.Err() != nil {
			return
		}
		if err := p.refresh(ctx); err == nil {
			contact = time.Now()
		} else if time.Since(contact) >= p.cfg.gracePeriod && !p.stale.Swap(true) {
			p.emit(openfeature.ProviderStale, openfeature.ProviderEventDetails{
				Message: fmt.Sprintf("switchyard unreachable since %s: serving revision %d: %v",
					contact.Format(time.RFC3339), p.live.Load().rev.Number, err)})
		}
		t := time.NewTimer(p.cfg.pollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// refresh fetches the current bundle unless it is unchanged, installs it
// and tells the SDK: READY when recovering from STALE, then
// CONFIGURATION_CHANGED with the changed flags.
func (p *Provider) refresh(ctx context.Context) error {
	cur := p.live.Load()
	st, notModified, err := p.fetchBundle(ctx, 0, cur.etag)
	if err != nil {
		return err
	}
	var changed []string
	switch {
	case notModified:
	case st.mode != cur.mode:
		// The server switched modes: revision numbers now name the other
		// store's revisions, and sessions are pinned afresh there, so
		// nothing cached from the old mode may be served again.
		changed = slices.Compact(slices.Sorted(slices.Values(append(
			evaluator.ChangedFlags(nil, cur.rev, cur.mode), evaluator.ChangedFlags(nil, st.rev, st.mode)...))))
		p.revisions.Purge()
		p.sessions.Purge()
		p.live.Store(st)
	case st.rev.Number != cur.rev.Number:
		changed = evaluator.ChangedFlags(cur.rev, st.rev, st.mode)
		p.revisions.Add(cur.rev.Number, cur.set)
		p.live.Store(st)
	}
	if p.stale.Swap(false) {
		p.emit(openfeature.ProviderReady, openfeature.ProviderEventDetails{
			Message: fmt.Sprintf("switchyard reachable again at revision %d", p.live.Load().rev.Number)})
	}
	if len(changed) > 0 {
		p.emit(openfeature.ProviderConfigChange, openfeature.ProviderEventDetails{
			Message:       fmt.Sprintf("revision %d", st.rev.Number),
			FlagChanges:   changed,
			EventMetadata: map[string]any{"revision": st.rev.Number}})
	}
	return nil
}

// stream follows GET /v1/stream until it ends, refreshing whenever it
// announces a revision other than the live one. Every line read counts as
// contact with the server. A stream silent for missedHeartbeats of the
// heartbeat interval its events advertise is lost: it is closed, and
// follow resyncs.
func (p *Provider) stream(ctx context.Context, contact *time.Time) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The connection must answer within the timeout, then send something
	// (an event or a heartbeat) at least every silence.
	idle := time.AfterFunc(p.cfg.timeout, cancel)
	defer idle.Stop()
	silence := missedHeartbeats * switchyard.StreamHeartbeat
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/v1/stream", nil)
	if err != nil {
		return
	}
	p.setHeaders(req)
	req.Header.Set("Accept", "text/event-stream")
	res, err := p.cfg.client.Do(req)
	if err != nil {
		return
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return
	}
	r := bufio.NewReader(res.Body)
	var data string
	for {
		idle.Reset(silence)
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		// Any line, a heartbeat too, shows the server is there: an idle
		// stream must not make its first hiccup look like a long outage.
		*contact = time.Now()
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "data:"):
			data = strings.TrimSpace(strings.TrimPrefix(line, "data:"))
		case line == "" && data != "":
			var ev switchyard.RevisionEvent
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				return
			}
			data = ""
			if ev.HeartbeatMS > 0 {
				silence = missedHeartbeats * time.Duration(ev.HeartbeatMS) * time.Millisecond
			}
			if live := p.live.Load(); ev.Revision != live.rev.Number || ev.Mode != live.mode || p.stale.Load() {
				// The refresh has a deadline of its own; the silence is
				// the stream's.
				idle.Stop()
				if err := p.refresh(ctx); err != nil {
					return
				}
			}
		}
	}
}
