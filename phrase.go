package switchyard

import "strings"

// Police-mode phrases (design §4): every change must carry the exact phrase
// that names it, typed by the operator, so that no change is made by a
// request sent to the wrong route or with a value nobody read. The server
// requires them and the operator's tools prompt for them, both from here.

// ImportPhrase confirms an import. It names no flag: one import may hold
// hundreds, and the importer's report already says what each becomes.
const ImportPhrase = "IMPORT FLAGS"

// SystemFlagPhrase confirms turning a system flag on or off, e.g.
// ENABLE EXAM MODE or DISABLE FREEZE UPDATES.
func SystemFlagPhrase(flag string, on bool) string {
	return togglePhrase(on, strings.ReplaceAll(flag, "_", " "))
}

// ProfilePhrase confirms making a profile the active one, e.g.
// SET PROFILE FALLBACK.
func ProfilePhrase(name string) string { return "SET PROFILE " + strings.ToUpper(name) }

// OverrideVersionPhrase confirms overriding a module's version, e.g.
// OVERRIDE MODULE mastery TO v0.
func OverrideVersionPhrase(module, version string) string {
	return "OVERRIDE MODULE " + module + " TO " + version
}

// ModuleEnabledPhrase confirms overriding only whether a module is on,
// e.g. DISABLE MODULE neo4j.
func ModuleEnabledPhrase(module string, on bool) string { return togglePhrase(on, "MODULE "+module) }

// ClearOverridePhrase confirms removing a module's override, so the
// profile decides it again.
func ClearOverridePhrase(module string) string { return "CLEAR OVERRIDE " + module }

// RegisterModulePhrase confirms adding a module to the catalog or versions
// to one.
func RegisterModulePhrase(key string) string { return "REGISTER MODULE " + key }

// UpdateProfilePhrase confirms changing the defaults a profile gives
// modules, e.g. UPDATE PROFILE SHADOW.
func UpdateProfilePhrase(name string) string { return "UPDATE PROFILE " + strings.ToUpper(name) }

// ModeSwitchPhrase confirms switching the system mode, e.g.
// SWITCH TO PRODUCTION MODE.
func ModeSwitchPhrase(mode string) string { return "SWITCH TO " + strings.ToUpper(mode) + " MODE" }

// togglePhrase is the phrase that turns a named switch on or off.
func togglePhrase(on bool, name string) string {
	if on {
		return "ENABLE " + name
	}
	return "DISABLE " + name
}
