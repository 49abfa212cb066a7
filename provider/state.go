package provider

import "time"

// State is what a provider serves and how fresh it is, for an application
// to export with its own metrics (a Prometheus gauge per field, say): the
// revision it evaluates, whether its results say STALE, when it last heard
// from the server, and how many sessions it holds pinned.
type State struct {
	// Ready is false until the provider has a flag set (Init, or its
	// retries in the background); the fields below are zero until then.
	Ready bool
	// Revision and RevisionID name the revision live evaluations are
	// served from, and Mode the server's mode it belongs to.
	Revision   int64
	RevisionID string
	Mode       string
	// Stale is set while the server has been out of reach beyond the
	// grace period (WithGracePeriod): evaluations then say STALE.
	Stale bool
	// LastContact is when the server was last heard from (zero: never).
	LastContact time.Time
	// SessionsCached counts the sessions pinned in this provider, and
	// RevisionsCached the old revisions kept for them.
	SessionsCached  int
	RevisionsCached int
}

// State returns the provider's state now. It costs no I/O and may be
// called from any goroutine, as often as a metrics scrape asks.
func (p *Provider) State() State {
	var s State
	if st := p.live.Load(); st != nil {
		s.Ready, s.Revision, s.RevisionID, s.Mode = true, st.rev.Number, st.rev.ID, st.mode
	}
	s.Stale = p.stale.Load()
	if ns := p.contact.Load(); ns != 0 {
		s.LastContact = time.Unix(0, ns)
	}
	s.SessionsCached, s.RevisionsCached = p.sessions.Len(), p.revisions.Len()
	return s
}
