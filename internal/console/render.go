package console

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"maps"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard"
)

// view is what every page template is given: the page, who is signed in,
// and the page's own data.
type view struct {
	Title string
	// Page is the key of the navigation entry to mark current.
	Page     string
	Nav      []navItem
	Operator switchyard.Operator
	// CSRF is the session's token, which every form carries.
	CSRF  string
	Flash string
	// Revision is the revision the page shows; the script reloads the
	// page's live parts when the stream announces a newer one.
	Revision int64
	Mode     string
	// ReadOnly says why the operator's controls are disabled; empty for
	// an admin.
	ReadOnly string
	Data     any
}

// readOnlyReason is why a viewer's controls are shown disabled. The core
// refuses a viewer's change anyway (FORBIDDEN, audited).
const readOnlyReason = "Read only: the viewer role cannot change the runtime. Sign in with an admin token to make changes."

// pageView returns the view of a signed-in operator's page.
func (c *Console) pageView(r signedIn, key, title string, revision int64, data any) view {
	v := view{Title: title, Page: key, Nav: nav, Operator: r.operator, CSRF: r.session.csrf, Flash: r.session.flash,
		Revision: revision, Mode: c.core.Mode(), Data: data}
	if r.operator.Role != switchyard.RoleAdmin {
		v.ReadOnly = readOnlyReason
	}
	return v
}

// funcs are the template functions.
var funcs = template.FuncMap{
	"time":   formatTime,
	"pretty": prettyJSON,
}

// parsePages parses each page with the layout it is shown in.
func parsePages() map[string]*template.Template {
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/parts.html"))
	pages := map[string]*template.Template{}
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, name := range names {
		base := strings.TrimSuffix(path.Base(name), ".html")
		if base == "layout" || base == "parts" {
			continue
		}
		pages[base] = template.Must(template.Must(layout.Clone()).ParseFS(files, name))
	}
	return pages
}

// render writes page name with v. Pages are never cached: they show the
// state now, and what only a signed-in operator may read.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	var b bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&b, "layout.html", v); err != nil {
		c.logger.Error("render a console page", "page", name, "request_id", callerOf(r).requestID, "err", err)
		http.Error(w, "the console could not render this page; the server log has the details", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// asset is one embedded static file with its entity tag.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// loadAssets reads the embedded static files.
func loadAssets() map[string]asset {
	entries, err := fs.ReadDir(files, "assets")
	if err != nil {
		panic(err)
	}
	types := map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
	out := map[string]asset{}
	for _, e := range entries {
		body, err := fs.ReadFile(files, "assets/"+e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(body)
		out[e.Name()] = asset{body: body, contentType: types[path.Ext(e.Name())], etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return out
}

// asset serves an embedded static file. Browsers check it again on every
// use (no-cache) and are answered 304 while it has not changed, so a new
// binary's files are taken at once.
func (c *Console) asset(w http.ResponseWriter, r *http.Request) {
	a, ok := c.assets[r.PathValue("name")]
	if !ok {
		c.notFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	if r.Header.Get("If-None-Match") == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", a.contentType)
	_, _ = w.Write(a.body)
}

// apiError is a failure as the API words it: its code, its message and
// the fields that help (the phrase expected, the current revision).
type apiError struct {
	Code    switchyard.Code
	Message string
	Fields  []field
}

// field is one helpful field of an error, its value as JSON.
type field struct {
	Name, Value string
}

// apiErrorOf returns err as the API words it.
func apiErrorOf(err error) *apiError {
	e := switchyard.AsError(err)
	out := &apiError{Code: e.Code, Message: e.Message}
	for _, k := range slices.Sorted(maps.Keys(e.Fields)) {
		b, _ := json.Marshal(e.Fields[k])
		out.Fields = append(out.Fields, field{Name: k, Value: string(b)})
	}
	return out
}

// Text is the error on one line: CODE: message.
func (e *apiError) Text() string { return string(e.Code) + ": " + e.Message }

// formatTime shows a time in UTC to the second, as the audit log's times
// are compared across replicas and time zones.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// prettyJSON indents JSON for reading; anything else is encoded first.
func prettyJSON(v any) string {
	var raw []byte
	switch x := v.(type) {
	case json.RawMessage:
		raw = x
	case []byte:
		raw = x
	default:
		var err error
		if raw, err = json.Marshal(v); err != nil {
			return fmt.Sprint(v)
		}
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return string(raw)
	}
	return b.String()
}

// formatValue shows a flag value as JSON: true, "v1", 3, {"a":1}.
func formatValue(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// formatBytes shows a byte count in the largest whole unit.
func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// newSecret returns a random token for a form or a session.
func newSecret() string { return rand.Text() }
