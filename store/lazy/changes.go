package lazy

import (
	"context"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
)

// ProposeChange implements store.Store.
func (l *Store) ProposeChange(ctx context.Context, cr switchyard.ChangeRequest, a store.Attempt) (switchyard.ChangeRequest, store.AuditEntry, error) {
	st, err := l.get()
	if err != nil {
		return switchyard.ChangeRequest{}, store.AuditEntry{}, err
	}
	return st.ProposeChange(ctx, cr, a)
}

// ChangeRequest implements store.Store.
func (l *Store) ChangeRequest(ctx context.Context, id int64) (switchyard.ChangeRequest, error) {
	st, err := l.get()
	if err != nil {
		return switchyard.ChangeRequest{}, err
	}
	return st.ChangeRequest(ctx, id)
}

// ChangeRequests implements store.Store.
func (l *Store) ChangeRequests(ctx context.Context, q store.ChangeQuery) ([]switchyard.ChangeRequest, error) {
	st, err := l.get()
	if err != nil {
		return nil, err
	}
	return st.ChangeRequests(ctx, q)
}

// MoveChange implements store.Store.
func (l *Store) MoveChange(ctx context.Context, id int64, m store.Move) (switchyard.ChangeRequest, store.AuditEntry, error) {
	st, err := l.get()
	if err != nil {
		return switchyard.ChangeRequest{}, store.AuditEntry{}, err
	}
	return st.MoveChange(ctx, id, m)
}

// ClaimDue implements store.Store.
func (l *Store) ClaimDue(ctx context.Context, q store.DueQuery, work func(switchyard.ChangeRequest) (store.Move, bool)) (int64, error) {
	st, err := l.get()
	if err != nil {
		return 0, err
	}
	return st.ClaimDue(ctx, q, work)
}
