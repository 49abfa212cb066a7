package switchyard

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// Mutation is one operator change to the runtime, as a pure function from
// the current revision to the next. Stores apply it inside their
// transaction, so its checks (admin freeze, catalog) see exactly the state
// it changes. It changes a clone of the current revision (Revision.Clone),
// which shares the flags, evaluators and metadata maps: a mutation that
// changes one of them replaces the map.
type Mutation struct {
	// Action and Target name the change in the audit log.
	Action string
	Target string
	apply  func(next *Revision) error
	view   func(r *Revision) any
	// ignoresAdminFreeze is set only on the change that lifts the freeze.
	ignoresAdminFreeze bool
}

// Apply returns the revision that follows cur under the mutation, numbered
// cur.Number+1, stamped now, with a new ID and cur as its parent. cur is
// not modified.
func (m Mutation) Apply(cur *Revision, now time.Time) (*Revision, error) {
	if !m.ignoresAdminFreeze {
		if err := cur.System.AdminFrozen(); err != nil {
			return nil, err
		}
	}
	next := cur.Clone()
	if err := m.apply(next); err != nil {
		return nil, err
	}
	next.Number = cur.Number + 1
	next.ID, next.Parent = NewRevisionID(), cur.ID
	next.CreatedAt = now.UTC()
	if err := next.Validate(); err != nil {
		return nil, err
	}
	return next, nil
}

// View returns the part of r the mutation changes, recorded as the audit
// entry's before and after.
func (m Mutation) View(r *Revision) any { return m.view(r) }

// SetSystemFlag turns a system flag on or off.
func SetSystemFlag(name string, on bool) Mutation {
	return Mutation{
		Action: "set_flag",
		Target: name,
		apply: func(next *Revision) error {
			switch name {
			case ExamMode:
				next.System.ExamMode = on
			case FreezeUpdates:
				next.System.FreezeUpdates = on
			case AdminFreeze:
				next.System.AdminFreeze = on
			default:
				return Errorf(CodeUnknownFlag, "%q is not a system flag", name).With("allowed_flags", SystemFlagNames)
			}
			return nil
		},
		view: func(r *Revision) any {
			v, _ := r.System.Get(name)
			return map[string]any{name: v}
		},
		ignoresAdminFreeze: name == AdminFreeze && !on,
	}
}

// SetActiveProfile makes profile the active one.
func SetActiveProfile(profile string) Mutation {
	return Mutation{
		Action: "set_profile",
		Target: ProfileKey,
		apply: func(next *Revision) error {
			if _, ok := next.Profiles[profile]; !ok {
				return Errorf(CodeUnknownProfile, "profile %q is not defined", profile).With("allowed_profiles", next.ProfileNames())
			}
			next.ActiveProfile = profile
			return nil
		},
		view: func(r *Revision) any { return map[string]any{"profile": r.ActiveProfile} },
	}
}

// SetOverride sets a module's version and/or enabled state over the
// profile; a nil field keeps what the current override says.
func SetOverride(module string, version *string, enabled *bool) Mutation {
	return Mutation{
		Action: "set_override",
		Target: "module:" + module,
		apply: func(next *Revision) error {
			if version == nil && enabled == nil {
				return Errorf(CodeInvalidRequest, "an override needs a version, is_enabled, or both")
			}
			if _, ok := next.Module(module); !ok {
				return unknownModule(module)
			}
			o := next.Overrides[module]
			if version != nil {
				o.Version = version
			}
			if enabled != nil {
				o.Enabled = enabled
			}
			next.Overrides[module] = o.clone()
			return nil
		},
		view: overrideView(module),
	}
}

// ClearOverride removes a module's override, so the profile decides again.
func ClearOverride(module string) Mutation {
	return Mutation{
		Action: "clear_override",
		Target: "module:" + module,
		apply: func(next *Revision) error {
			if _, ok := next.Module(module); !ok {
				return unknownModule(module)
			}
			if _, ok := next.Overrides[module]; !ok {
				return Errorf(CodeNotFound, "module %q has no override", module).With("module", module)
			}
			delete(next.Overrides, module)
			return nil
		},
		view: overrideView(module),
	}
}

func overrideView(module string) func(r *Revision) any {
	return func(r *Revision) any {
		o, ok := r.Overrides[module]
		if !ok {
			return map[string]any{"override": nil}
		}
		return map[string]any{"override": o}
	}
}

// ModuleSpec is a request to add a module to the catalog or extend one.
type ModuleSpec struct {
	Key      string
	Kind     Kind
	Versions []string
	// Defaults gives, per profile, the version the module is served at.
	// A new module needs one for every profile.
	Defaults map[string]string
}

// RegisterModule adds a module to the catalog, or adds versions to an
// existing one. Versions are never removed: profiles, overrides and pinned
// sessions may be serving them.
func RegisterModule(spec ModuleSpec) Mutation {
	return Mutation{
		Action: "register_module",
		Target: "module:" + spec.Key,
		apply: func(next *Revision) error {
			if len(spec.Versions) == 0 {
				return Errorf(CodeInvalidRequest, "module %q: versions must list at least one version", spec.Key)
			}
			for p := range spec.Defaults {
				if _, ok := next.Profiles[p]; !ok {
					return Errorf(CodeUnknownProfile, "defaults name profile %q, which is not defined", p).
						With("allowed_profiles", next.ProfileNames())
				}
			}
			existing, exists := next.Module(spec.Key)
			if exists && spec.Kind != "" && spec.Kind != existing.Kind {
				return Errorf(CodeInvalidRequest, "module %q is of kind %q; its kind cannot change", spec.Key, existing.Kind)
			}
			m := existing
			if !exists {
				m = Module{Key: spec.Key, Kind: spec.Kind}
			}
			for _, v := range spec.Versions {
				if !slices.Contains(m.Versions, v) {
					m.Versions = append(m.Versions, v)
				}
			}
			if exists {
				i := slices.IndexFunc(next.Catalog, func(c Module) bool { return c.Key == m.Key })
				next.Catalog[i] = m
			} else {
				next.Catalog = append(next.Catalog, m)
				slices.SortFunc(next.Catalog, func(a, b Module) int { return strings.Compare(a.Key, b.Key) })
			}
			var missing []string
			for _, name := range next.ProfileNames() {
				version, ok := spec.Defaults[name]
				if !ok {
					if !exists {
						missing = append(missing, name)
					}
					continue
				}
				if !m.Allows(version) {
					return Errorf(CodeUnknownVersion, "default for profile %q: module %q has no version %q", name, m.Key, version).
						With("module", m.Key).With("allowed_versions", m.Versions)
				}
				entry, had := next.Profiles[name].Modules[m.Key]
				if !had {
					entry.Enabled = m.Kind != KindInfra || name != ProfileFallback
				}
				entry.Version = version
				next.Profiles[name].Modules[m.Key] = entry
			}
			if len(missing) > 0 {
				return Errorf(CodeInvalidRequest, "new module %q needs a default version for every profile", spec.Key).
					With("missing_profiles", missing)
			}
			return nil
		},
		view: func(r *Revision) any {
			m, ok := r.Module(spec.Key)
			if !ok {
				return map[string]any{"module": nil}
			}
			defaults := map[string]ProfileEntry{}
			for name, p := range r.Profiles {
				defaults[name] = p.Modules[spec.Key]
			}
			return map[string]any{"module": m, "defaults": defaults}
		},
	}
}

// ProfilePatch changes one module's entry in a profile; a nil field keeps
// the current value.
type ProfilePatch struct {
	Version *string
	Enabled *bool
}

// UpdateProfile edits the module defaults of an existing profile.
func UpdateProfile(name string, config map[string]ProfilePatch) Mutation {
	return Mutation{
		Action: "update_profile",
		Target: "profile:" + name,
		apply: func(next *Revision) error {
			p, ok := next.Profiles[name]
			if !ok {
				return Errorf(CodeUnknownProfile, "profile %q is not defined", name).With("allowed_profiles", next.ProfileNames())
			}
			if len(config) == 0 {
				return Errorf(CodeInvalidRequest, "config must change at least one module")
			}
			modules := maps.Clone(p.Modules)
			for key, patch := range config {
				entry, ok := modules[key]
				if !ok {
					return unknownModule(key)
				}
				if patch.Version != nil {
					if err := next.checkVersion(key, *patch.Version); err != nil {
						return err
					}
					entry.Version = *patch.Version
				}
				if patch.Enabled != nil {
					entry.Enabled = *patch.Enabled
				}
				modules[key] = entry
			}
			next.Profiles[name] = Profile{Name: name, Modules: modules}
			return nil
		},
		view: func(r *Revision) any { return map[string]any{"profile": r.Profiles[name]} },
	}
}

// ImportFlags adds the document's general flags to the revision, replacing
// flags with the same key, and merges its evaluators and metadata. The
// result is validated like any change: one bad flag refuses the import.
func ImportFlags(doc Document) Mutation {
	keys := make([]string, 0, len(doc.Flags))
	for k := range doc.Flags {
		keys = append(keys, k)
	}
	return Mutation{
		Action: "import_flags",
		Target: "flags",
		apply: func(next *Revision) error {
			if len(doc.Flags) == 0 {
				return Errorf(CodeInvalidRequest, "the document defines no flags")
			}
			// Revision.Clone shares these maps with cur: merge into copies.
			next.Flags = merged(next.Flags, doc.Flags)
			if len(doc.Evaluators) > 0 {
				next.Evaluators = merged(next.Evaluators, doc.Evaluators)
			}
			if len(doc.Metadata) > 0 {
				next.Metadata = merged(next.Metadata, doc.Metadata)
			}
			return nil
		},
		view: func(r *Revision) any {
			flags := map[string]any{}
			for _, k := range keys {
				if f, ok := r.Flags[k]; ok {
					flags[k] = f
				} else {
					flags[k] = nil
				}
			}
			return map[string]any{"flags": flags}
		},
	}
}

// merged returns a new map holding a's entries and b's, b's winning.
func merged[V any](a, b map[string]V) map[string]V {
	m := make(map[string]V, len(a)+len(b))
	maps.Copy(m, a)
	maps.Copy(m, b)
	return m
}
