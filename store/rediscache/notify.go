package rediscache

import "sync"

// notifier hands new current revision numbers to the OnChange listeners on
// a goroutine of its own. The paths that learn of a number (Apply,
// Announce, the invalidation loop) only leave it in a slot, so they never
// call into a listener, with or without a lock held, and a slow listener
// holds none of them up. The goroutine runs only while a number waits to
// be delivered and ends once the listeners have caught up, so there is
// nothing to stop when the store is no longer used.
type notifier struct {
	mu        sync.Mutex
	listeners []func(revision int64)
	// latest is the newest number announced; delivered the newest handed
	// to the listeners. A number at or below latest is not news.
	latest, delivered int64
	// delivering says whether the delivery goroutine is running; there is
	// at most one, so every listener hears the numbers in rising order.
	delivering bool
}

// add registers fn for the numbers announced from now on.
func (n *notifier) add(fn func(revision int64)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.listeners = append(n.listeners, fn)
}

// notify announces rev unless it is not newer than the last number
// announced, and starts the delivery goroutine unless it is running. It
// never waits for a listener.
func (n *notifier) notify(rev int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if rev <= n.latest {
		return
	}
	n.latest = rev
	if !n.delivering {
		n.delivering = true
		go n.deliver()
	}
}

// deliver calls every listener, in the order they registered, with the
// newest number announced, until none newer is waiting. A number announced
// while the listeners were busy replaces any announced before it, so a
// listener that is behind hears only the newest.
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
