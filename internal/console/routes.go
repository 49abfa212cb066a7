package console

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/importer"
)

// The bounds of a form's body: an import's carries a whole flag file
// (twice importer.MaxSize covers one escaped, as the API's import route
// allows), every other form a few fields.
const (
	formBytes   = 64 << 10
	importBytes = 2*importer.MaxSize + formBytes
)

// routes is the console's routes. A page is added here and to nav.
func (c *Console) routes() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /console/assets/{name}", c.asset)
	m.HandleFunc("GET /console/sign-in", c.signInPage)
	m.HandleFunc("POST /console/sign-in", c.signIn)
	m.HandleFunc("POST /console/sign-out", c.form(formBytes, c.signOut))
	m.HandleFunc("GET /console/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/system", http.StatusSeeOther)
	})
	m.HandleFunc("GET /console/system", c.page(c.systemPage))
	m.HandleFunc("GET /console/runtime", c.page(c.runtimePage))
	m.HandleFunc("GET /console/flags", c.page(c.flagsPage))
	m.HandleFunc("GET /console/flag", c.page(c.flagPage))
	m.HandleFunc("POST /console/flag", c.form(formBytes, c.flagPage))
	m.HandleFunc("GET /console/export", c.page(c.export))
	m.HandleFunc("POST /console/import", c.form(importBytes, c.importDryRun))
	m.HandleFunc("GET /console/sessions", c.page(c.sessionsPage))
	m.HandleFunc("GET /console/audit", c.page(c.auditPage))
	m.HandleFunc("GET /console/confirm", c.page(c.confirmPage))
	m.HandleFunc("POST /console/change", c.form(importBytes, c.change))
	m.HandleFunc("/", c.notFound)
	return m
}

// navItem is one page of the navigation.
type navItem struct {
	Key, Title, Path string
}

// nav lists the console's pages in the order the navigation shows them.
var nav = []navItem{
	{"system", "System", "/console/system"},
	{"runtime", "Runtime", "/console/runtime"},
	{"flags", "Flags", "/console/flags"},
	{"sessions", "Sessions", "/console/sessions"},
	{"audit", "Audit", "/console/audit"},
}

// The cookies of the console: the session's ID, and the token that ties a
// sign-in form to the browser that asked for it.
const (
	sessionCookie = "switchyard_console"
	signInCookie  = "switchyard_console_sign_in"
)

// signedIn is a request of a signed-in operator.
type signedIn struct {
	*http.Request
	operator  switchyard.Operator
	sessionID string
	session   session
}

// handler serves a signed-in operator.
type handler func(w http.ResponseWriter, r signedIn)

// page serves h to a signed-in operator, and sends anyone else to sign
// in, back to this page after.
func (c *Console) page(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, ok := c.signedIn(r)
		if !ok {
			http.Redirect(w, r, "/console/sign-in?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h(w, s)
	}
}

// form serves h a form posted by a signed-in operator, its body bounded
// by limit bytes, once its CSRF token is the session's: a form made by
// any other page, or for another session, is refused.
func (c *Console) form(limit int64, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, ok := c.signedIn(r)
		if !ok {
			c.refuse(w, r, http.StatusUnauthorized, "Your console session has ended. Sign in again, then send the form again.")
			return
		}
		if err := parseForm(w, r, limit); err != nil {
			c.refuse(w, r, http.StatusRequestEntityTooLarge, err.Error())
			return
		}
		if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.session.csrf)) != 1 {
			c.logger.Warn("console form refused: CSRF token mismatch", "operator", s.operator.Name, "path", r.URL.Path,
				"request_id", callerOf(r).requestID)
			c.refuse(w, r, http.StatusForbidden, "This form does not carry your session's CSRF token, so it was refused and nothing was changed. Reload the page and send it again.")
			return
		}
		h(w, s)
	}
}

// parseForm reads a posted form, URL-encoded or multipart, of at most
// limit bytes.
func parseForm(w http.ResponseWriter, r *http.Request, limit int64) error {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	var err error
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		err = r.ParseMultipartForm(limit)
	} else {
		err = r.ParseForm()
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return errors.New("The form is larger than the limit of " + formatBytes(tooLarge.Limit) + ".")
	case err != nil:
		return errors.New("The form could not be read: " + err.Error())
	}
	return nil
}

// signedIn returns the signed-in operator of r's session cookie. The
// operator is looked up by the token's digest on every request, so a token
// removed or given another role acts at once; a role that cannot use the
// console ends the session.
func (c *Console) signedIn(r *http.Request) (signedIn, bool) {
	cookie, err := r.Cookie(sessionCookie)
	if err != nil {
		return signedIn{}, false
	}
	// A page the browser navigates to shows the flash message and takes
	// it; a script's request for the page (a live refresh) leaves it.
	navigation := r.Header.Get("Sec-Fetch-Mode")
	s, ok := c.sessions.use(cookie.Value, c.now(), navigation == "" || navigation == "navigate")
	if !ok {
		return signedIn{}, false
	}
	op, ok := c.tokens.Operator(s.digest)
	if !ok || !consoleRole(op.Role) {
		c.sessions.end(cookie.Value)
		return signedIn{}, false
	}
	return signedIn{Request: r, operator: op, sessionID: cookie.Value, session: s}, true
}

// consoleRole reports whether a token's role may sign in to the console:
// admins and viewers, who read what the admin API serves. A role that may
// only evaluate flags reads nothing here.
func consoleRole(r switchyard.Role) bool {
	return r == switchyard.RoleAdmin || r == switchyard.RoleViewer
}

// cookie returns a console cookie: HttpOnly, SameSite=Strict, only for the
// console's paths, and Secure over TLS or when configured.
func (c *Console) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/console/", MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: c.secure || r.TLS != nil}
}

// signInView is the sign-in page.
type signInView struct {
	Next    string
	Token   string
	Message string
	Error   string
}

// signInPage serves the sign-in form, with a fresh token that ties the
// form to this browser.
func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := c.signedIn(r); ok {
		http.Redirect(w, r, localPath(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	v := signInView{Next: localPath(r.URL.Query().Get("next"))}
	if r.URL.Query().Has("signed-out") {
		v.Message = "You are signed out."
	}
	c.renderSignIn(w, r, http.StatusOK, v)
}

// renderSignIn renders the sign-in page with a new form token.
func (c *Console) renderSignIn(w http.ResponseWriter, r *http.Request, status int, v signInView) {
	v.Token = newSecret()
	http.SetCookie(w, c.cookie(r, signInCookie, v.Token, int(signInLifetime.Seconds())))
	c.render(w, r, status, "sign-in", view{Title: "Sign in", Data: v})
}

// signInLifetime bounds how long a sign-in form may be left open.
const signInLifetime = 15 * time.Minute

// signIn checks the token pasted into the sign-in form and starts a
// session. A token that names no operator is refused as the API refuses
// one, and counts against the client's allowance of refusals.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r, formBytes); err != nil {
		c.refuse(w, r, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	v := signInView{Next: localPath(r.PostFormValue("next"))}
	form, err := r.Cookie(signInCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(form.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		v.Error = "This sign-in form has expired or was not made by this console. Paste your token again."
		c.renderSignIn(w, r, http.StatusForbidden, v)
		return
	}
	cl := callerOf(r)
	digest := sha256.Sum256([]byte(strings.TrimSpace(r.PostFormValue("token"))))
	op, ok := c.tokens.Operator(digest)
	if !ok || !consoleRole(op.Role) {
		if err := c.core.Refused("address " + cl.client); err != nil {
			v.Error = apiErrorOf(err).Text()
			c.renderSignIn(w, r, http.StatusTooManyRequests, v)
			return
		}
		c.logger.Warn("console sign-in refused", "client", cl.client, "request_id", cl.requestID)
		v.Error = "UNAUTHORIZED: that token is not an admin or viewer token of this server."
		c.renderSignIn(w, r, http.StatusUnauthorized, v)
		return
	}
	id, _ := c.sessions.start(digest, c.now())
	http.SetCookie(w, c.cookie(r, signInCookie, "", -1))
	http.SetCookie(w, c.cookie(r, sessionCookie, id, 0))
	c.logger.Info("console sign-in", "operator", op.Name, "role", op.Role, "client", cl.client, "request_id", cl.requestID)
	http.Redirect(w, r, v.Next, http.StatusSeeOther)
}

// signOut ends the session.
func (c *Console) signOut(w http.ResponseWriter, r signedIn) {
	c.sessions.end(r.sessionID)
	http.SetCookie(w, c.cookie(r.Request, sessionCookie, "", -1))
	c.logger.Info("console sign-out", "operator", r.operator.Name, "request_id", callerOf(r.Request).requestID)
	http.Redirect(w, r.Request, "/console/sign-in?signed-out", http.StatusSeeOther)
}

// localPath returns p when it is a path of the console, else the System
// page: a sign-in or a change never sends the browser elsewhere.
func localPath(p string) string {
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(u.Path, "/console/") || strings.Contains(p, "\\") {
		return "/console/system"
	}
	return u.RequestURI()
}

// notFound answers a path the console does not have.
func (c *Console) notFound(w http.ResponseWriter, r *http.Request) {
	c.refuse(w, r, http.StatusNotFound, "There is no console page at "+r.URL.Path+".")
}

// refuse answers a request the console cannot serve with a page saying
// why.
func (c *Console) refuse(w http.ResponseWriter, r *http.Request, status int, why string) {
	c.render(w, r, status, "refused", view{Title: http.StatusText(status), Data: why})
}
