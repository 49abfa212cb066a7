package rediscache

import (
	"fmt"

	"github.com/switchyard-dev/switchyard/store"
)

var (
	_ store.HealthReporter = (*Store)(nil)
	_ store.Identifier     = (*Store)(nil)
)

// Degraded implements store.HealthReporter: it says whether Redis is down
// and why, in the form the server's /readyz reports for any store: the cache keeps answering from Postgres
// during an outage, so only this tells an operator that it is degraded.
func (s *Store) Degraded() (reason string, degraded bool) {
	h := s.Health()
	if h.OK {
		return "", false
	}
	return fmt.Sprintf("Redis does not answer since %s (%s); reading Postgres directly",
		h.Since.UTC().Format("2006-01-02T15:04:05Z"), h.Error), true
}

// Identity implements store.Identifier: a cache holds what the store it
// wraps holds, so it is that store's identity.
func (s *Store) Identity() store.Identity {
	if id, ok := s.inner.(store.Identifier); ok {
		return id.Identity()
	}
	return store.Identity{}
}
