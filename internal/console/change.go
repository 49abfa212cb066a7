package console

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/importer"
	"github.com/switchyard-dev/switchyard/internal/control"
)

// changeKind is one kind of change the console's forms make: how it is
// named in the audit log and the confirmation, which form fields it
// reads, and how the core plans it from them (the same plans the API's
// routes use).
type changeKind struct {
	// action names the change in the audit log, as the API's route does.
	action string
	// fields are the form fields the change is made of.
	fields []string
	target func(f url.Values) string
	title  func(f url.Values) string
	plan   func(f url.Values) (control.Plan, error)
}

// changeKinds are the changes the console makes, by the name its forms
// give in the field "change".
var changeKinds = map[string]changeKind{
	"flag": {
		action: "set_flag",
		fields: []string{"flag", "value"},
		target: func(f url.Values) string { return f.Get("flag") },
		title: func(f url.Values) string {
			if f.Get("value") == "true" {
				return "Turn " + f.Get("flag") + " on"
			}
			return "Turn " + f.Get("flag") + " off"
		},
		plan: func(f url.Values) (control.Plan, error) {
			return control.SystemFlagPlan(f.Get("flag"), optionalBool(f, "value"), "value")
		},
	},
	"profile": {
		action: "set_profile",
		fields: []string{"profile"},
		target: func(url.Values) string { return switchyard.ProfileKey },
		title:  func(f url.Values) string { return "Switch to profile " + f.Get("profile") },
		plan:   func(f url.Values) (control.Plan, error) { return control.ProfilePlan(f.Get("profile")) },
	},
	"override": {
		action: "set_override",
		fields: []string{"module", "version", "enabled"},
		target: func(f url.Values) string { return "module:" + f.Get("module") },
		title: func(f url.Values) string {
			switch {
			case f.Get("version") != "":
				return "Override module " + f.Get("module") + " to " + f.Get("version")
			case f.Get("enabled") == "false":
				return "Disable module " + f.Get("module")
			}
			return "Enable module " + f.Get("module")
		},
		plan: func(f url.Values) (control.Plan, error) {
			var version *string
			if v := f.Get("version"); v != "" {
				version = &v
			}
			return control.OverridePlan(f.Get("module"), version, optionalBool(f, "enabled"))
		},
	},
	"clear-override": {
		action: "clear_override",
		fields: []string{"module"},
		target: func(f url.Values) string { return "module:" + f.Get("module") },
		title:  func(f url.Values) string { return "Clear the override of module " + f.Get("module") },
		plan:   func(f url.Values) (control.Plan, error) { return control.ClearOverridePlan(f.Get("module")), nil },
	},
	"register-module": {
		action: "register_module",
		fields: []string{"module", "kind", "versions", "defaults"},
		target: func(f url.Values) string { return "module:" + f.Get("module") },
		title: func(f url.Values) string {
			return "Register module " + f.Get("module") + " versions " + f.Get("versions")
		},
		plan: func(f url.Values) (control.Plan, error) {
			defaults, err := parseDefaults(f.Get("defaults"))
			if err != nil {
				return control.Plan{}, err
			}
			return control.RegisterModulePlan(switchyard.ModuleSpec{Key: f.Get("module"), Kind: switchyard.Kind(f.Get("kind")),
				Versions: splitList(f.Get("versions")), Defaults: defaults}), nil
		},
	},
	"import": {
		action: "import_flags",
		fields: []string{"format", "environment", "content"},
		target: func(url.Values) string { return "flags" },
		title:  func(f url.Values) string { return "Import flags from " + f.Get("format") },
		plan: func(f url.Values) (control.Plan, error) {
			p, _, err := control.ImportPlan(f.Get("format"), f.Get("content"), importer.Options{Environment: f.Get("environment")})
			return p, err
		},
	},
}

// optionalBool reads a true/false field; nil when it is empty, which the
// plan answers with the field it needs.
func optionalBool(f url.Values, name string) *bool {
	v, err := strconv.ParseBool(f.Get(name))
	if err != nil {
		return nil
	}
	return &v
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseDefaults reads profile=version pairs separated by commas: the
// version a registered module is served at in each profile.
func parseDefaults(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range splitList(s) {
		profile, version, ok := strings.Cut(p, "=")
		if !ok || strings.TrimSpace(profile) == "" || strings.TrimSpace(version) == "" {
			return nil, switchyard.FieldError("defaults", "write profile=version pairs separated by commas, not %q", p)
		}
		out[strings.TrimSpace(profile)] = strings.TrimSpace(version)
	}
	return out, nil
}

// confirmation is the page that confirms a change: what it will change,
// the phrase to type, the reason, and the revision it is based on.
type confirmation struct {
	Kind   string
	Title  string
	Fields []field
	// Changes are the flags the change alters, before and after, on the
	// base revision.
	Changes []valueChange
	// Refused is why the change would be refused on the base revision, as
	// the store would word it; nothing else is shown then.
	Refused *apiError
	Phrase  string
	// Base is the revision the change is based on, sent as If-Match;
	// Current is the revision now, when it is newer.
	Base, Current int64
	// Again is the address that prepares the change anew on the current
	// revision; empty for an import, whose file must be sent again.
	Again string
	// Key is the change's idempotency key: sending the form twice applies
	// it once.
	Key    string
	Reason string
	// Error is why the change was just refused.
	Error  *apiError
	Return string
	// Report is an import's dry run: what each flag became.
	Report []importer.Note
	// Multipart marks a form carrying a file's content.
	Multipart bool
}

// confirmPage serves the confirmation of the change the query describes,
// prepared on the revision it names (base).
func (c *Console) confirmPage(w http.ResponseWriter, r signedIn) {
	q := r.URL.Query()
	base, _ := strconv.ParseInt(q.Get("base"), 10, 64)
	conf, ok := c.prepare(r, q, base)
	if !ok {
		c.refuse(w, r.Request, http.StatusNotFound, "The console makes no change of kind "+strconv.Quote(q.Get("change"))+".")
		return
	}
	conf.Key = newSecret()
	c.render(w, r.Request, http.StatusOK, "confirm", c.pageView(r, "", conf.Title, conf.Base, conf))
}

// prepare builds the confirmation of the change f describes on revision
// base (0: the current revision): the plan's phrase and what it would
// change. false: f names no kind of change.
func (c *Console) prepare(r signedIn, f url.Values, base int64) (confirmation, bool) {
	kind, ok := changeKinds[f.Get("change")]
	if !ok {
		return confirmation{}, false
	}
	conf := confirmation{Kind: f.Get("change"), Title: kind.title(f), Base: base, Return: localPath(f.Get("return")),
		Reason: f.Get("reason"), Multipart: f.Get("change") == "import"}
	for _, name := range kind.fields {
		conf.Fields = append(conf.Fields, field{Name: name, Value: f.Get(name)})
	}
	ctx := r.Context()
	st, err := c.core.Status(ctx)
	if err != nil {
		conf.Refused = apiErrorOf(err)
		return conf, true
	}
	if conf.Base == 0 {
		conf.Base = st.Revision
	}
	if st.Revision != conf.Base {
		conf.Current = st.Revision
		if conf.Kind != "import" {
			again := url.Values{"change": {conf.Kind}, "return": {conf.Return}}
			for _, fl := range conf.Fields {
				again.Set(fl.Name, fl.Value)
			}
			conf.Again = "/console/confirm?" + again.Encode()
		}
	}
	var p control.Plan
	if conf.Kind == "import" {
		// An import's plan converts the file: its report says what each
		// flag became, before anything is stored.
		var res importer.Result
		p, res, err = control.ImportPlan(f.Get("format"), f.Get("content"), importer.Options{Environment: f.Get("environment")})
		conf.Report = res.Report
	} else {
		p, err = kind.plan(f)
	}
	if err != nil {
		conf.Refused = apiErrorOf(err)
		return conf, true
	}
	conf.Phrase = p.Phrase
	b, err := c.core.Bundle(ctx, conf.Base)
	if err == nil {
		conf.Changes, err = preview(ctx, b.Revision, p.Mutation, b.Mode, c.now())
	}
	if err != nil {
		conf.Refused = apiErrorOf(err)
	}
	return conf, true
}

// change applies the change a confirmation form sends, through the core's
// admission like every API change: the role, the text, the reason, the
// phrase, ADMIN_FREEZE and the base revision (If-Match) are the core's to
// check, and every refusal is audited. Applied, it goes back to the page
// the change was made from, which says so; refused, the confirmation is
// shown again with the error as the API words it.
func (c *Console) change(w http.ResponseWriter, r signedIn) {
	f := r.PostForm
	kind, ok := changeKinds[f.Get("change")]
	if !ok {
		c.refuse(w, r.Request, http.StatusNotFound, "The console makes no change of kind "+strconv.Quote(f.Get("change"))+".")
		return
	}
	base, err := strconv.ParseInt(f.Get("base"), 10, 64)
	if err != nil || base < 1 {
		c.refuse(w, r.Request, http.StatusBadRequest, "The form names no revision to base the change on. Reload the page and make the change again.")
		return
	}
	cl := callerOf(r.Request)
	ch := control.Change{
		Actor:          r.operator.Name,
		Role:           r.operator.Role,
		RequestID:      cl.requestID,
		IdempotencyKey: f.Get("key"),
		RequestHash:    requestHash(kind, f, base),
		Action:         kind.action,
		Target:         kind.target(f),
		Reason:         f.Get("reason"),
		Phrase:         f.Get("phrase"),
		Expected:       base,
		Plan:           func() (control.Plan, error) { return kind.plan(f) },
	}
	applied, err := c.core.Apply(r.Context(), ch)
	if err != nil {
		conf, _ := c.prepare(r, f, base)
		conf.Key = f.Get("key")
		// A refusal the preview foresaw is shown once.
		if e := apiErrorOf(err); conf.Refused == nil || conf.Refused.Text() != e.Text() {
			conf.Error = e
		}
		c.render(w, r.Request, http.StatusOK, "confirm", c.pageView(r, "", conf.Title, base, conf))
		return
	}
	c.sessions.flash(r.sessionID, fmt.Sprintf("%s: applied as revision %d (audit entry %d).",
		kind.title(f), applied.Status.Revision, applied.AuditSeq))
	http.Redirect(w, r.Request, localPath(f.Get("return")), http.StatusSeeOther)
}

// requestHash identifies a change for its idempotency key: its kind, its
// fields, the revision it is based on, its phrase and reason, so the key
// sent with another change is refused.
func requestHash(kind changeKind, f url.Values, base int64) string {
	h := sha256.New()
	fmt.Fprintf(h, "console %s\n%d\n", kind.action, base)
	values := url.Values{"phrase": {f.Get("phrase")}, "reason": {f.Get("reason")}}
	for _, name := range kind.fields {
		values.Set(name, f.Get(name))
	}
	for _, k := range slices.Sorted(maps.Keys(values)) {
		fmt.Fprintf(h, "%s=%q\n", k, values.Get(k))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// importDryRun converts an uploaded flag file as an import would, without
// storing anything, and shows the importer's report and what the import
// would change beside the confirmation that applies it.
func (c *Console) importDryRun(w http.ResponseWriter, r signedIn) {
	f := url.Values{"change": {"import"}, "return": {"/console/flags"},
		"format": {r.PostFormValue("format")}, "environment": {r.PostFormValue("environment")}}
	content, err := uploaded(r.Request, "file")
	f.Set("content", content)
	conf, _ := c.prepare(r, f, 0)
	conf.Key = newSecret()
	if err != nil {
		conf.Refused = apiErrorOf(err)
	}
	c.render(w, r.Request, http.StatusOK, "confirm", c.pageView(r, "flags", conf.Title, conf.Base, conf))
}

// uploaded reads the file of a form's field, of at most importer.MaxSize
// bytes.
func uploaded(r *http.Request, name string) (string, error) {
	file, _, err := r.FormFile(name)
	if err != nil {
		return "", switchyard.FieldError(name, "choose a file to import")
	}
	defer file.Close()
	b, err := io.ReadAll(io.LimitReader(file, importer.MaxSize+1))
	switch {
	case err != nil:
		return "", switchyard.FieldError(name, "read the file: %v", err)
	case len(b) > importer.MaxSize:
		return "", switchyard.FieldError(name, "the file is larger than the limit of %s", formatBytes(importer.MaxSize))
	}
	return string(b), nil
}
