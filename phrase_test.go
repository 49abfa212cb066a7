package switchyard_test

import (
	"testing"

	"github.com/switchyard-dev/switchyard"
)

// The phrases are the ones the API reference lists: operators learn them,
// and scripts carry them.
func TestPhrases(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{switchyard.SystemFlagPhrase(switchyard.ExamMode, true), "ENABLE EXAM MODE"},
		{switchyard.SystemFlagPhrase(switchyard.FreezeUpdates, false), "DISABLE FREEZE UPDATES"},
		{switchyard.SystemFlagPhrase(switchyard.AdminFreeze, true), "ENABLE ADMIN FREEZE"},
		{switchyard.ProfilePhrase("fallback"), "SET PROFILE FALLBACK"},
		{switchyard.OverrideVersionPhrase("mastery", "v0"), "OVERRIDE MODULE mastery TO v0"},
		{switchyard.ModuleEnabledPhrase("neo4j", false), "DISABLE MODULE neo4j"},
		{switchyard.ClearOverridePhrase("mastery"), "CLEAR OVERRIDE mastery"},
		{switchyard.RegisterModulePhrase("ranking"), "REGISTER MODULE ranking"},
		{switchyard.UpdateProfilePhrase("shadow"), "UPDATE PROFILE SHADOW"},
		{switchyard.ModeSwitchPhrase(switchyard.ModeProduction), "SWITCH TO PRODUCTION MODE"},
	} {
		if tt.got != tt.want {
			t.Errorf("phrase %q, want %q", tt.got, tt.want)
		}
	}
}
