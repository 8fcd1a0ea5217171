package dicomio

import "fmt"

// Limits bound what LoadSeries will allocate, so that a broken or hostile
// file cannot make the daemon allocate gigabytes. They are checked against
// the headers (Rows, Columns, NumberOfFrames) before any pixel buffer is
// allocated. A zero (or negative) field takes its DefaultLimits value.
type Limits struct {
	MaxRows    int   // largest Rows accepted
	MaxColumns int   // largest Columns accepted
	MaxFrames  int   // largest number of frames in one series
	MaxBytes   int64 // largest float32 volume, Rows × Columns × frames × 4 bytes
}

// DefaultLimits returns limits that admit any clinical CT, MR, CR or DX
// series (8192 × 8192 pixels, 4096 frames, a 2 GiB float32 volume).
func DefaultLimits() Limits {
	return Limits{MaxRows: 8192, MaxColumns: 8192, MaxFrames: 4096, MaxBytes: 2 << 30}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxRows <= 0 {
		l.MaxRows = d.MaxRows
	}
	if l.MaxColumns <= 0 {
		l.MaxColumns = d.MaxColumns
	}
	if l.MaxFrames <= 0 {
		l.MaxFrames = d.MaxFrames
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	return l
}

// LimitError says that a series exceeds a Limits field.
type LimitError struct {
	Path  string // the file that crossed the limit
	What  string // "rows", "columns", "frames" or "bytes"
	Value int64
	Limit int64
}

// Error implements error.
func (e *LimitError) Error() string {
	return fmt.Sprintf("%s: %s %d exceeds the limit %d (raise the dicomio limits in the configuration if this series is genuine)", e.Path, e.What, e.Value, e.Limit)
}

// checkImage checks one instance's size against the limits.
func (l Limits) checkImage(h Header) error {
	if h.Rows > l.MaxRows {
		return &LimitError{h.Path, "rows", int64(h.Rows), int64(l.MaxRows)}
	}
	if h.Columns > l.MaxColumns {
		return &LimitError{h.Path, "columns", int64(h.Columns), int64(l.MaxColumns)}
	}
	if h.Frames() > l.MaxFrames {
		return &LimitError{h.Path, "frames", int64(h.Frames()), int64(l.MaxFrames)}
	}
	return nil
}
