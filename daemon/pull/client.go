package pull

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"tmcad/internal/webclient"
)

// ErrUnauthorized is wrapped by errors of requests the PACS refused with
// 401 or 403: the credentials are wrong or lack the right to query.
var ErrUnauthorized = errors.New("the PACS refused the credentials")

// ErrNotFound is wrapped by errors of requests the PACS answered 404: the
// study or series is not (or no longer) there, or the base URL is wrong.
var ErrNotFound = errors.New("not found on the PACS")

// ErrBadAnswer is wrapped by errors of answers that cannot be used: not
// DICOM JSON, a part that is not a DICOM file, an instance of another
// series than the one asked for, fewer instances than announced.
var ErrBadAnswer = errors.New("unusable answer from the PACS")

// errIdle cancels a request that received nothing for the timeout.
var errIdle = errors.New("no data within the timeout")

// errCutShort is wrapped by a handler's error when the answer ended before
// it was complete (a multipart body without its closing boundary): the
// request is tried again.
var errCutShort = errors.New("the answer ended before it was complete")

// requestError is one failed request. It names the operation and the path
// (never credentials); retry says whether trying again may help.
type requestError struct {
	op     string
	status int
	reason string
	retry  bool
	err    error
}

func (e *requestError) Error() string { return e.op + ": " + e.reason }
func (e *requestError) Unwrap() error { return e.err }

// client is the HTTP side of the puller: base URL, authentication, TLS,
// and retries with capped exponential backoff.
type client struct {
	base     string // without trailing slash
	basePath string // the URL's path, for messages
	ep       webclient.Endpoint
	hc       *http.Client
	timeout  time.Duration
	attempts int
	initial  time.Duration
	maxWait  time.Duration
	onRetry  func(attempt int, wait time.Duration, err error)
}

// newClient validates o's URL, authentication and TLS settings.
func newClient(o *Options) (*client, error) {
	ep := webclient.Endpoint{BaseURL: o.BaseURL, Username: o.Username, Password: o.Password, BearerToken: o.BearerToken,
		CAFile: o.CAFile, InsecureSkipVerify: o.InsecureSkipVerify, Transport: o.Transport}
	u, err := ep.Check()
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	tr, err := ep.RoundTripper()
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	return &client{
		base:     strings.TrimRight(o.BaseURL, "/"),
		basePath: strings.TrimRight(u.EscapedPath(), "/"),
		ep:       ep,
		hc:       &http.Client{Transport: tr},
		timeout:  o.Timeout,
		attempts: o.MaxAttempts,
		initial:  o.InitialBackoff,
		maxWait:  o.MaxBackoff,
		onRetry:  o.OnRetry,
	}, nil
}

// get GETs ref (a path and query below the base URL) with accept, and
// hands the answer's header and body to handle; it is tried again, with a
// doubling wait up to the cap, on connection errors, a body cut short,
// 5xx, 408 and 429. handle may run more than once and must start over
// each time. A 204 answer reaches handle with an empty body.
func (c *client) get(ctx context.Context, op, ref, accept string, handle func(h http.Header, body io.Reader) error) error {
	op = op + " GET " + c.basePath + ref
	wait := c.initial
	for attempt := 1; ; attempt++ {
		err := c.once(ctx, op, ref, accept, handle)
		if err == nil {
			return nil
		}
		var re *requestError
		retry := errors.As(err, &re) && re.retry
		if !retry || attempt >= c.attempts || ctx.Err() != nil {
			if retry && attempt > 1 {
				return fmt.Errorf("pull: %w (gave up after %d attempts)", err, attempt)
			}
			return fmt.Errorf("pull: %w", err)
		}
		if c.onRetry != nil {
			c.onRetry(attempt, wait, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("pull: %s: %w (last error: %v)", op, ctx.Err(), err)
		case <-t.C:
		}
		wait = min(wait*2, c.maxWait)
	}
}

// once makes one request. A timer cancels it when nothing arrives for the
// timeout, whether waiting for the answer or inside its body.
func (c *client) once(ctx context.Context, op, ref, accept string, handle func(h http.Header, body io.Reader) error) error {
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(c.timeout, func() { cancel(errIdle) })
	defer timer.Stop()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, c.base+ref, nil)
	if err != nil {
		return &requestError{op: op, reason: "building the request: " + err.Error(), err: ErrBadAnswer}
	}
	req.Header.Set("Accept", accept)
	c.ep.Authorize(req)
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return &requestError{op: op, reason: ctx.Err().Error(), err: ctx.Err()}
		}
		if errors.Is(context.Cause(rctx), errIdle) {
			return &requestError{op: op, reason: fmt.Sprintf("no answer within %v", c.timeout), retry: true, err: errIdle}
		}
		return &requestError{op: op, reason: "connection: " + webclient.DescribeNetError(err), retry: true, err: err}
	}
	defer resp.Body.Close()
	timer.Reset(c.timeout)
	if err := statusError(op, resp); err != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return err
	}
	body := &idleReader{r: resp.Body, timer: timer, d: c.timeout}
	herr := handle(resp.Header, body)
	if herr == nil {
		return nil
	}
	if ctx.Err() != nil {
		return &requestError{op: op, reason: ctx.Err().Error(), err: ctx.Err()}
	}
	if body.err != nil {
		// The answer was cut short: the server went away or stalled.
		reason := "reading the answer: " + webclient.DescribeNetError(body.err)
		if errors.Is(context.Cause(rctx), errIdle) {
			reason = fmt.Sprintf("reading the answer: no data for %v", c.timeout)
		}
		return &requestError{op: op, reason: reason, retry: true, err: body.err}
	}
	if errors.Is(herr, errCutShort) {
		return &requestError{op: op, reason: herr.Error(), retry: true, err: herr}
	}
	return &requestError{op: op, reason: herr.Error(), err: herr}
}

// statusError turns an answer other than 200 or 204 into an error saying
// what it means and whether it is retried. Bodies are not quoted: an error
// page might carry anything.
func statusError(op string, resp *http.Response) error {
	switch code := resp.StatusCode; {
	case code == http.StatusOK || code == http.StatusNoContent:
		return nil
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return &requestError{op: op, status: code, reason: fmt.Sprintf("HTTP %s: check source.dicomweb.username and password, or token", resp.Status), err: ErrUnauthorized}
	case code == http.StatusNotFound:
		return &requestError{op: op, status: code, reason: fmt.Sprintf("HTTP %s (is source.dicomweb.url the DICOMweb root, and is the object still there?)", resp.Status), err: ErrNotFound}
	case code >= 500, code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return &requestError{op: op, status: code, reason: fmt.Sprintf("HTTP %s from the PACS", resp.Status), retry: true}
	default:
		return &requestError{op: op, status: code, reason: fmt.Sprintf("HTTP %s: the PACS refused the request (not retried)", resp.Status), err: ErrBadAnswer}
	}
}

// idleReader restarts the idle timer on each read and keeps the first
// read error other than io.EOF, so that a body cut short is told apart
// from an answer that is wrong.
type idleReader struct {
	r     io.Reader
	timer *time.Timer
	d     time.Duration
	err   error
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.timer.Reset(r.d)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}
