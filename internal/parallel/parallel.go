// Package parallel runs independent, CPU-bound pieces of work on the
// available cores. It imports nothing of ours, so any package may use it.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// For runs fn(0..n-1) on up to GOMAXPROCS goroutines and returns the error
// of the lowest failing index, so the error is the one a sequential loop
// would report. After a failure no new index is started. Every index must
// touch only its own data.
func For(n int, fn func(i int) error) error {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := 0; i < n; i++ {
			if err := fn(i); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, n)
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if errs[i] = fn(i); errs[i] != nil {
					failed.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
