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

// A sized cache is bounded by the total size of its values, not by their
// count: a large value evicts several small ones, and one larger than the
// bound is not kept at all (nor kept in the place of an older value).
func TestSizedEvictsBySize(t *testing.T) {
	c := lru.NewSized[string](10, func(v string) int64 { return int64(len(v)) })
	c.Add("a", "xxx")
	c.Add("b", "xxx")
	c.Add("c", "xxx")
	if c.Len() != 3 {
		t.Fatalf("len = %d, want 3 values of 3 within 10", c.Len())
	}
	c.Get("a") // b is now the least recently used, then c
	c.Add("d", "xxxxxx")
	for k, want := range map[string]bool{"a": true, "b": false, "c": false, "d": true} {
		if _, ok := c.Get(k); ok != want {
			t.Errorf("after adding 6 to 9 of 10: %s cached = %v, want %v", k, ok, want)
		}
	}
	c.Add("a", "x") // replacing a value counts its new size
	c.Add("e", "xxx")
	if c.Len() != 3 {
		t.Fatalf("len = %d, want a (1), d (6) and e (3)", c.Len())
	}
	c.Add("huge", "xxxxxxxxxxx")
	c.Add("e", "xxxxxxxxxxx")
	if _, ok := c.Get("huge"); ok {
		t.Fatal("a value larger than the bound was kept")
	}
	if _, ok := c.Get("e"); ok || c.Len() != 2 {
		t.Fatalf("e kept its old value after a too large one replaced it, or others were evicted (len %d)", c.Len())
	}
	c.Remove("a")
	c.Add("f", "xxxx")
	if c.Len() != 2 {
		t.Fatalf("len = %d after removing a (1) and adding 4 to d (6): the accounting is off", c.Len())
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
