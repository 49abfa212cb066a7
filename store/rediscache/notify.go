package rediscache

import (
	"sync"

	"github.com/switchyard-dev/switchyard"
)

// notifier hands new current revisions to the OnChange listeners on a
// goroutine of its own. The paths that learn of a revision (Apply,
// Announce, the invalidation loop) only leave it in a slot, so they never
// call into a listener, with or without a lock held, and a slow listener
// holds none of them up. The goroutine runs only while a revision waits to
// be delivered and ends once the listeners have caught up, so there is
// nothing to stop when the store is no longer used.
type notifier struct {
	mu        sync.Mutex
	listeners []func(rev *switchyard.Revision)
	// latest is the newest revision announced; delivered the newest handed
	// to the listeners.
	latest, delivered *switchyard.Revision
	// delivering says whether the delivery goroutine is running; there is
	// at most one, so every listener hears the revisions in the order they
	// were announced.
	delivering bool
}

// add registers fn for the revisions announced from now on.
func (n *notifier) add(fn func(rev *switchyard.Revision)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.listeners = append(n.listeners, fn)
}

// notify announces rev unless it is numbered no higher than the last
// revision announced: within one history that one is the same or newer.
// It never waits for a listener.
func (n *notifier) notify(rev *switchyard.Revision) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.latest != nil && rev.Number <= n.latest.Number {
		return
	}
	n.announce(rev)
}

// reset announces rev, the current revision of a history that replaced the
// one announced so far (the store's history was rewound), whatever its
// number; later revisions are news when numbered above it.
func (n *notifier) reset(rev *switchyard.Revision) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.announce(rev)
}

// announce makes rev the latest revision and starts the delivery
// goroutine unless it is running; n.mu must be held.
func (n *notifier) announce(rev *switchyard.Revision) {
	n.latest = rev
	if !n.delivering {
		n.delivering = true
		go n.deliver()
	}
}

// deliver calls every listener, in the order they registered, with the
// newest revision announced, until none newer is waiting. A revision
// announced while the listeners were busy replaces any announced before
// it, so a listener that is behind hears only the newest.
func (n *notifier) deliver() {
	for {
		n.mu.Lock()
		if n.delivered == n.latest {
			n.delivering = false
			n.mu.Unlock()
			return
		}
		rev, listeners := n.latest, n.listeners
		n.delivered = rev
		n.mu.Unlock()
		// Listeners registered from now on are appended past len(listeners),
		// so this slice of them never changes under the calls.
		for _, fn := range listeners {
			fn(rev)
		}
	}
}
