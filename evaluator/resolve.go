package evaluator

import (
	"time"

	"github.com/switchyard-dev/switchyard"
)

// Resolve computes the effective runtime of a revision: the system flags,
// then for each module the active profile's entry, then the override's
// fields on top. It is a pure function: the same revision always gives the
// same runtime.
func Resolve(r *switchyard.Revision) switchyard.Runtime {
	rt := switchyard.Runtime{
		Revision: r.Number,
		Profile:  r.ActiveProfile,
		System:   r.System,
		Modules:  make(map[string]switchyard.ResolvedModule, len(r.Catalog)),
	}
	profile := r.Profiles[r.ActiveProfile]
	for _, m := range r.Catalog {
		rm := switchyard.ResolvedModule{Version: m.Versions[0], Source: switchyard.SourceFallback}
		if e, ok := profile.Modules[m.Key]; ok {
			rm = switchyard.ResolvedModule{Version: e.Version, Enabled: e.Enabled, Source: switchyard.SourceProfile}
		}
		if o, ok := r.Overrides[m.Key]; ok {
			if o.Version != nil {
				rm.Version = *o.Version
			}
			if o.Enabled != nil {
				rm.Enabled = *o.Enabled
			}
			rm.Source = switchyard.SourceOverride
		}
		rt.Modules[m.Key] = rm
	}
	return rt
}

// NewSnapshot pins a session to revision r as of now, for ttl.
func NewSnapshot(sessionID, userID string, r *switchyard.Revision, now time.Time, ttl time.Duration) switchyard.Snapshot {
	rt := Resolve(r)
	now = now.UTC().Truncate(time.Microsecond)
	return switchyard.Snapshot{
		SessionID:            sessionID,
		UserID:               userID,
		Revision:             r.Number,
		RevisionID:           r.ID,
		Profile:              rt.Profile,
		Modules:              rt.Modules,
		ExamModeAtStart:      rt.System.ExamMode,
		FreezeUpdatesAtStart: rt.System.FreezeUpdates,
		CreatedAt:            now,
		ExpiresAt:            now.Add(ttl),
	}
}
