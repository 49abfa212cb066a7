// Package lru is a bounded, concurrency-safe least-recently-used cache.
// Switchyard caches immutable values with it (old revisions, their
// compiled flag sets, session snapshots): a hit never needs revalidating,
// only bounding, and a hit allocates nothing.
package lru

import (
	"container/list"
	"sync"
)

// Cache holds entries up to a bound on their total size: adding one
// evicts the least recently used until the rest fits. Each entry counts as
// one (New) or as what a size function says of its value (NewSized). A
// Cache with max <= 0 holds nothing.
type Cache[K comparable, V any] struct {
	mu    sync.Mutex
	max   int64
	size  func(V) int64
	used  int64
	order *list.List // of *entry, most recently used first
	items map[K]*list.Element
}

type entry[K comparable, V any] struct {
	key   K
	value V
	size  int64
}

// New returns an empty cache bounded to max entries.
func New[K comparable, V any](max int) *Cache[K, V] {
	return NewSized[K](int64(max), func(V) int64 { return 1 })
}

// NewSized returns an empty cache bounded to max in total, each value
// counting what size says of it when it is added (its bytes, say), so a
// cache of values of very different sizes is bounded in memory, not in
// count. A value larger than max is not kept, and evicts nothing.
func NewSized[K comparable, V any](max int64, size func(V) int64) *Cache[K, V] {
	return &Cache[K, V]{max: max, size: size, order: list.New(), items: map[K]*list.Element{}}
}

// Get returns the value cached under key and marks it recently used.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*entry[K, V]).value, true
}

// Add caches value under key, evicting the least recently used entries
// until the cache is within its bound again.
func (c *Cache[K, V]) Add(key K, value V) {
	if c.max <= 0 {
		return
	}
	size := c.size(value)
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if size > c.max {
		// Keeping it would evict everything else, and then itself.
		if ok {
			c.remove(el)
		}
		return
	}
	if ok {
		e := el.Value.(*entry[K, V])
		c.used += size - e.size
		e.value, e.size = value, size
		c.order.MoveToFront(el)
	} else {
		c.items[key] = c.order.PushFront(&entry[K, V]{key: key, value: value, size: size})
		c.used += size
	}
	for c.used > c.max {
		c.remove(c.order.Back())
	}
}

// remove drops el; c.mu must be held.
func (c *Cache[K, V]) remove(el *list.Element) {
	e := el.Value.(*entry[K, V])
	c.order.Remove(el)
	delete(c.items, e.key)
	c.used -= e.size
}

// Remove drops key, so an expired value is not kept until it is evicted.
func (c *Cache[K, V]) Remove(key K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.remove(el)
	}
}

// Purge drops every entry, for when what they were read from is gone.
func (c *Cache[K, V]) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.order.Init()
	clear(c.items)
	c.used = 0
}

// Len returns how many entries are cached.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// Values returns every cached value, most recently used first, without
// marking any as used: a copy for whoever saves the cache elsewhere.
func (c *Cache[K, V]) Values() []V {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]V, 0, c.order.Len())
	for el := c.order.Front(); el != nil; el = el.Next() {
		out = append(out, el.Value.(*entry[K, V]).value)
	}
	return out
}
