package reports

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// DefaultMaxBytes is the largest report file read when Options.MaxBytes is
// zero.
const DefaultMaxBytes = 8 << 20

// ErrNotReport is returned (wrapped) when a file is not a report of any
// supported format, such as a DICOM image in the drop folder.
var ErrNotReport = errors.New("not a report")

// Source parses one report format. Parse receives the file's bytes and
// its name (for errors and for formats whose key is the file name) and
// returns the reports in it: usually one, several for an HL7 batch. It
// fills every field of Report except Source and ModTime, which ReadFile
// sets.
type Source interface {
	// Format names the format: "text", "json", "hl7" or "sr".
	Format() string
	// Detect reports whether a file with this name and these first bytes
	// is in this format.
	Detect(name string, head []byte) bool
	// Parse parses the whole file.
	Parse(name string, data []byte) ([]Report, error)
}

// Charset selects how plain-text reports whose bytes are not valid UTF-8
// are decoded.
type Charset string

// Charsets for Options.Charset.
const (
	// CharsetAuto accepts UTF-8 (with or without BOM) and rejects other
	// bytes with an error naming the file.
	CharsetAuto Charset = ""
	// CharsetUTF8 is CharsetAuto, spelt out.
	CharsetUTF8 Charset = "utf-8"
	// CharsetLatin1 reads valid UTF-8 as UTF-8 and anything else as
	// ISO 8859-1.
	CharsetLatin1 Charset = "latin1"
)

// Options configures the report sources. The zero value is usable.
type Options struct {
	// Charset for text, HL7 and SR reports in the default repertoire whose
	// bytes are not valid UTF-8.
	Charset Charset
	// MaxBytes is the largest file read; DefaultMaxBytes when zero.
	MaxBytes int64
}

// Validate checks the options, naming the offending setting.
func (o Options) Validate() error {
	switch o.Charset {
	case CharsetAuto, CharsetUTF8, CharsetLatin1:
	default:
		return fmt.Errorf("reports charset %q: want \"\", \"utf-8\" or \"latin1\"", o.Charset)
	}
	if o.MaxBytes < 0 {
		return fmt.Errorf("reports max bytes %d: must not be negative", o.MaxBytes)
	}
	return nil
}

func (o Options) maxBytes() int64 {
	if o.MaxBytes == 0 {
		return DefaultMaxBytes
	}
	return o.MaxBytes
}

// Reader reads report files of every supported format.
type Reader struct {
	opts    Options
	sources []Source
}

// NewReader returns a Reader for the text, JSON, HL7 and SR formats.
func NewReader(opts Options) (*Reader, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Reader{opts: opts, sources: []Source{
		&SRSource{Options: opts},
		&HL7Source{Options: opts},
		&JSONSource{Options: opts},
		&TextSource{Options: opts},
	}}, nil
}

// Sources returns the reader's sources in detection order.
func (r *Reader) Sources() []Source { return append([]Source(nil), r.sources...) }

// ReadFile reads the report(s) in the file at path, choosing the source
// by name and content. A file in no supported format gives an error
// wrapping ErrNotReport.
func (r *Reader) ReadFile(path string) ([]Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	defer f.Close()
	return r.ReadFrom(path, f)
}

// ReadFrom is ReadFile on a file the caller has opened (and checked): path
// is its name, which chooses the source and becomes the reports' Source.
// It reads f from its start.
func (r *Reader) ReadFrom(path string, f *os.File) ([]Report, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("read report %s: %w", path, err)
	}
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read report %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("read report %s: not a regular file: %w", path, ErrNotReport)
	}
	if max := r.opts.maxBytes(); info.Size() > max {
		return nil, fmt.Errorf("read report %s: %d bytes is over the %d byte limit (reports max bytes)", path, info.Size(), max)
	}
	data, err := io.ReadAll(io.LimitReader(f, r.opts.maxBytes()+1))
	if err != nil {
		return nil, fmt.Errorf("read report %s: %w", path, err)
	}
	src := r.Detect(path, data)
	if src == nil {
		return nil, fmt.Errorf("read report %s: %w (want .txt, .json, .hl7 or a DICOM SR)", path, ErrNotReport)
	}
	reps, err := src.Parse(path, data)
	if err != nil {
		return nil, err
	}
	for i := range reps {
		reps[i].Source = path
		reps[i].ModTime = info.ModTime()
	}
	return reps, nil
}

// Detect returns the source for a file with this name and content, or nil.
func (r *Reader) Detect(name string, data []byte) Source {
	head := data
	if len(head) > 512 {
		head = head[:512]
	}
	for _, s := range r.sources {
		if s.Detect(name, head) {
			return s
		}
	}
	return nil
}

// stem returns the file name without directory and extension.
func stem(name string) string {
	base := filepath.Base(name)
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// hasExt reports whether name ends in one of exts (lower case, with dot),
// case-insensitively.
func hasExt(name string, exts ...string) bool {
	e := strings.ToLower(filepath.Ext(name))
	for _, x := range exts {
		if e == x {
			return true
		}
	}
	return false
}
