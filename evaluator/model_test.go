package evaluator_test

import (
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
)

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// apply runs mutations in order from the initial revision, failing the test
// on the first error.
func apply(t *testing.T, ms ...switchyard.Mutation) *switchyard.Revision {
	t.Helper()
	r := switchyard.InitialRevision(t0)
	for _, m := range ms {
		next, err := m.Apply(r, t0)
		if err != nil {
			t.Fatalf("%s %s: %v", m.Action, m.Target, err)
		}
		r = next
	}
	return r
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name     string
		changes  []switchyard.Mutation
		module   string
		want     switchyard.ResolvedModule
		profile  string
		revision int64
	}{
		{"primary serves v1", nil, "mastery",
			switchyard.ResolvedModule{Version: "v1", Enabled: true, Source: switchyard.SourceProfile}, "primary", 1},
		{"fallback serves v0", []switchyard.Mutation{switchyard.SetActiveProfile("fallback")}, "mastery",
			switchyard.ResolvedModule{Version: "v0", Enabled: true, Source: switchyard.SourceProfile}, "fallback", 2},
		{"fallback turns infra off", []switchyard.Mutation{switchyard.SetActiveProfile("fallback")}, "neo4j",
			switchyard.ResolvedModule{Version: "v0", Enabled: false, Source: switchyard.SourceProfile}, "fallback", 2},
		{"shadow runs infra at v1 behind v0 algorithms", []switchyard.Mutation{switchyard.SetActiveProfile("shadow")}, "irt_shadow",
			switchyard.ResolvedModule{Version: "v1", Enabled: true, Source: switchyard.SourceProfile}, "shadow", 2},
		{"override version beats profile", []switchyard.Mutation{
			switchyard.SetActiveProfile("fallback"), switchyard.SetOverride("mastery", ptr("v1"), nil)}, "mastery",
			switchyard.ResolvedModule{Version: "v1", Enabled: true, Source: switchyard.SourceOverride}, "fallback", 3},
		{"override enabled keeps profile version", []switchyard.Mutation{
			switchyard.SetOverride("neo4j", nil, ptr(false))}, "neo4j",
			switchyard.ResolvedModule{Version: "v1", Enabled: false, Source: switchyard.SourceOverride}, "primary", 2},
		{"second override field merges", []switchyard.Mutation{
			switchyard.SetOverride("search", ptr("v0"), nil), switchyard.SetOverride("search", nil, ptr(false))}, "search",
			switchyard.ResolvedModule{Version: "v0", Enabled: false, Source: switchyard.SourceOverride}, "primary", 3},
		{"cleared override returns to profile", []switchyard.Mutation{
			switchyard.SetOverride("search", ptr("v0"), nil), switchyard.ClearOverride("search")}, "search",
			switchyard.ResolvedModule{Version: "v1", Enabled: true, Source: switchyard.SourceProfile}, "primary", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := evaluator.Resolve(apply(t, tt.changes...))
			if got := rt.Modules[tt.module]; got != tt.want {
				t.Errorf("%s = %+v, want %+v", tt.module, got, tt.want)
			}
			if rt.Profile != tt.profile || rt.Revision != tt.revision {
				t.Errorf("profile %q revision %d, want %q %d", rt.Profile, rt.Revision, tt.profile, tt.revision)
			}
		})
	}
}

func TestMutationsRejected(t *testing.T) {
	frozen := apply(t, switchyard.SetSystemFlag(switchyard.AdminFreeze, true))
	tests := []struct {
		name string
		base *switchyard.Revision
		m    switchyard.Mutation
		want switchyard.Code
	}{
		{"override to a version the catalog does not allow", nil, switchyard.SetOverride("mastery", ptr("v7"), nil), switchyard.CodeUnknownVersion},
		{"override of an unknown module", nil, switchyard.SetOverride("ghost", ptr("v1"), nil), switchyard.CodeUnknownModule},
		{"override with nothing to set", nil, switchyard.SetOverride("mastery", nil, nil), switchyard.CodeInvalidRequest},
		{"clear without override", nil, switchyard.ClearOverride("mastery"), switchyard.CodeNotFound},
		{"unknown profile", nil, switchyard.SetActiveProfile("turbo"), switchyard.CodeUnknownProfile},
		{"unknown system flag", nil, switchyard.SetSystemFlag("WARP_DRIVE", true), switchyard.CodeUnknownFlag},
		{"profile with unknown version", nil, switchyard.UpdateProfile("primary", map[string]switchyard.ProfilePatch{"mastery": {Version: ptr("v9")}}), switchyard.CodeUnknownVersion},
		{"profile with unknown module", nil, switchyard.UpdateProfile("primary", map[string]switchyard.ProfilePatch{"ghost": {Version: ptr("v1")}}), switchyard.CodeUnknownModule},
		{"new module without every default", nil, switchyard.RegisterModule(switchyard.ModuleSpec{Key: "ranking", Kind: switchyard.KindAlgorithm,
			Versions: []string{"v0"}, Defaults: map[string]string{"primary": "v0"}}), switchyard.CodeInvalidRequest},
		{"module default names a missing version", nil, switchyard.RegisterModule(switchyard.ModuleSpec{Key: "ranking", Kind: switchyard.KindAlgorithm,
			Versions: []string{"v0"}, Defaults: map[string]string{"primary": "v1", "fallback": "v0", "shadow": "v0"}}), switchyard.CodeUnknownVersion},
		{"module kind cannot change", nil, switchyard.RegisterModule(switchyard.ModuleSpec{Key: "mastery", Kind: switchyard.KindInfra,
			Versions: []string{"v2"}}), switchyard.CodeInvalidRequest},
		{"bad module key", nil, switchyard.RegisterModule(switchyard.ModuleSpec{Key: "Bad Key", Kind: switchyard.KindAlgorithm,
			Versions: []string{"v0"}, Defaults: map[string]string{"primary": "v0", "fallback": "v0", "shadow": "v0"}}), switchyard.CodeInvalidRequest},
		{"admin freeze refuses changes", frozen, switchyard.SetSystemFlag(switchyard.ExamMode, true), switchyard.CodeAdminFreezeActive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := tt.base
			if base == nil {
				base = switchyard.InitialRevision(t0)
			}
			before := evaluator.Resolve(base)
			_, err := tt.m.Apply(base, t0)
			if got := switchyard.ErrorCode(err); got != tt.want {
				t.Fatalf("error %v (code %s), want %s", err, got, tt.want)
			}
			if after := evaluator.Resolve(base); after.Modules["mastery"] != before.Modules["mastery"] || after.Revision != before.Revision {
				t.Fatal("a refused mutation changed its input revision")
			}
		})
	}
}

func TestRegisterModule(t *testing.T) {
	r := apply(t,
		switchyard.RegisterModule(switchyard.ModuleSpec{Key: "ranking", Kind: switchyard.KindInfra, Versions: []string{"v0", "v1"},
			Defaults: map[string]string{"primary": "v1", "fallback": "v0", "shadow": "v1"}}),
		switchyard.RegisterModule(switchyard.ModuleSpec{Key: "mastery", Versions: []string{"v2"}, Defaults: map[string]string{"primary": "v2"}}),
	)
	m, ok := r.Module("ranking")
	if !ok || m.Kind != switchyard.KindInfra {
		t.Fatalf("ranking = %+v, %v", m, ok)
	}
	if got := r.Profiles["fallback"].Modules["ranking"]; got.Enabled || got.Version != "v0" {
		t.Errorf("new infra module in fallback = %+v, want v0 disabled", got)
	}
	mastery, _ := r.Module("mastery")
	if len(mastery.Versions) != 3 {
		t.Errorf("mastery versions = %v, want v0 v1 v2 (versions are never removed)", mastery.Versions)
	}
	rt := evaluator.Resolve(r)
	if rt.Modules["mastery"].Version != "v2" || rt.Modules["ranking"] != (switchyard.ResolvedModule{Version: "v1", Enabled: true, Source: switchyard.SourceProfile}) {
		t.Errorf("resolved = %+v / %+v", rt.Modules["mastery"], rt.Modules["ranking"])
	}
}

func TestAdminFreezeCanBeLifted(t *testing.T) {
	r := apply(t, switchyard.SetSystemFlag(switchyard.AdminFreeze, true), switchyard.SetSystemFlag(switchyard.AdminFreeze, false),
		switchyard.SetSystemFlag(switchyard.ExamMode, true))
	if r.System.AdminFreeze || !r.System.ExamMode || r.Number != 4 {
		t.Fatalf("system = %+v at revision %d", r.System, r.Number)
	}
}

func TestConservativeFallback(t *testing.T) {
	r := switchyard.ConservativeFallback()
	rt := evaluator.Resolve(r)
	if rt.Profile != "fallback" || !rt.System.FreezeUpdates || rt.Revision != 0 {
		t.Fatalf("fallback runtime = %+v", rt)
	}
	for _, m := range r.Catalog {
		if m.Kind == switchyard.KindInfra && rt.Modules[m.Key].Enabled {
			t.Errorf("infra module %s is on in the conservative fallback", m.Key)
		}
	}
	if err := evaluator.Validate(r); err != nil {
		t.Fatal(err)
	}
}

func TestRuntimeFlags(t *testing.T) {
	r := apply(t, switchyard.SetSystemFlag(switchyard.ExamMode, true), switchyard.SetOverride("neo4j", nil, ptr(false)),
		switchyard.SetOverride("mastery", ptr("v0"), nil))
	fs, err := evaluator.Compile(r, "production")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key     string
		typ     evaluator.Type
		value   any
		variant string
		reason  evaluator.Reason
		errCode evaluator.ResolutionError
	}{
		{"EXAM_MODE", evaluator.TypeBoolean, true, "on", evaluator.ReasonStatic, ""},
		{"FREEZE_UPDATES", evaluator.TypeBoolean, false, "off", evaluator.ReasonStatic, ""},
		{"ADMIN_FREEZE", evaluator.TypeBoolean, false, "off", evaluator.ReasonStatic, ""},
		{"SYSTEM_MODE", evaluator.TypeString, "production", "production", evaluator.ReasonStatic, ""},
		{"runtime.profile", evaluator.TypeString, "primary", "primary", evaluator.ReasonStatic, ""},
		{"module.mastery", evaluator.TypeString, "v0", "v0", evaluator.ReasonStatic, ""},
		{"module.mastery.enabled", evaluator.TypeBoolean, true, "on", evaluator.ReasonStatic, ""},
		{"module.neo4j", evaluator.TypeString, nil, "", evaluator.ReasonDisabled, ""},
		{"module.neo4j.enabled", evaluator.TypeBoolean, false, "off", evaluator.ReasonStatic, ""},
		{"module.mastery", evaluator.TypeBoolean, nil, "", evaluator.ReasonError, evaluator.TypeMismatch},
		{"module.ghost", evaluator.TypeString, nil, "", evaluator.ReasonError, evaluator.FlagNotFound},
	}
	for _, tt := range tests {
		res := fs.Evaluate(tt.key, nil).As(tt.typ)
		if res.Value != tt.value || res.Variant != tt.variant || res.Reason != tt.reason || res.ErrorCode != tt.errCode {
			t.Errorf("%s as %s = %+v, want value %v variant %q reason %s error %q", tt.key, tt.typ, res, tt.value, tt.variant, tt.reason, tt.errCode)
		}
	}
	live := fs.Evaluate("EXAM_MODE", nil)
	pinned := fs.Pinned().Evaluate("EXAM_MODE", nil)
	if live.Metadata["pinned"] != false || pinned.Metadata["pinned"] != true || pinned.Metadata["revision"] != int64(4) {
		t.Errorf("metadata live %v pinned %v", live.Metadata, pinned.Metadata)
	}
}

func TestGeneralFlagKeysCannotCollide(t *testing.T) {
	for _, key := range []string{"EXAM_MODE", "SYSTEM_MODE", "runtime.profile", "runtime.other", "module.mastery", "module.x.enabled", ""} {
		doc := switchyard.Document{Flags: map[string]switchyard.Flag{key: {State: switchyard.StateEnabled,
			Variants: map[string]any{"on": true}, DefaultVariant: ptr("on")}}}
		if _, err := switchyard.ImportFlags(doc).Apply(switchyard.InitialRevision(t0), t0); switchyard.ErrorCode(err) != switchyard.CodeInvalidRequest {
			t.Errorf("importing flag %q: error %v, want INVALID_REQUEST", key, err)
		}
	}
}

func TestExportIncludesRuntimeFlags(t *testing.T) {
	r := apply(t, switchyard.ImportFlags(switchyard.Document{Flags: map[string]switchyard.Flag{"new-checkout": {
		State: switchyard.StateEnabled, Variants: map[string]any{"on": true, "off": false}, DefaultVariant: ptr("off")}}}))
	doc := evaluator.Export(r, "demo")
	if _, ok := doc.Flags["new-checkout"]; !ok {
		t.Fatal("export lost the general flag")
	}
	if f := doc.Flags["module.mastery"]; *f.DefaultVariant != "v1" || f.State != switchyard.StateEnabled {
		t.Fatalf("module.mastery exported as %+v", f)
	}
	back := switchyard.InitialRevision(t0)
	back.Flags = map[string]switchyard.Flag{"new-checkout": doc.Flags["new-checkout"]}
	if err := evaluator.Validate(back); err != nil {
		t.Fatalf("exported general flag does not validate: %v", err)
	}
}

func TestSnapshotIsACopy(t *testing.T) {
	r := apply(t)
	s := evaluator.NewSnapshot("s-1", "u-1", r, t0, time.Hour)
	if s.Revision != 1 || s.Profile != "primary" || s.Modules["mastery"].Version != "v1" || !s.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("snapshot = %+v", s)
	}
	for _, id := range []string{"", "has space", string(make([]byte, 129))} {
		if switchyard.ValidateSessionID(id) == nil {
			t.Errorf("session id %q accepted", id)
		}
	}
}
