package pipeline

import (
	"context"
	"errors"
	"fmt"
)

// ErrorClass says whether retrying a failed job may help.
type ErrorClass int

const (
	// ClassTransient errors may go away on retry: an I/O error, a file
	// still being replaced, an out-of-memory on the accelerator, a
	// cancelled context. The job is retried with backoff up to
	// queue.max_attempts; the nightly reprocess retries it again.
	ClassTransient ErrorClass = iota
	// ClassPermanent errors will not go away: an undecodable file, an
	// unsupported transfer syntax, a series over the limits. The job fails
	// at once and its inputs are quarantined.
	ClassPermanent
)

// String names the class.
func (c ErrorClass) String() string {
	if c == ClassPermanent {
		return "permanent"
	}
	return "transient"
}

// ProcessError is a classified processing error. Reason is a short
// snake_case label (e.g. "decode", "limits", "unsupported_transfer_syntax",
// "model", "encode") used as the metrics label and in reason.txt; it and Err
// must never carry PHI (names, IDs, dates, report text).
type ProcessError struct {
	Class  ErrorClass
	Reason string
	Err    error
}

// Error returns "reason: err".
func (e *ProcessError) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return fmt.Sprintf("%s: %v", e.Reason, e.Err)
}

// Unwrap returns the underlying error.
func (e *ProcessError) Unwrap() error { return e.Err }

// Permanent wraps err as a permanent error with a metrics reason.
func Permanent(reason string, err error) error {
	return &ProcessError{Class: ClassPermanent, Reason: reason, Err: err}
}

// Transient wraps err as a transient error with a metrics reason.
func Transient(reason string, err error) error {
	return &ProcessError{Class: ClassTransient, Reason: reason, Err: err}
}

// IsPermanent reports whether err is (or wraps) a permanent ProcessError.
func IsPermanent(err error) bool {
	var pe *ProcessError
	return errors.As(err, &pe) && pe.Class == ClassPermanent
}

// ErrorReason returns the Reason of the ProcessError in err's chain,
// "cancelled" for a cancelled context and "unclassified" otherwise.
func ErrorReason(err error) string {
	var pe *ProcessError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &pe) && pe.Reason != "":
		return pe.Reason
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "cancelled"
	}
	return "unclassified"
}
