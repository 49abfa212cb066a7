package lru_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/lru"
)

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	c := lru.New[string, int](2)
	c.Add("a", 1)
	c.Add("b", 2)
	if v, ok := c.Get("a"); !ok || v != 1 {
		t.Fatalf("Get(a) = %d, %v", v, ok)
	}
	c.Add("c", 3) // b is now the least recently used
	if _, ok := c.Get("b"); ok {
		t.Fatal("b survived eviction")
	}
	for k, want := range map[string]int{"a": 1, "c": 3} {
		if v, ok := c.Get(k); !ok || v != want {
			t.Fatalf("Get(%s) = %d, %v; want %d", k, v, ok, want)
		}
	}
	c.Add("a", 10)
	if v, _ := c.Get("a"); v != 10 || c.Len() != 2 {
		t.Fatalf("replacing a: value %d, len %d", v, c.Len())
	}
	c.Remove("a")
	if _, ok := c.Get("a"); ok || c.Len() != 1 {
		t.Fatalf("a still cached after Remove (len %d)", c.Len())
	}
}

func TestPurgeEmptiesAndKeepsWorking(t *testing.T) {
	c := lru.New[string, int](2)
	c.Add("a", 1)
	c.Add("b", 2)
	c.Purge()
	if _, ok := c.Get("a"); ok || c.Len() != 0 {
		t.Fatalf("an entry survived Purge (len %d)", c.Len())
	}
	c.Add("c", 3)
	c.Add("d", 4)
	c.Add("e", 5)
	if _, ok := c.Get("c"); ok || c.Len() != 2 {
		t.Fatalf("after Purge the cache is no longer bounded at 2 (len %d)", c.Len())
	}
}

func TestZeroSizeHoldsNothing(t *testing.T) {
	c := lru.New[int, int](0)
	c.Add(1, 1)
	if _, ok := c.Get(1); ok || c.Len() != 0 {
		t.Fatal("a zero-size cache kept an entry")
	}
}

func TestConcurrentUseStaysBounded(t *testing.T) {
	c := lru.New[string, int](16)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				k := fmt.Sprint(g, i%32)
				c.Add(k, i)
				c.Get(k)
			}
		})
	}
	wg.Wait()
	if c.Len() != 16 {
		t.Fatalf("len = %d, want 16", c.Len())
	}
}

func BenchmarkGetHit(b *testing.B) {
	c := lru.New[string, int](1024)
	c.Add("session", 1)
	b.ReportAllocs()
	for b.Loop() {
		c.Get("session")
	}
}

func TestValuesMostRecentFirst(t *testing.T) {
	c := lru.New[string, int](3)
	for i, k := range []string{"a", "b", "c", "d"} {
		c.Add(k, i)
	}
	c.Get("b")
	if got := c.Values(); !slices.Equal(got, []int{1, 3, 2}) {
		t.Fatalf("Values = %v, want [1 3 2]: b used last, a evicted", got)
	}
	if got := c.Values(); !slices.Equal(got, []int{1, 3, 2}) {
		t.Fatalf("Values changed the order: %v", got)
	}
}
