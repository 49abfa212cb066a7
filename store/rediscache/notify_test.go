package rediscache

import (
	"fmt"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/switchyard-dev/switchyard"
)

// numbered is a revision numbered n, for the notifier, which reads nothing
// else.
func numbered(n int64) *switchyard.Revision {
	return &switchyard.Revision{Number: n, ID: fmt.Sprint("id-", n)}
}

// A listener busy with one number holds up no announcement; once free it
// hears only the newest number announced meanwhile, never an old or a
// repeated one, and the delivery goroutine then ends (synctest fails a
// test that leaves a goroutine blocked in its bubble).
func TestNotifierCoalescesBehindABusyListener(t *testing.T) {
	tests := []struct {
		name string
		// first is delivered at once; the listener blocks on it.
		first int64
		// whileBusy are announced while the listener is blocked.
		whileBusy []int64
		want      []int64
	}{
		{name: "one number", first: 1, want: []int64{1}},
		{name: "behind: the newest only", first: 1, whileBusy: []int64{2, 3, 4}, want: []int64{1, 4}},
		{name: "old and repeated numbers are not news", first: 3, whileBusy: []int64{3, 2, 1}, want: []int64{3}},
		{name: "an old number then a new one", first: 3, whileBusy: []int64{2, 5}, want: []int64{3, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var n notifier
				heard := make(chan int64, 16)
				gate := make(chan struct{})
				n.add(func(rev *switchyard.Revision) {
					heard <- rev.Number
					<-gate
				})
				n.notify(numbered(tt.first))
				synctest.Wait() // the listener is blocked on the first number
				for _, rev := range tt.whileBusy {
					n.notify(numbered(rev)) // returns although the listener is blocked
				}
				close(gate)
				synctest.Wait() // every delivery made
				if got := drain(heard); !slices.Equal(got, tt.want) {
					t.Fatalf("the listener heard %v, want %v", got, tt.want)
				}
			})
		})
	}
}

// Every listener hears each number after those registered before it, a
// listener registered late hears only later numbers, and a listener may
// register another without deadlocking the delivery.
func TestNotifierOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n notifier
		heard := make(chan string, 16)
		listener := func(name string) func(*switchyard.Revision) {
			return func(rev *switchyard.Revision) { heard <- fmt.Sprintf("%s:%d", name, rev.Number) }
		}
		n.add(listener("a"))
		b := listener("b")
		n.add(func(rev *switchyard.Revision) {
			b(rev)
			if rev.Number == 1 {
				n.add(listener("c"))
			}
		})
		n.notify(numbered(1))
		synctest.Wait()
		n.notify(numbered(2))
		synctest.Wait()
		want := []string{"a:1", "b:1", "a:2", "b:2", "c:2"}
		if got := drain(heard); !slices.Equal(got, want) {
			t.Fatalf("listeners heard %v, want %v", got, want)
		}
	})
}

// After a reset, the listeners hear the revision it announced, numbered
// lower than those before it, and the revisions numbered above it.
func TestNotifierReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n notifier
		heard := make(chan int64, 16)
		n.add(func(rev *switchyard.Revision) { heard <- rev.Number })
		for _, step := range []func(){
			func() { n.notify(numbered(5)) },
			func() { n.reset(numbered(3)) },
			func() { n.notify(numbered(3)) },
			func() { n.notify(numbered(4)) },
		} {
			step()
			synctest.Wait()
		}
		if got, want := drain(heard), []int64{5, 3, 4}; !slices.Equal(got, want) {
			t.Fatalf("the listener heard %v, want %v", got, want)
		}
	})
}

// drain returns what ch holds now.
func drain[T any](ch chan T) []T {
	var out []T
	for {
		select {
		case v := <-ch:
			out = append(out, v)
		default:
			return out
		}
	}
}
