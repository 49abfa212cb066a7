package switchyard

import (
	"bytes"
	"encoding/json"
	"fmt"
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
	// restore returns the mutation that sets what this one changes back
	// to how it is in before; nil when the change cannot be undone
	// (catalog versions are never removed, an import replaces flags).
	restore func(before *Revision) Mutation
	// ignoresAdminFreeze is set only on the change that lifts the freeze.
	ignoresAdminFreeze bool
}

// Apply returns the revision that follows cur under the mutation, numbered
// cur.Number+1, stamped now, with a new ID and cur as its parent. cur is
// not modified.
func (m Mutation) Apply(cur *Revision, now time.Time) (*Revision, error) {
	if err := m.Frozen(cur); err != nil {
		return nil, err
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

// Frozen returns the ADMIN_FREEZE_ACTIVE refusal the mutation meets at
// cur, or nil: only the change lifting the freeze passes it.
func (m Mutation) Frozen(cur *Revision) error {
	if m.ignoresAdminFreeze {
		return nil
	}
	return cur.System.AdminFrozen()
}

// Preview returns the revision the mutation would make of cur at now, as
// Apply, but whether or not ADMIN_FREEZE is on: what a change waiting
// for the freeze to be lifted will do.
func (m Mutation) Preview(cur *Revision, now time.Time) (*Revision, error) {
	m.ignoresAdminFreeze = true
	return m.Apply(cur, now)
}

// BoundTo returns the mutation made to apply only while what it changes
// (its View) is as it is in base, and to be refused with REVISION_CONFLICT
// otherwise. A change request applies bound to its base revision, so a
// change made meanwhile to what it touches is never overwritten silently,
// while one to anything else does not block it. The check runs as the
// mutation applies, inside the store's atomic step.
func (m Mutation) BoundTo(base *Revision) Mutation {
	return m.bound(base, func(what string) error {
		return Errorf(CodeRevisionConflict,
			"%s was changed since revision %d, which the change was based on: propose it again", what, base.Number).
			With("base_revision", base.Number)
	})
}

// bound returns m made to apply only while its View is as it is in base;
// conflict makes the refusal otherwise, given what the view names.
func (m Mutation) bound(base *Revision, conflict func(what string) error) Mutation {
	view, apply := m.view, m.apply
	want, werr := json.Marshal(view(base))
	m.apply = func(next *Revision) error {
		if werr != nil {
			return fmt.Errorf("encode the view of %s: %w", m.Target, werr)
		}
		got, err := json.Marshal(view(next))
		if err != nil {
			return fmt.Errorf("encode the view of %s: %w", m.Target, err)
		}
		if !bytes.Equal(got, want) {
			return conflict(m.Target)
		}
		return apply(next)
	}
	return m
}

// Revertible reports whether the change can be undone (Revert): every
// change but registering a module, whose versions are never removed, and
// an import, which replaces flags wholesale.
func (m Mutation) Revertible() bool { return m.restore != nil }

// Revert returns the mutation that undoes the change, which made applied
// of before: it sets what the change touched back to how it was in
// before, and only while that is still as the change left it in applied.
// When it is not (an operator changed it since), the revert is refused
// with REVISION_CONFLICT, and nothing changes. It returns false for a
// change that is not Revertible.
func (m Mutation) Revert(before, applied *Revision) (Mutation, bool) {
	if m.restore == nil {
		return Mutation{}, false
	}
	return m.restore(before).bound(applied, func(what string) error {
		return Errorf(CodeRevisionConflict,
			"%s was changed since revision %d, which the change made: the revert is skipped", what, applied.Number).
			With("applied_revision", applied.Number)
	}), true
}

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
		restore: func(before *Revision) Mutation {
			v, _ := before.System.Get(name)
			return SetSystemFlag(name, v)
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
		view:    func(r *Revision) any { return map[string]any{"profile": r.ActiveProfile} },
		restore: func(before *Revision) Mutation { return SetActiveProfile(before.ActiveProfile) },
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
		view:    overrideView(module),
		restore: restoreOverride(module),
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
		view:    overrideView(module),
		restore: restoreOverride(module),
	}
}

// restoreOverride returns the restore of a change to module's override:
// the override before it, exactly, or none.
func restoreOverride(module string) func(before *Revision) Mutation {
	return func(before *Revision) Mutation {
		o, had := before.Overrides[module]
		action := "clear_override"
		if had {
			action = "set_override"
		}
		return Mutation{
			Action: action,
			Target: "module:" + module,
			apply: func(next *Revision) error {
				if !had {
					delete(next.Overrides, module)
					return nil
				}
				next.Overrides[module] = o.clone()
				return nil
			},
			view: overrideView(module),
		}
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
// the current value. In JSON it is a version string, or {"version",
// "enabled"} with either or both.
type ProfilePatch struct {
	Version *string `json:"version,omitempty"`
	Enabled *bool   `json:"enabled,omitempty"`
}

// UnmarshalJSON accepts both forms, refusing unknown fields in the object.
func (p *ProfilePatch) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '"' {
		var version string
		if err := json.Unmarshal(data, &version); err != nil {
			return err
		}
		*p = ProfilePatch{Version: &version}
		return nil
	}
	var obj struct {
		Version *string `json:"version"`
		Enabled *bool   `json:"enabled"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&obj); err != nil {
		return Errorf(CodeInvalidRequest, `each config entry must be a version string or {"version", "enabled"}: %s`,
			strings.TrimPrefix(err.Error(), "json: "))
	}
	if obj.Version == nil && obj.Enabled == nil {
		return Errorf(CodeInvalidRequest, "each config entry must set version, enabled, or both")
	}
	*p = ProfilePatch{Version: obj.Version, Enabled: obj.Enabled}
	return nil
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
		view: profileView(name),
		restore: func(before *Revision) Mutation {
			p := before.Profiles[name]
			return Mutation{
				Action: "update_profile",
				Target: "profile:" + name,
				apply: func(next *Revision) error {
					next.Profiles[name] = Profile{Name: name, Modules: maps.Clone(p.Modules)}
					return nil
				},
				view: profileView(name),
			}
		},
	}
}

func profileView(name string) func(r *Revision) any {
	return func(r *Revision) any { return map[string]any{"profile": r.Profiles[name]} }
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

// ServeFlagFiles makes the general flags, shared evaluators and flag-set
// metadata exactly doc's, the flag files switchyard serve --flags follows
// (demo mode): flagd serves its files' flags and nothing else, so a flag
// removed from a file is removed here. Runtime flags are not touched.
func ServeFlagFiles(doc Document) Mutation {
	return Mutation{
		Action: "serve_flag_files",
		Target: "flags",
		apply: func(next *Revision) error {
			next.Flags = maps.Clone(doc.Flags)
			next.Evaluators = maps.Clone(doc.Evaluators)
			next.Metadata = maps.Clone(doc.Metadata)
			return nil
		},
		view: func(r *Revision) any {
			return map[string]any{"flags": r.Flags, "evaluators": r.Evaluators, "metadata": r.Metadata}
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
