package memory_test

import (
	"testing"

	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
	"github.com/switchyard-dev/switchyard/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		s := memory.NewDemo()
		return storetest.Harness{
			Store: s,
			Tamper: func(t *testing.T, seq int64, reason string) {
				s.Tamper(seq, func(e *store.AuditEntry) { e.Reason = reason })
			},
		}
	})
}
