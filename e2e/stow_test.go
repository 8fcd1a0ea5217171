package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// fakeSTOW is a DICOMweb archive the test switches on and off: while down
// every STOW-RS request gets HTTP 503 (the daemon's DICOMweb sink retries),
// while up it answers 200 with an empty body (a stored instance, as some
// archives answer). onStore, when set, runs before a store is answered:
// the SEG is then not yet confirmed stored.
type fakeSTOW struct {
	url string

	mu      sync.Mutex
	up      bool
	refused int
	stored  int
	onStore func()
}

// startSTOW serves a fake DICOMweb archive on a loopback port, down at first.
func startSTOW(t *testing.T) *fakeSTOW {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSTOW{url: fmt.Sprintf("http://%s/dicom-web", l.Addr())}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /dicom-web/studies", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		f.mu.Lock()
		up, hook := f.up, f.onStore
		if !up {
			f.refused++
		}
		f.mu.Unlock()
		if !up {
			http.Error(w, "archive down", http.StatusServiceUnavailable)
			return
		}
		if hook != nil {
			hook()
		}
		f.mu.Lock()
		f.stored++
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/dicom+json")
		w.WriteHeader(http.StatusOK)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return f
}

// setUp switches the archive on or off.
func (f *fakeSTOW) setUp(up bool) {
	f.mu.Lock()
	f.up = up
	f.mu.Unlock()
}

// counts returns the stores refused and answered as stored so far.
func (f *fakeSTOW) counts() (refused, stored int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused, f.stored
}
