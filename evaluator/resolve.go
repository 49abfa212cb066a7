package evaluator

import "time"

// Source says which layer decided a module's resolved state.
type Source string

// The sources, from weakest to strongest.
const (
	SourceFallback Source = "fallback"
	SourceProfile  Source = "profile"
	SourceOverride Source = "override"
)

// ResolvedModule is the effective state of one module.
type ResolvedModule struct {
	Version string `json:"version"`
	Enabled bool   `json:"enabled"`
	Source  Source `json:"source"`
}

// Runtime is the effective runtime of a revision: what applications are served.
type Runtime struct {
	Revision int64                     `json:"revision"`
	Profile  string                    `json:"profile"`
	System   SystemFlags               `json:"system"`
	Modules  map[string]ResolvedModule `json:"modules"`
}

// Resolve computes the effective runtime of a revision: the system flags,
// then for each module the active profile's entry, then the override's
// fields on top. It is a pure function: the same revision always gives the
// same runtime.
func Resolve(r *Revision) Runtime {
	rt := Runtime{
		Revision: r.Number,
		Profile:  r.ActiveProfile,
		System:   r.System,
		Modules:  make(map[string]ResolvedModule, len(r.Catalog)),
	}
	profile := r.Profiles[r.ActiveProfile]
	for _, m := range r.Catalog {
		rm := ResolvedModule{Version: m.Versions[0], Source: SourceFallback}
		if e, ok := profile.Modules[m.Key]; ok {
			rm = ResolvedModule{Version: e.Version, Enabled: e.Enabled, Source: SourceProfile}
		}
		if o, ok := r.Overrides[m.Key]; ok {
			if o.Version != nil {
				rm.Version = *o.Version
			}
			if o.Enabled != nil {
				rm.Enabled = *o.Enabled
			}
			rm.Source = SourceOverride
		}
		rt.Modules[m.Key] = rm
	}
	return rt
}

// Snapshot is a session's pin: the revision and resolved runtime at the
// moment the session was created. It never changes afterwards.
type Snapshot struct {
	SessionID            string                    `json:"session_id"`
	UserID               string                    `json:"user_id,omitempty"`
	Revision             int64                     `json:"revision"`
	Profile              string                    `json:"profile"`
	Modules              map[string]ResolvedModule `json:"modules"`
	ExamModeAtStart      bool                      `json:"exam_mode_at_start"`
	FreezeUpdatesAtStart bool                      `json:"freeze_updates_at_start"`
	CreatedAt            time.Time                 `json:"created_at"`
	ExpiresAt            time.Time                 `json:"expires_at"`
}

// NewSnapshot pins a session to revision r as of now, for ttl.
func NewSnapshot(sessionID, userID string, r *Revision, now time.Time, ttl time.Duration) Snapshot {
	rt := Resolve(r)
	now = now.UTC().Truncate(time.Microsecond)
	return Snapshot{
		SessionID:            sessionID,
		UserID:               userID,
		Revision:             r.Number,
		Profile:              rt.Profile,
		Modules:              rt.Modules,
		ExamModeAtStart:      rt.System.ExamMode,
		FreezeUpdatesAtStart: rt.System.FreezeUpdates,
		CreatedAt:            now,
		ExpiresAt:            now.Add(ttl),
	}
}

// ValidateSessionID rejects session IDs that are empty, too long or contain
// control characters, so they are safe as keys in every store.
func ValidateSessionID(id string) error {
	if id == "" || len(id) > 128 {
		return Errorf(CodeInvalidRequest, "session_id must be 1 to 128 characters")
	}
	for _, c := range id {
		if c < 0x21 || c == 0x7f {
			return Errorf(CodeInvalidRequest, "session_id must not contain spaces or control characters")
		}
	}
	return nil
}
