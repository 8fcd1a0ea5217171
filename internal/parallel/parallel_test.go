package parallel

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
)

func TestForRunsEveryIndexOnce(t *testing.T) {
	for _, procs := range []int{1, 4} {
		old := runtime.GOMAXPROCS(procs)
		hits := make([]atomic.Int32, 1000)
		if err := For(len(hits), func(i int) error { hits[i].Add(1); return nil }); err != nil {
			t.Fatal(err)
		}
		runtime.GOMAXPROCS(old)
		for i := range hits {
			if hits[i].Load() != 1 {
				t.Fatalf("GOMAXPROCS %d: index %d ran %d times", procs, i, hits[i].Load())
			}
		}
	}
}

func TestForReturnsLowestFailingIndex(t *testing.T) {
	old := runtime.GOMAXPROCS(4)
	defer runtime.GOMAXPROCS(old)
	err := For(100, func(i int) error {
		if i == 7 || i == 3 {
			return fmt.Errorf("index %d", i)
		}
		return nil
	})
	if err == nil || err.Error() != "index 3" {
		t.Fatalf("got %v, want index 3", err)
	}
	if err := For(0, func(int) error { return errors.New("never") }); err != nil {
		t.Fatal(err)
	}
}
