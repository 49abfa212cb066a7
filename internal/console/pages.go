package console

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/importer"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/store"
)

// switchView is one system flag as the System page shows it: its state,
// what it means, and the change that set it.
type switchView struct {
	Flag  string
	On    bool
	Means string
	// Last is the newest applied change of the flag among the audit
	// entries read; nil when none was found.
	Last *store.AuditEntry
}

// switchMeaning says what each system flag does while it is on.
var switchMeaning = map[string]string{
	switchyard.ExamMode:      "exams are running: heavy work (recompute, bulk import) is refused; sessions keep working.",
	switchyard.FreezeUpdates: "the emergency brake: application state writes are refused.",
	switchyard.AdminFreeze:   "every admin change but lifting it is refused, imports and the mode switch included.",
}

// systemView is the System page.
type systemView struct {
	Error     *apiError
	Status    control.Status
	Posture   control.Posture
	Readiness control.Readiness
	Switches  []switchView
}

// systemPage serves the system mode, the three switches, and readiness.
func (c *Console) systemPage(w http.ResponseWriter, r signedIn) {
	ctx := r.Context()
	v := systemView{Posture: c.core.Posture(ctx), Readiness: c.core.Readiness(ctx)}
	st, err := c.core.Status(ctx)
	if err != nil {
		v.Error = apiErrorOf(err)
	} else {
		v.Status = st
		last := map[string]*store.AuditEntry{}
		// The newest change of each switch; an older one is in the audit
		// log, past what is read here.
		_, _, err := c.scanAudit(ctx, 0, len(switchyard.SystemFlagNames), recentScan, func(e store.AuditEntry) bool {
			if e.Action != "set_flag" || e.Outcome != store.OutcomeApplied || last[e.Target] != nil {
				return false
			}
			if _, ok := switchMeaning[e.Target]; !ok {
				return false
			}
			last[e.Target] = &e
			return true
		})
		if err != nil {
			v.Error = apiErrorOf(err)
		}
		for _, name := range switchyard.SystemFlagNames {
			on, _ := st.Flags.Get(name)
			v.Switches = append(v.Switches, switchView{Flag: name, On: on, Means: switchMeaning[name], Last: last[name]})
		}
	}
	c.render(w, r.Request, http.StatusOK, "system", c.pageView(r, "system", "System", st.Revision, v))
}

// moduleRow is one module as the Runtime page shows it: what the active
// profile gives it, the override, and what it resolves to.
type moduleRow struct {
	Module  switchyard.Module
	Profile switchyard.ProfileEntry
	// Override is what the module's override sets ("v0", "off", "v0,
	// off"); empty when it has none.
	Override string
	Resolved switchyard.ResolvedModule
}

// overrideText shows what an override sets.
func overrideText(o switchyard.Override) string {
	var parts []string
	if o.Version != nil {
		parts = append(parts, *o.Version)
	}
	if o.Enabled != nil {
		parts = append(parts, map[bool]string{true: "on", false: "off"}[*o.Enabled])
	}
	return strings.Join(parts, ", ")
}

// runtimeView is the Runtime page.
type runtimeView struct {
	Error    *apiError
	Status   control.Status
	Profiles []string
	Modules  []moduleRow
}

// runtimePage serves the active profile and every module's state.
func (c *Console) runtimePage(w http.ResponseWriter, r signedIn) {
	st, err := c.core.Status(r.Context())
	v := runtimeView{Error: errorOrNil(err), Status: st, Profiles: slices.Sorted(maps.Keys(st.Profiles))}
	profile := st.Profiles[st.Profile]
	for _, m := range st.Catalog {
		v.Modules = append(v.Modules, moduleRow{Module: m, Profile: profile.Modules[m.Key], Override: overrideText(st.Overrides[m.Key]),
			Resolved: st.Modules[m.Key]})
	}
	c.render(w, r.Request, http.StatusOK, "runtime", c.pageView(r, "runtime", "Runtime", st.Revision, v))
}

// maxListed bounds the flags the Flags page lists at once: a revision may
// hold ten thousand, and the search narrows them.
const maxListed = 500

// flagRow is one general flag in the Flags page's list.
type flagRow struct {
	Key       string
	State     switchyard.State
	Default   string
	Variants  int
	Targeting bool
}

// flagsView is the Flags page.
type flagsView struct {
	Error *apiError
	Query string
	Flags []flagRow
	// Matched counts the flags the search matched, of Total.
	Matched, Total int
	Formats        []string
}

// flagsPage serves the general flags, searched by key, with the import
// and export forms.
func (c *Console) flagsPage(w http.ResponseWriter, r signedIn) {
	v := flagsView{Query: strings.TrimSpace(r.URL.Query().Get("q")), Formats: importer.Formats}
	rev, err := c.current(r.Context())
	if err != nil {
		v.Error = apiErrorOf(err)
		c.render(w, r.Request, http.StatusOK, "flags", c.pageView(r, "flags", "Flags", 0, v))
		return
	}
	v.Total = len(rev.Flags)
	query := strings.ToLower(v.Query)
	for _, key := range slices.Sorted(maps.Keys(rev.Flags)) {
		if !strings.Contains(strings.ToLower(key), query) {
			continue
		}
		if v.Matched++; len(v.Flags) == maxListed {
			continue
		}
		f := rev.Flags[key]
		v.Flags = append(v.Flags, flagRow{Key: key, State: f.State, Default: flagValue(f, true), Variants: len(f.Variants),
			Targeting: len(f.Targeting) > 0})
	}
	c.render(w, r.Request, http.StatusOK, "flags", c.pageView(r, "flags", "Flags", rev.Number, v))
}

// current returns the store's current revision: its number read from the
// store, as the status is, and the revision itself from the core's cache.
func (c *Console) current(ctx context.Context) (*switchyard.Revision, error) {
	st, err := c.core.Status(ctx)
	if err != nil {
		return nil, err
	}
	b, err := c.core.Bundle(ctx, st.Revision)
	if err != nil {
		return nil, err
	}
	return b.Revision, nil
}

// variantRow is one variant of a flag.
type variantRow struct {
	Name, Value string
	Default     bool
}

// evalResult is what the playground's evaluation gave.
type evalResult struct {
	Value, Variant, Reason, ErrorCode, ErrorMessage, Metadata string
}

// flagView is a flag's page: its definition, its recent changes and the
// evaluation playground.
type flagView struct {
	Error *apiError
	Key   string
	Found bool
	// Runtime marks one of the runtime's own flags, which the System and
	// Runtime pages change.
	Runtime   bool
	Flag      switchyard.Flag
	Variants  []variantRow
	Targeting string
	Metadata  string
	Changes   []store.AuditEntry
	// Context is the playground's evaluation context, as typed.
	Context string
	Result  *evalResult
	// EvalError is why the context could not be evaluated.
	EvalError *apiError
}

// recentChanges bounds the changes a flag's page lists.
const recentChanges = 10

// defaultContext is the playground's evaluation context until one is typed.
const defaultContext = `{"targetingKey": "user-1"}`

// flagPage serves a flag's definition and recent changes, and, when the
// playground's form is posted, what its context is served and why.
func (c *Console) flagPage(w http.ResponseWriter, r signedIn) {
	key := r.FormValue("key")
	v := flagView{Key: key, Context: defaultContext}
	ctx := r.Context()
	rev, err := c.current(ctx)
	if err != nil {
		v.Error = apiErrorOf(err)
		c.render(w, r.Request, http.StatusOK, "flag", c.pageView(r, "flags", key, 0, v))
		return
	}
	f, runtime := evaluator.RuntimeFlags(rev, c.core.Mode())[key]
	if !runtime {
		f, v.Found = rev.Flags[key]
	}
	v.Found, v.Runtime, v.Flag = v.Found || runtime, runtime, f
	for _, name := range slices.Sorted(maps.Keys(f.Variants)) {
		v.Variants = append(v.Variants, variantRow{Name: name, Value: formatValue(f.Variants[name]),
			Default: f.DefaultVariant != nil && *f.DefaultVariant == name})
	}
	if len(f.Targeting) > 0 {
		v.Targeting = prettyJSON(f.Targeting)
	}
	if len(f.Metadata) > 0 {
		v.Metadata = prettyJSON(f.Metadata)
	}
	if v.Found && !runtime {
		v.Changes, _, err = c.scanAudit(ctx, 0, recentChanges, recentScan, func(e store.AuditEntry) bool { return changesFlag(e, key) })
		if err != nil {
			v.Error = apiErrorOf(err)
		}
	}
	if r.Method == http.MethodPost {
		v.Context = r.PostFormValue("context")
		v.Result, v.EvalError = c.evaluate(ctx, r.operator, key, v.Context)
	}
	c.render(w, r.Request, http.StatusOK, "flag", c.pageView(r, "flags", key, rev.Number, v))
}

// changesFlag reports whether audit entry e changed general flag key: an
// import that stored it (its entry's after holds the flags stored), or
// any change that names it.
func changesFlag(e store.AuditEntry, key string) bool {
	if e.Target == key {
		return true
	}
	if e.Action != "import_flags" || e.Outcome != store.OutcomeApplied || !bytes.Contains(e.After, []byte(strconv.Quote(key))) {
		return false
	}
	var after struct {
		Flags map[string]json.RawMessage `json:"flags"`
	}
	if err := json.Unmarshal(e.After, &after); err != nil {
		return false
	}
	_, ok := after.Flags[key]
	return ok
}

// evaluate evaluates key for the evaluation context typed in the
// playground, as OFREP does: a context naming a session is served that
// session's pin, pinning it at first sight.
func (c *Console) evaluate(ctx context.Context, op switchyard.Operator, key, typed string) (*evalResult, *apiError) {
	var evalCtx map[string]any
	if err := json.Unmarshal([]byte(typed), &evalCtx); err != nil {
		return nil, apiErrorOf(switchyard.FieldError("context", "must be a JSON object like %s: %v", defaultContext, err))
	}
	var sessionID string
	if id, ok := evalCtx[switchyard.SessionIDAttribute]; ok {
		s, isString := id.(string)
		if !isString {
			return nil, apiErrorOf(switchyard.FieldError("context", "%s must be a string", switchyard.SessionIDAttribute))
		}
		if err := switchyard.ValidateSessionID(s); err != nil {
			return nil, apiErrorOf(err)
		}
		sessionID = s
	}
	// The operator is the client, as when their token evaluates over the
	// API: new sessions count against the same allowance.
	ev, err := c.core.Evaluation(ctx, "token "+op.Name, sessionID)
	if err != nil {
		return nil, apiErrorOf(err)
	}
	res := ev.Result(key, evalCtx)
	out := &evalResult{Variant: res.Variant, Reason: string(res.Reason), ErrorCode: string(res.ErrorCode), ErrorMessage: res.ErrorMessage}
	if res.Value != nil {
		out.Value = formatValue(res.Value)
	}
	if len(res.Metadata) > 0 {
		out.Metadata = prettyJSON(res.Metadata)
	}
	return out, nil
}

// export serves the current revision as a flagd document to download, as
// GET /v1/admin/export does.
func (c *Console) export(w http.ResponseWriter, r signedIn) {
	doc, revision, err := c.core.Export(r.Context())
	if err != nil {
		c.refuse(w, r.Request, http.StatusServiceUnavailable, apiErrorOf(err).Text())
		return
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		c.refuse(w, r.Request, http.StatusInternalServerError, "The export could not be encoded: "+err.Error())
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Disposition", `attachment; filename="switchyard-flags-revision-`+strconv.FormatInt(revision, 10)+`.json"`)
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(append(b, '\n'))
}

// sessionRow is one runtime flag of a session: what its pin serves and
// what is served live.
type sessionRow struct {
	Key, Pinned, Live string
	Differs           bool
}

// sessionView is the Sessions page.
type sessionView struct {
	ID          string
	Error       *apiError
	Snapshot    *switchyard.Snapshot
	Live        int64
	Rows        []sessionRow
	Differences int
}

// sessionsPage looks a session up: its pin, and every runtime value it is
// served beside the live one. Looking up never pins a session.
func (c *Console) sessionsPage(w http.ResponseWriter, r signedIn) {
	v := sessionView{ID: strings.TrimSpace(r.URL.Query().Get("id"))}
	ctx := r.Context()
	live, err := c.current(ctx)
	if err != nil {
		v.Error = apiErrorOf(err)
		c.render(w, r.Request, http.StatusOK, "sessions", c.pageView(r, "sessions", "Sessions", 0, v))
		return
	}
	v.Live = live.Number
	if v.ID != "" {
		v.Error = c.lookUpSession(ctx, &v, live)
	}
	c.render(w, r.Request, http.StatusOK, "sessions", c.pageView(r, "sessions", "Sessions", live.Number, v))
}

// lookUpSession fills v with session v.ID's pin and its values beside
// live's.
func (c *Console) lookUpSession(ctx context.Context, v *sessionView, live *switchyard.Revision) *apiError {
	snap, err := c.core.Session(ctx, v.ID)
	if err != nil {
		return apiErrorOf(err)
	}
	v.Snapshot = &snap
	pinned, err := c.core.Bundle(ctx, snap.Revision)
	if err != nil {
		return apiErrorOf(err)
	}
	mode := c.core.Mode()
	was, is := evaluator.RuntimeFlags(pinned.Revision, mode), evaluator.RuntimeFlags(live, mode)
	for _, key := range slices.Sorted(maps.Keys(is)) {
		row := sessionRow{Key: key, Pinned: flagValue(lookup(pinned.Revision, was, key)), Live: flagValue(is[key], true)}
		if row.Differs = row.Pinned != row.Live; row.Differs {
			v.Differences++
		}
		v.Rows = append(v.Rows, row)
	}
	return nil
}

// The bounds of audit searches: the entries read from the store per call;
// in all, for the Audit page's search and for the latest changes a page
// shows beside what it shows (of a switch, of a flag), which it reads
// again at every change; and the entries the Audit page shows at once.
const (
	auditBatch = 200
	auditScan  = 5000
	recentScan = 1000
	auditShown = 50
)

// scanAudit returns, newest first, up to want entries older than before
// (0: from the newest) that match, reading at most budget entries. next
// is the before= that continues the search; 0 when the log was read to
// its first entry.
func (c *Console) scanAudit(ctx context.Context, before int64, want, budget int, match func(store.AuditEntry) bool) (found []store.AuditEntry, next int64, err error) {
	for scanned := 0; scanned < budget; {
		page, err := c.core.Audit(ctx, store.AuditQuery{Limit: min(auditBatch, budget-scanned), Before: before})
		if err != nil || len(page) == 0 {
			return found, 0, err
		}
		for _, e := range page {
			scanned++
			before = e.Seq
			if match(e) {
				if found = append(found, e); len(found) == want {
					return found, continued(e.Seq), nil
				}
			}
		}
		if before <= 1 {
			return found, 0, nil
		}
	}
	return found, before, nil
}

// continued is the before= that continues an audit search after entry
// seq; 0 after the first entry. Sequence numbers have no gaps.
func continued(seq int64) int64 {
	if seq <= 1 {
		return 0
	}
	return seq
}

// auditFilter is the Audit page's search, as typed.
type auditFilter struct {
	Actor, Action, Outcome, From, To string
}

// auditTimeLayout is the layout of datetime-local inputs, read as UTC.
const auditTimeLayout = "2006-01-02T15:04"

// matcher returns the test of the filter, or an error naming the field
// that cannot be read.
func (f auditFilter) matcher() (func(store.AuditEntry) bool, error) {
	var from, to time.Time
	for _, t := range []struct {
		name, value string
		into        *time.Time
	}{{"from", f.From, &from}, {"to", f.To, &to}} {
		if t.value == "" {
			continue
		}
		v, err := time.Parse(auditTimeLayout, t.value)
		if err != nil {
			return nil, switchyard.FieldError(t.name, "must be a time like 2026-03-01T09:00 (UTC), not %q", t.value)
		}
		*t.into = v
	}
	return func(e store.AuditEntry) bool {
		switch {
		case f.Actor != "" && !strings.EqualFold(e.Actor, f.Actor),
			f.Action != "" && e.Action != f.Action,
			f.Outcome != "" && e.Outcome != f.Outcome,
			!from.IsZero() && e.Time.Before(from),
			!to.IsZero() && !e.Time.Before(to.Add(time.Minute)):
			return false
		}
		return true
	}, nil
}

// auditView is the Audit page.
type auditView struct {
	Error  *apiError
	Filter auditFilter
	// Before is the sequence number the page starts below; 0: the newest.
	Before  int64
	Entries []store.AuditEntry
	// Older is the address of the next (older) page of the search.
	Older  string
	Verify *store.Verification
	// VerifyError is why the chain could not be verified.
	VerifyError *apiError
	// Actions are the actions of the entries the filter offers.
	Actions []string
}

// auditActions are the actions audit entries record, for the filter.
var auditActions = []string{"set_flag", "set_profile", "set_override", "clear_override", "register_module",
	"update_profile", "import_flags", "set_system_mode"}

// auditPage serves the audit log, newest first, filtered; with verify set,
// it walks the hash chain first.
func (c *Console) auditPage(w http.ResponseWriter, r signedIn) {
	q := r.URL.Query()
	v := auditView{Actions: auditActions, Filter: auditFilter{Actor: strings.TrimSpace(q.Get("actor")), Action: q.Get("action"),
		Outcome: q.Get("outcome"), From: q.Get("from"), To: q.Get("to")}}
	ctx := r.Context()
	if q.Has("verify") {
		vr, err := c.core.VerifyAudit(ctx)
		if v.VerifyError = errorOrNil(err); err == nil {
			v.Verify = &vr
		}
	}
	st, err := c.core.Status(ctx)
	if err != nil {
		v.Error = apiErrorOf(err)
	}
	v.Before, _ = strconv.ParseInt(q.Get("before"), 10, 64)
	match, err := v.Filter.matcher()
	if err != nil {
		v.Error = apiErrorOf(err)
	} else {
		var next int64
		v.Entries, next, err = c.scanAudit(ctx, max(v.Before, 0), auditShown, auditScan, match)
		if err != nil {
			v.Error = apiErrorOf(err)
		}
		if next > 0 {
			older := url.Values{"before": {strconv.FormatInt(next, 10)}}
			for k, val := range map[string]string{"actor": v.Filter.Actor, "action": v.Filter.Action, "outcome": v.Filter.Outcome,
				"from": v.Filter.From, "to": v.Filter.To} {
				if val != "" {
					older.Set(k, val)
				}
			}
			v.Older = "/console/audit?" + older.Encode()
		}
	}
	c.render(w, r.Request, http.StatusOK, "audit", c.pageView(r, "audit", "Audit", st.Revision, v))
}

// errorOrNil returns err as the API words it, or nil.
func errorOrNil(err error) *apiError {
	if err == nil {
		return nil
	}
	return apiErrorOf(err)
}
