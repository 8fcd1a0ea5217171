package archive

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"tmcad/internal/webclient"
)

// DICOMwebConfig configures a DICOMwebSink. Credentials arrive as plain
// strings (the config layer resolves environment and file secrets); they are
// never logged nor put into errors.
type DICOMwebConfig struct {
	// BaseURL is the DICOMweb root, e.g. "https://pacs.example/dicom-web";
	// STOW-RS posts to BaseURL + "/studies".
	BaseURL string
	// Username and Password select HTTP basic authentication.
	Username string
	Password string
	// BearerToken selects bearer authentication (not with Username).
	BearerToken string
	// CAFile is a PEM bundle of extra trusted CAs for HTTPS (added to the
	// system pool).
	CAFile string
	// Timeout bounds each request (default 60 s).
	Timeout time.Duration
	// MaxAttempts is the number of tries for connection errors, 5xx, 408
	// and 429 answers (default 5); other 4xx answers are never retried.
	MaxAttempts int
	// InitialBackoff is the wait before the first retry (default 1 s); it
	// doubles each retry up to MaxBackoff (default 30 s).
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// OnRetry, when set, is told about each retry (attempt is 1-based, err
	// carries no credentials); use it to log.
	OnRetry func(attempt int, wait time.Duration, err error)
	// Transport replaces the HTTP transport (tests); CAFile is then ignored.
	Transport http.RoundTripper
}

// DICOMwebSink stores objects with STOW-RS (PS3.18 §10.5).
type DICOMwebSink struct {
	cfg    DICOMwebConfig
	stow   string
	client *http.Client
}

// NewDICOMwebSink validates cfg and returns a sink.
func NewDICOMwebSink(cfg DICOMwebConfig) (*DICOMwebSink, error) {
	ep := cfg.endpoint()
	if _, err := ep.Check(); err != nil {
		return nil, fmt.Errorf("writer: dicomweb sink: %w", err)
	}
	retryDefaults(&cfg.Timeout, &cfg.MaxAttempts, &cfg.InitialBackoff, &cfg.MaxBackoff)
	tr, err := ep.RoundTripper()
	if err != nil {
		return nil, fmt.Errorf("writer: dicomweb sink: %w", err)
	}
	return &DICOMwebSink{
		cfg:    cfg,
		stow:   strings.TrimRight(cfg.BaseURL, "/") + "/studies",
		client: &http.Client{Transport: tr, Timeout: cfg.Timeout},
	}, nil
}

// endpoint is cfg's server and credentials.
func (cfg DICOMwebConfig) endpoint() webclient.Endpoint {
	return webclient.Endpoint{BaseURL: cfg.BaseURL, Username: cfg.Username, Password: cfg.Password,
		BearerToken: cfg.BearerToken, CAFile: cfg.CAFile, Transport: cfg.Transport}
}

// Name returns "dicomweb:<base URL>" without credentials.
func (s *DICOMwebSink) Name() string { return "dicomweb:" + webclient.RedactURL(s.cfg.BaseURL) }

// stowError is a failed STOW-RS request; retry says whether trying again
// may help (connection errors and 5xx).
type stowError struct {
	msg   string
	retry bool
	err   error
}

// Error returns the message.
func (e *stowError) Error() string { return e.msg }

// Unwrap returns the cause.
func (e *stowError) Unwrap() error { return e.err }

// Put stores one DICOM file with STOW-RS, retrying connection errors and
// 5xx, 408 and 429 answers with exponential backoff. An error that wraps
// ErrRejected is the archive refusing the object.
func (s *DICOMwebSink) Put(ctx context.Context, study, series, sop string, data []byte) error {
	boundary, err := newBoundary()
	if err != nil {
		return fmt.Errorf("writer: dicomweb sink: %w", err)
	}
	body := multipartBody(boundary, data)
	wait := s.cfg.InitialBackoff
	for attempt := 1; ; attempt++ {
		err := s.post(ctx, boundary, body, sop)
		if err == nil {
			return nil
		}
		var se *stowError
		retry := errors.As(err, &se) && se.retry
		if !retry || attempt >= s.cfg.MaxAttempts || ctx.Err() != nil {
			if retry {
				return fmt.Errorf("writer: dicomweb STOW-RS of SOP %s to %s failed after %d attempts: %w", sop, s.Name(), attempt, err)
			}
			return fmt.Errorf("writer: dicomweb STOW-RS of SOP %s to %s: %w", sop, s.Name(), err)
		}
		if s.cfg.OnRetry != nil {
			s.cfg.OnRetry(attempt, wait, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("writer: dicomweb STOW-RS of SOP %s: %w (last error: %v)", sop, ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(wait*2, s.cfg.MaxBackoff)
	}
}

func newBoundary() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "tmcad-" + hex.EncodeToString(b), nil
}

// multipartBody builds a multipart/related body with one application/dicom
// part, CRLF line ends.
func multipartBody(boundary string, data []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(data) + 256)
	b.WriteString("--" + boundary + "\r\n")
	b.WriteString("Content-Type: application/dicom\r\n")
	fmt.Fprintf(&b, "Content-Length: %d\r\n", len(data))
	b.WriteString("\r\n")
	b.Write(data)
	b.WriteString("\r\n--" + boundary + "--\r\n")
	return b.Bytes()
}

func (s *DICOMwebSink) post(ctx context.Context, boundary string, body []byte, sop string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.stow, bytes.NewReader(body))
	if err != nil {
		return &stowError{msg: "building request: " + err.Error(), err: err}
	}
	req.ContentLength = int64(len(body)) // sent as Content-Length, not chunked
	req.Header.Set("Content-Type", `multipart/related; type="application/dicom"; boundary=`+boundary)
	req.Header.Set("Accept", "application/dicom+json")
	s.cfg.endpoint().Authorize(req)
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return &stowError{msg: ctx.Err().Error(), err: ctx.Err()}
		}
		return &stowError{msg: "connection: " + webclient.DescribeNetError(err), retry: true, err: err}
	}
	defer resp.Body.Close()
	respBody, rerr := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return &stowError{msg: fmt.Sprintf("HTTP %s: the archive refused the credentials; check username/password or bearer_token", resp.Status)}
	case resp.StatusCode >= 500:
		return &stowError{msg: fmt.Sprintf("HTTP %s from the archive", resp.Status), retry: true}
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests:
		// The archive is busy, not refusing the object.
		return &stowError{msg: fmt.Sprintf("HTTP %s from the archive", resp.Status), retry: true}
	case resp.StatusCode >= 400 && resp.StatusCode != http.StatusConflict:
		return &stowError{msg: fmt.Sprintf("HTTP %s: the archive rejected the request (not retried)", resp.Status), err: ErrRejected}
	case resp.StatusCode < 200 || (resp.StatusCode >= 300 && resp.StatusCode != http.StatusConflict):
		return &stowError{msg: fmt.Sprintf("unexpected HTTP %s", resp.Status)}
	}
	if rerr != nil {
		return &stowError{msg: "reading the response: " + rerr.Error(), retry: true, err: rerr}
	}
	// 200, 202 (warnings or partial failure) and 409 (failure) carry a DICOM
	// JSON Store Instances Response.
	if err := checkStoreResponse(respBody, sop); err != nil {
		// Only a response listing the object as failed is a refusal; one
		// that cannot be read may come from a proxy and is retried later.
		return &stowError{msg: fmt.Sprintf("HTTP %s: %v", resp.Status, err), err: err}
	}
	if resp.StatusCode == http.StatusConflict {
		return &stowError{msg: fmt.Sprintf("HTTP %s: the archive did not store the instance", resp.Status), err: ErrRejected}
	}
	return nil
}

// dicomJSON is a DICOM JSON dataset (PS3.18 Annex F), enough of it to read a
// Store Instances Response.
type dicomJSON map[string]struct {
	VR    string            `json:"vr"`
	Value []json.RawMessage `json:"Value"`
}

const (
	tagFailedSOPSequence     = "00081198"
	tagReferencedSOPSequence = "00081199"
	tagFailureReason         = "00081197"
	tagReferencedSOPInstance = "00081155"
)

// rejectedError is a store response refusing the object; it wraps
// ErrRejected without adding its text to the message.
type rejectedError struct{ msg string }

// Error returns the message.
func (e rejectedError) Error() string { return e.msg }

// Unwrap makes the error an ErrRejected.
func (e rejectedError) Unwrap() error { return ErrRejected }

// checkStoreResponse fails when the response lists failed SOP instances, or
// lists stored instances without ours.
func checkStoreResponse(body []byte, sop string) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil // some archives answer 200 with no body
	}
	var ds dicomJSON
	if err := json.Unmarshal(body, &ds); err != nil {
		var list []dicomJSON // a few servers wrap the dataset in an array
		if err2 := json.Unmarshal(body, &list); err2 != nil || len(list) != 1 {
			return fmt.Errorf("response is not DICOM JSON: %v", err)
		}
		ds = list[0]
	}
	if failed, ok := ds[tagFailedSOPSequence]; ok && len(failed.Value) > 0 {
		var reasons []string
		outOfResources := false
		for _, raw := range failed.Value {
			var item dicomJSON
			if json.Unmarshal(raw, &item) != nil {
				continue
			}
			reason := "unknown"
			if r, ok := item[tagFailureReason]; ok && len(r.Value) > 0 {
				reason = strings.Trim(string(r.Value[0]), `"`)
				var code int
				if json.Unmarshal(r.Value[0], &code) == nil && code >= 0xA700 && code <= 0xA7FF {
					outOfResources = true
				}
			}
			reasons = append(reasons, fmt.Sprintf("FailureReason %s", reason))
		}
		msg := fmt.Sprintf("FailedSOPSequence (0008,1198) lists %d instance(s): %s", len(failed.Value), strings.Join(reasons, ", "))
		if outOfResources {
			// A7xx: the archive is out of resources (full), not refusing
			// the object; it may take it later.
			return errors.New(msg)
		}
		return rejectedError{msg: msg}
	}
	if ref, ok := ds[tagReferencedSOPSequence]; ok && len(ref.Value) > 0 {
		for _, raw := range ref.Value {
			var item dicomJSON
			if json.Unmarshal(raw, &item) != nil {
				continue
			}
			if v, ok := item[tagReferencedSOPInstance]; ok && len(v.Value) > 0 {
				var uid string
				if json.Unmarshal(v.Value[0], &uid) == nil && uid == sop {
					return nil
				}
			}
		}
		return fmt.Errorf("ReferencedSOPSequence (0008,1199) does not list SOP %s", sop)
	}
	return nil
}
