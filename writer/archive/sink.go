package archive

import (
	"context"
	"errors"
	"time"

	"tmcad/writer"
)

// Sink is an archive that stores DICOM objects. Implementations must be safe
// for concurrent use, and Put must be idempotent: storing the same object
// (same SOP Instance UID, same bytes) again succeeds and leaves one copy.
type Sink interface {
	// Put stores one DICOM Part 10 file, identified by its Study, Series and
	// SOP Instance UIDs. It returns only once the object is durably stored.
	Put(ctx context.Context, study, series, sop string, data []byte) error
	// Name says which archive this is, for logs and metrics; it never
	// contains credentials.
	Name() string
}

// ErrConflict is returned (wrapped) when the archive already holds a
// different object under the same SOP Instance UID.
var ErrConflict = errors.New("archive already holds different content for this SOP Instance UID")

// ErrRejected is returned (wrapped) when the archive refused the object
// itself (a 4xx answer other than 401, 403, 408 and 429, or a store
// response that lists it as failed): sending the same bytes again will
// not help. Every other error of a sink may go away on its own.
var ErrRejected = errors.New("the archive refused the object")

// IsPermanent reports whether a sink's error will not go away by sending
// the same object again: the archive refused it, or holds different
// content under its SOP Instance UID.
func IsPermanent(err error) bool {
	return errors.Is(err, ErrRejected) || errors.Is(err, ErrConflict)
}

// PutSEG stores an encoded SEG in sink.
func PutSEG(ctx context.Context, sink Sink, seg *writer.SEG) error {
	if seg == nil || seg.Data == nil {
		return errors.New("archive: PutSEG: SEG has no encoded data (use writer.EncodeSEG)")
	}
	return sink.Put(ctx, seg.StudyInstanceUID, seg.SeriesInstanceUID, seg.SOPInstanceUID, seg.Data)
}

// retryDefaults fills a network sink's unset timing: 60 s per attempt, 5
// attempts, a first retry after 1 s doubling up to 30 s.
func retryDefaults(timeout *time.Duration, attempts *int, initial, max *time.Duration) {
	if *timeout <= 0 {
		*timeout = 60 * time.Second
	}
	if *attempts <= 0 {
		*attempts = 5
	}
	if *initial <= 0 {
		*initial = time.Second
	}
	if *max <= 0 {
		*max = 30 * time.Second
	}
}
