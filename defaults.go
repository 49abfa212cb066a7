package switchyard

import "time"

// The built-in profile names.
const (
	ProfilePrimary  = "primary"
	ProfileFallback = "fallback"
	ProfileShadow   = "shadow"
)

// DefaultCatalog returns the catalog of a new install: six algorithm modules
// and four infrastructure toggles, each at versions v0 and v1. Operators
// extend it at run time; this is only the first catalog.
func DefaultCatalog() []Module {
	versions := func() []string { return []string{"v0", "v1"} }
	return []Module{
		{Key: "adaptive", Kind: KindAlgorithm, Versions: versions()},
		{Key: "difficulty", Kind: KindAlgorithm, Versions: versions()},
		{Key: "elasticsearch", Kind: KindInfra, Versions: versions()},
		{Key: "irt_shadow", Kind: KindInfra, Versions: versions()},
		{Key: "mastery", Kind: KindAlgorithm, Versions: versions()},
		{Key: "mistakes", Kind: KindAlgorithm, Versions: versions()},
		{Key: "neo4j", Kind: KindInfra, Versions: versions()},
		{Key: "revision", Kind: KindAlgorithm, Versions: versions()},
		{Key: "search", Kind: KindAlgorithm, Versions: versions()},
		{Key: "snowflake_export", Kind: KindInfra, Versions: versions()},
	}
}

// DefaultProfiles returns the three built-in profiles for catalog:
// primary serves every module at v1; fallback serves v0 with the infra
// toggles off; shadow serves algorithms at v0 while the infra toggles run
// at v1, so new infrastructure is exercised behind the proven algorithms.
func DefaultProfiles(catalog []Module) map[string]Profile {
	profiles := map[string]Profile{
		ProfilePrimary:  {Name: ProfilePrimary, Modules: map[string]ProfileEntry{}},
		ProfileFallback: {Name: ProfileFallback, Modules: map[string]ProfileEntry{}},
		ProfileShadow:   {Name: ProfileShadow, Modules: map[string]ProfileEntry{}},
	}
	for _, m := range catalog {
		first, last := m.Versions[0], m.Versions[len(m.Versions)-1]
		profiles[ProfilePrimary].Modules[m.Key] = ProfileEntry{Version: last, Enabled: true}
		profiles[ProfileFallback].Modules[m.Key] = ProfileEntry{Version: first, Enabled: m.Kind != KindInfra}
		shadow := ProfileEntry{Version: first, Enabled: true}
		if m.Kind == KindInfra {
			shadow.Version = last
		}
		profiles[ProfileShadow].Modules[m.Key] = shadow
	}
	return profiles
}

// InitialRevision returns revision 1 of a new install: the default catalog,
// the three profiles, primary active, every system flag off, no overrides
// and no general flags.
func InitialRevision(now time.Time) *Revision {
	catalog := DefaultCatalog()
	return &Revision{
		Number:        1,
		CreatedAt:     now.UTC(),
		Catalog:       catalog,
		Profiles:      DefaultProfiles(catalog),
		ActiveProfile: ProfilePrimary,
		Overrides:     map[string]Override{},
	}
}

// ConservativeFallback returns the runtime the binary serves when no store
// and no saved state can be read: profile fallback, FREEZE_UPDATES on, the
// infra toggles off. Its number is 0, which no stored revision has.
func ConservativeFallback() *Revision {
	r := InitialRevision(time.Unix(0, 0))
	r.Number = 0
	r.ActiveProfile = ProfileFallback
	r.System.FreezeUpdates = true
	return r
}
