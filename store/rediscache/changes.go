package rediscache

import (
	"context"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
)

// Change requests are not cached: each is read and moved in the wrapped
// store, the truth, so every replica sees every transition at once and the
// scheduler's claims are the truth's own.

// ProposeChange implements store.Store.
func (s *Store) ProposeChange(ctx context.Context, cr switchyard.ChangeRequest, a store.Attempt) (switchyard.ChangeRequest, store.AuditEntry, error) {
	return s.inner.ProposeChange(ctx, cr, a)
}

// ChangeRequest implements store.Store.
func (s *Store) ChangeRequest(ctx context.Context, id int64) (switchyard.ChangeRequest, error) {
	return s.inner.ChangeRequest(ctx, id)
}

// ChangeRequests implements store.Store.
func (s *Store) ChangeRequests(ctx context.Context, q store.ChangeQuery) ([]switchyard.ChangeRequest, error) {
	return s.inner.ChangeRequests(ctx, q)
}

// MoveChange implements store.Store.
func (s *Store) MoveChange(ctx context.Context, id int64, m store.Move) (switchyard.ChangeRequest, store.AuditEntry, error) {
	return s.inner.MoveChange(ctx, id, m)
}

// ClaimDue implements store.Store. The change work makes in a claim goes
// through this store's Apply, the caller's, so it is cached and announced
// like any other.
func (s *Store) ClaimDue(ctx context.Context, q store.DueQuery, work func(switchyard.ChangeRequest) (store.Move, bool)) (int64, error) {
	return s.inner.ClaimDue(ctx, q, work)
}
