// Package logging builds tmcad's zerolog logger: JSON lines on stderr when it
// is not a terminal (journald picks them up), human console output when it
// is. It also holds the one helper for the fields every line about a series
// carries, so that call sites log UIDs and never reach for PHI.
package logging

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/term"
)

// New returns a logger writing to w at level ("trace".."error") in format
// ("auto", "json" or "console"). With "auto", console output is chosen when w
// is a terminal.
func New(w io.Writer, level, format string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Nop(), fmt.Errorf("log level %q: must be trace, debug, info, warn or error", level)
	}
	console := false
	switch format {
	case "console":
		console = true
	case "json":
	case "auto", "":
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			console = true
		}
	default:
		return zerolog.Nop(), fmt.Errorf("log format %q: must be auto, json or console", format)
	}
	if console {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// Series identifies the series (and job) a log line is about, by UIDs only.
// It is the only way call sites attach a series to a log line: it has no
// field that could hold a name, a patient ID, a birth date or report text.
type Series struct {
	StudyUID  string
	SeriesUID string
	JobID     int64
}

// Logger returns l with the series' fields attached.
func (s Series) Logger(l zerolog.Logger) zerolog.Logger {
	c := l.With()
	if s.StudyUID != "" {
		c = c.Str("study_uid", s.StudyUID)
	}
	if s.SeriesUID != "" {
		c = c.Str("series_uid", s.SeriesUID)
	}
	if s.JobID != 0 {
		c = c.Int64("job_id", s.JobID)
	}
	return c.Logger()
}
