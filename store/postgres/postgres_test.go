package postgres

import (
	"testing"

	"github.com/switchyard-dev/switchyard/store/storetest"
)

// TestContract runs the behavioural suite store/memory also passes, so the
// two stores never drift.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		f := newFixture(t)
		return storetest.Harness{
			Store: f.store,
			Tamper: func(t *testing.T, seq int64, reason string) {
				f.tamper(t, "UPDATE "+f.table("switch_audit_log")+" SET reason = $1 WHERE seq = $2", reason, seq)
			},
		}
	})
}
