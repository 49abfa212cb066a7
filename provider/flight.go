package provider

import "sync"

// flight runs one call per key at a time: callers asking for a key already
// being fetched wait for that fetch and share its result, so a burst of
// evaluations for a new session costs one round of requests, not one each.
type flight[V any] struct {
	mu    sync.Mutex
	calls map[string]*flightCall[V]
}

type flightCall[V any] struct {
	done  chan struct{}
	value V
	err   error
}

// do returns fn's result for key, running fn unless a call for key is
// already under way.
func (f *flight[V]) do(key string, fn func() (V, error)) (V, error) {
	f.mu.Lock()
	if c, ok := f.calls[key]; ok {
		f.mu.Unlock()
		<-c.done
		return c.value, c.err
	}
	if f.calls == nil {
		f.calls = map[string]*flightCall[V]{}
	}
	c := &flightCall[V]{done: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()

	defer func() {
		f.mu.Lock()
		delete(f.calls, key)
		f.mu.Unlock()
		close(c.done)
	}()
	c.value, c.err = fn()
	return c.value, c.err
}
