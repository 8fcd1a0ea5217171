package writer

import (
	"context"
	"errors"
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

// PutSEG stores an encoded SEG in sink.
func PutSEG(ctx context.Context, sink Sink, seg *SEG) error {
	if seg == nil || seg.Data == nil {
		return errors.New("writer: PutSEG: SEG has no encoded data (use EncodeSEG)")
	}
	return sink.Put(ctx, seg.StudyInstanceUID, seg.SeriesInstanceUID, seg.SOPInstanceUID, seg.Data)
}
