package memory

import (
	"cmp"
	"context"
	"slices"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
)

// requests is what the store keeps of change requests; Store.mu guards it.
type requests struct {
	// all holds every request, all[i].ID == i+1.
	all []switchyard.ChangeRequest
	// scheduled holds the IDs of the requests with something due or
	// scheduled, so the scheduler's claims and the status look at those
	// only.
	scheduled map[int64]bool
	// claimed holds the requests claimed now, each with a channel closed
	// when its claim ends.
	claimed map[int64]chan struct{}
}

func newRequests() requests {
	return requests{scheduled: map[int64]bool{}, claimed: map[int64]chan struct{}{}}
}

// put stores cr, new or moved; s.mu must be held.
func (r *requests) put(cr switchyard.ChangeRequest) {
	if cr.ID > int64(len(r.all)) {
		r.all = append(r.all, cr)
	} else {
		r.all[cr.ID-1] = cr
	}
	_, due := cr.DueAt()
	_, _, next := cr.Next()
	if due || next {
		r.scheduled[cr.ID] = true
	} else {
		delete(r.scheduled, cr.ID)
	}
}

// get returns request id; s.mu must be held.
func (r *requests) get(id int64) (switchyard.ChangeRequest, error) {
	if id < 1 || id > int64(len(r.all)) {
		return switchyard.ChangeRequest{}, switchyard.Errorf(switchyard.CodeNotFound, "change request %d does not exist", id)
	}
	return r.all[id-1].Clone(), nil
}

// ProposeChange implements store.Store. A key already kept answers the
// request it proposed, or, with another request, the refusal, which the
// caller records.
func (s *Store) ProposeChange(ctx context.Context, cr switchyard.ChangeRequest, a store.Attempt) (switchyard.ChangeRequest, store.AuditEntry, error) {
	if err := ctx.Err(); err != nil {
		return switchyard.ChangeRequest{}, store.AuditEntry{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keyed(a.IdempotencyKey); ok {
		a.Target = k.Entry.Target
		if err := k.Answers(a); err != nil {
			return switchyard.ChangeRequest{}, store.AuditEntry{}, err
		}
		id, _ := switchyard.ChangeTargetID(k.Entry.Target)
		cr, err := s.requests.get(id)
		return cr, k.Entry, err
	}
	id := int64(len(s.requests.all)) + 1
	a.Target = switchyard.ChangeTarget(id)
	cr, after := store.Proposed(cr, id, a)
	now := s.now()
	e, err := store.NewAuditEntry(a, now, s.revisions[len(s.revisions)-1].Number, nil, nil, after)
	if err != nil {
		return switchyard.ChangeRequest{}, store.AuditEntry{}, err
	}
	s.requests.put(cr)
	e = s.append(e)
	s.keep(a, e, now)
	return cr.Clone(), e, nil
}

// ChangeRequest implements store.Store.
func (s *Store) ChangeRequest(ctx context.Context, id int64) (switchyard.ChangeRequest, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.requests.get(id)
}

// ChangeRequests implements store.Store.
func (s *Store) ChangeRequests(ctx context.Context, q store.ChangeQuery) ([]switchyard.ChangeRequest, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	limit := store.ClampLimit(q.Limit)
	out := []switchyard.ChangeRequest{}
	if q.Scheduled {
		for id := range s.requests.scheduled {
			cr := s.requests.all[id-1]
			if _, _, ok := cr.Next(); ok && (q.State == "" || cr.State == q.State) {
				out = append(out, cr.Clone())
			}
		}
		slices.SortFunc(out, func(a, b switchyard.ChangeRequest) int {
			_, at, _ := a.Next()
			_, bt, _ := b.Next()
			return cmp.Or(at.Compare(bt), cmp.Compare(a.ID, b.ID))
		})
		return out[:min(len(out), limit)], nil
	}
	end := int64(len(s.requests.all))
	if q.Before > 0 {
		end = min(end, q.Before-1)
	}
	for id := end; id >= 1 && len(out) < limit; id-- {
		if cr := s.requests.all[id-1]; q.State == "" || cr.State == q.State {
			out = append(out, cr.Clone())
		}
	}
	return out, nil
}

// MoveChange implements store.Store. A move of a request claimed now
// waits for the claim to end.
func (s *Store) MoveChange(ctx context.Context, id int64, m store.Move) (switchyard.ChangeRequest, store.AuditEntry, error) {
	for {
		s.mu.Lock()
		claim, claimed := s.requests.claimed[id]
		if !claimed {
			break
		}
		s.mu.Unlock()
		select {
		case <-claim:
		case <-ctx.Done():
			return switchyard.ChangeRequest{}, store.AuditEntry{}, ctx.Err()
		}
	}
	defer s.mu.Unlock()
	return s.move(id, m)
}

// move makes m of request id; s.mu must be held.
func (s *Store) move(id int64, m store.Move) (switchyard.ChangeRequest, store.AuditEntry, error) {
	cr, err := s.requests.get(id)
	if err != nil {
		return switchyard.ChangeRequest{}, store.AuditEntry{}, err
	}
	m.Target = switchyard.ChangeTarget(id)
	now, revision := s.now(), s.revisions[len(s.revisions)-1].Number
	next, before, after, refusal := store.Moved(cr, m)
	if refusal != nil {
		return switchyard.ChangeRequest{}, s.reject(m.Attempt, now, revision, refusal), refusal
	}
	e, err := store.NewAuditEntry(m.Attempt, now, revision, nil, before, after)
	if err != nil {
		return switchyard.ChangeRequest{}, store.AuditEntry{}, err
	}
	s.requests.put(next)
	return next.Clone(), s.append(e), nil
}

// ClaimDue implements store.Store. The claim is a mark, so work runs
// without the store's lock and may call the store.
func (s *Store) ClaimDue(ctx context.Context, q store.DueQuery, work func(switchyard.ChangeRequest) (store.Move, bool)) (int64, error) {
	s.mu.Lock()
	cr, ok := s.due(q)
	if !ok {
		s.mu.Unlock()
		return 0, nil
	}
	claim := make(chan struct{})
	s.requests.claimed[cr.ID] = claim
	s.mu.Unlock()

	m, moves := work(cr)

	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests.claimed, cr.ID)
	close(claim)
	if !moves {
		return cr.ID, nil
	}
	_, _, err := s.move(cr.ID, m)
	return cr.ID, err
}

// due returns the request q asks for if it is due and not claimed; s.mu
// must be held.
func (s *Store) due(q store.DueQuery) (switchyard.ChangeRequest, bool) {
	var found switchyard.ChangeRequest
	for id := range s.requests.scheduled {
		if q.ID != 0 && id != q.ID || id <= q.After || found.ID != 0 && id > found.ID || s.requests.claimed[id] != nil {
			continue
		}
		if at, ok := s.requests.all[id-1].DueAt(); ok && !at.After(q.Now) {
			found = s.requests.all[id-1]
		}
	}
	return found.Clone(), found.ID != 0
}
