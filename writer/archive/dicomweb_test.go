package archive

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"tmcad/writer"
)

const testSOP = "2.25.42"

func okResponse(sop string) string {
	return fmt.Sprintf(`{"00081190":{"vr":"UR","Value":["http://x/studies/1"]},"00081199":{"vr":"SQ","Value":[{"00081150":{"vr":"UI","Value":["%s"]},"00081155":{"vr":"UI","Value":["%s"]}}]}}`, writer.SegmentationStorage, sop)
}

// checkSTOW verifies the request is a proper STOW-RS request and returns the
// one DICOM part.
func checkSTOW(t *testing.T, r *http.Request) []byte {
	t.Helper()
	if r.Method != http.MethodPost || r.URL.Path != "/dicom-web/studies" {
		t.Errorf("request %s %s, want POST /dicom-web/studies", r.Method, r.URL.Path)
	}
	if r.ContentLength <= 0 || len(r.TransferEncoding) > 0 {
		t.Errorf("Content-Length %d, Transfer-Encoding %v: want a Content-Length, not chunked", r.ContentLength, r.TransferEncoding)
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/related" || params["type"] != "application/dicom" || params["boundary"] == "" {
		t.Errorf("Content-Type %q", r.Header.Get("Content-Type"))
		return nil
	}
	raw, _ := io.ReadAll(r.Body)
	if !bytes.HasPrefix(raw, []byte("--"+params["boundary"]+"\r\n")) || !bytes.HasSuffix(raw, []byte("\r\n--"+params["boundary"]+"--\r\n")) {
		t.Errorf("body is not CRLF-delimited multipart")
	}
	mr := multipart.NewReader(bytes.NewReader(raw), params["boundary"])
	p, err := mr.NextPart()
	if err != nil {
		t.Errorf("first part: %v", err)
		return nil
	}
	if p.Header.Get("Content-Type") != "application/dicom" {
		t.Errorf("part Content-Type %q", p.Header.Get("Content-Type"))
	}
	data, _ := io.ReadAll(p)
	if _, err := mr.NextPart(); err != io.EOF {
		t.Errorf("more than one part: %v", err)
	}
	return data
}

func newTestSink(t *testing.T, url string, mod func(*DICOMwebConfig)) *DICOMwebSink {
	t.Helper()
	cfg := DICOMwebConfig{BaseURL: url + "/dicom-web", Username: "tmcad", Password: "s3cret-pw",
		Timeout: 2 * time.Second, MaxAttempts: 3, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewDICOMwebSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSTOWSuccessAndAuth(t *testing.T) {
	payload := []byte("DICM payload bytes")
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if u, p, ok := r.BasicAuth(); !ok || u != "tmcad" || p != "s3cret-pw" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if got := checkSTOW(t, r); !bytes.Equal(got, payload) {
			t.Errorf("part = %q", got)
		}
		w.Header().Set("Content-Type", "application/dicom+json")
		io.WriteString(w, okResponse(testSOP))
	}))
	defer srv.Close()
	s := newTestSink(t, srv.URL, nil)
	if err := s.Put(context.Background(), "1", "2", testSOP, payload); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if strings.Contains(s.Name(), "s3cret") {
		t.Error("Name leaks the password")
	}

	// Bearer token.
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok-123" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		checkSTOW(t, r)
		io.WriteString(w, okResponse(testSOP))
	}))
	defer srv2.Close()
	s2 := newTestSink(t, srv2.URL, func(c *DICOMwebConfig) { c.Username, c.Password, c.BearerToken = "", "", "tok-123" })
	if err := s2.Put(context.Background(), "1", "2", testSOP, payload); err != nil {
		t.Fatalf("bearer Put: %v", err)
	}
}

func TestSTOWWrongCredentials(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	s := newTestSink(t, srv.URL, func(c *DICOMwebConfig) { c.Password = "wrong-pw" })
	err := s.Put(context.Background(), "1", "2", testSOP, []byte("x"))
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "credentials") {
		t.Fatalf("err = %v, want a 401 credentials error", err)
	}
	if strings.Contains(err.Error(), "wrong-pw") || strings.Contains(err.Error(), "tmcad:") {
		t.Error("error leaks credentials")
	}
	if calls.Load() != 1 {
		t.Errorf("%d calls, want 1 (4xx is not retried)", calls.Load())
	}
}

func TestSTOW4xxNotRetried(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "bad request", http.StatusBadRequest)
	}))
	defer srv.Close()
	err := newTestSink(t, srv.URL, nil).Put(context.Background(), "1", "2", testSOP, []byte("x"))
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "not retried") {
		t.Fatalf("err = %v", err)
	}
	if calls.Load() != 1 {
		t.Errorf("%d calls, want 1", calls.Load())
	}
}

func TestSTOW5xxThenSuccess(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		checkSTOW(t, r)
		if calls.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, okResponse(testSOP))
	}))
	defer srv.Close()
	var retries []int
	s := newTestSink(t, srv.URL, func(c *DICOMwebConfig) {
		c.OnRetry = func(a int, _ time.Duration, _ error) { retries = append(retries, a) }
	})
	if err := s.Put(context.Background(), "1", "2", testSOP, []byte("x")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if calls.Load() != 3 || len(retries) != 2 {
		t.Errorf("calls %d, retries %v; want 3 calls, 2 retries", calls.Load(), retries)
	}
	// Always 5xx: gives up after MaxAttempts.
	calls.Store(-100)
	err := s.Put(context.Background(), "1", "2", testSOP, []byte("x"))
	if err == nil || !strings.Contains(err.Error(), "after 3 attempts") {
		t.Errorf("err = %v", err)
	}
}

func TestSTOWFailedSOPSequence(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/dicom+json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"00081198":{"vr":"SQ","Value":[{"00081150":{"vr":"UI","Value":["%s"]},"00081155":{"vr":"UI","Value":["%s"]},"00081197":{"vr":"US","Value":[272]}}]}}`, writer.SegmentationStorage, testSOP)
	}))
	defer srv.Close()
	err := newTestSink(t, srv.URL, nil).Put(context.Background(), "1", "2", testSOP, []byte("x"))
	if err == nil || !strings.Contains(err.Error(), "FailedSOPSequence") || !strings.Contains(err.Error(), "272") {
		t.Fatalf("err = %v", err)
	}
	// A 200 whose ReferencedSOPSequence does not list our instance fails too.
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, okResponse("2.25.999"))
	}))
	defer srv2.Close()
	if err := newTestSink(t, srv2.URL, nil).Put(context.Background(), "1", "2", testSOP, []byte("x")); err == nil {
		t.Fatal("missing instance in ReferencedSOPSequence accepted")
	}
}

func TestSTOWTimeout(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	s := newTestSink(t, srv.URL, func(c *DICOMwebConfig) { c.Timeout = 100 * time.Millisecond; c.MaxAttempts = 2 })
	start := time.Now()
	err := s.Put(context.Background(), "1", "2", testSOP, []byte("x"))
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if calls.Load() != 2 {
		t.Errorf("%d calls, want 2 (timeouts are retried up to MaxAttempts)", calls.Load())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestSTOWConnectionRefusedRetried(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	var retries atomic.Int32
	s := newTestSink(t, url, func(c *DICOMwebConfig) {
		c.OnRetry = func(int, time.Duration, error) { retries.Add(1) }
	})
	if err := s.Put(context.Background(), "1", "2", testSOP, []byte("x")); err == nil || !strings.Contains(err.Error(), "connection") {
		t.Fatalf("err = %v", err)
	}
	if retries.Load() != 2 {
		t.Errorf("%d retries, want 2", retries.Load())
	}
}

func TestSTOWTLSWithCAFile(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		checkSTOW(t, r)
		io.WriteString(w, okResponse(testSOP))
	}))
	defer srv.Close()
	// Without the CA: the certificate is not trusted, and that is not retried
	// into success.
	s := newTestSink(t, srv.URL, func(c *DICOMwebConfig) { c.MaxAttempts = 1 })
	if err := s.Put(context.Background(), "1", "2", testSOP, []byte("x")); err == nil {
		t.Fatal("untrusted certificate accepted")
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	s = newTestSink(t, srv.URL, func(c *DICOMwebConfig) { c.CAFile = ca })
	if err := s.Put(context.Background(), "1", "2", testSOP, []byte("x")); err != nil {
		t.Fatalf("with CA file: %v", err)
	}
}

func TestDICOMwebConfigValidation(t *testing.T) {
	for name, cfg := range map[string]DICOMwebConfig{
		"no url":       {},
		"ftp":          {BaseURL: "ftp://x/dicom-web"},
		"creds in url": {BaseURL: "http://u:p@x/dicom-web"},
		"both auths":   {BaseURL: "http://x", Username: "u", BearerToken: "t"},
		"pw no user":   {BaseURL: "http://x", Password: "p"},
		"missing ca":   {BaseURL: "https://x", CAFile: "/nonexistent/ca.pem"},
	} {
		if _, err := NewDICOMwebSink(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "u:p") {
			t.Errorf("%s: error leaks credentials: %v", name, err)
		}
	}
}

// TestSTOWErrorClasses: a refusal of the object wraps ErrRejected; busy
// answers (408, 429) are retried, and like wrong credentials and a full
// archive they are not refusals (the daemon tries the object again).
func TestSTOWErrorClasses(t *testing.T) {
	for _, c := range []struct {
		name     string
		status   int
		body     string
		calls    int32
		rejected bool
	}{
		{"400", http.StatusBadRequest, "", 1, true},
		{"415", http.StatusUnsupportedMediaType, "", 1, true},
		{"401", http.StatusUnauthorized, "", 1, false},
		{"408", http.StatusRequestTimeout, "", 3, false},
		{"429", http.StatusTooManyRequests, "", 3, false},
		{"503", http.StatusServiceUnavailable, "", 3, false},
		{"failed SOP", http.StatusAccepted, fmt.Sprintf(`{"00081198":{"vr":"SQ","Value":[{"00081155":{"vr":"UI","Value":["%s"]},"00081197":{"vr":"US","Value":[272]}}]}}`, testSOP), 1, true},
		{"out of resources", http.StatusConflict, fmt.Sprintf(`{"00081198":{"vr":"SQ","Value":[{"00081155":{"vr":"UI","Value":["%s"]},"00081197":{"vr":"US","Value":[42752]}}]}}`, testSOP), 1, false},
		{"not DICOM JSON", http.StatusOK, "<html>proxy</html>", 1, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				w.WriteHeader(c.status)
				io.WriteString(w, c.body)
			}))
			defer srv.Close()
			err := newTestSink(t, srv.URL, nil).Put(context.Background(), "1", "2", testSOP, []byte("x"))
			if err == nil {
				t.Fatal("Put succeeded")
			}
			if got := errors.Is(err, ErrRejected); got != c.rejected {
				t.Errorf("errors.Is(%v, ErrRejected) = %v, want %v", err, got, c.rejected)
			}
			if calls.Load() != c.calls {
				t.Errorf("%d calls, want %d", calls.Load(), c.calls)
			}
		})
	}
}
