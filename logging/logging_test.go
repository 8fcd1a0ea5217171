package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestJSONLinesWithSeriesFields(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, "debug", "auto") // a buffer is not a terminal: JSON
	if err != nil {
		t.Fatal(err)
	}
	sl := Series{StudyUID: "1.2.3", SeriesUID: "1.2.3.4", JobID: 7}.Logger(l)
	sl.Info().Msg("segmented")
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("not a JSON line: %q: %v", buf.String(), err)
	}
	if m["study_uid"] != "1.2.3" || m["series_uid"] != "1.2.3.4" || m["job_id"] != float64(7) || m["level"] != "info" {
		t.Fatalf("fields: %v", m)
	}
}

func TestLevelFilters(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, "warn", "json")
	if err != nil {
		t.Fatal(err)
	}
	l.Info().Msg("hidden")
	l.Warn().Msg("shown")
	if strings.Contains(buf.String(), "hidden") || !strings.Contains(buf.String(), "shown") {
		t.Fatalf("level filter: %q", buf.String())
	}
}

func TestConsoleFormat(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, "info", "console")
	if err != nil {
		t.Fatal(err)
	}
	l.Info().Str("series_uid", "1.2").Msg("hello")
	if strings.HasPrefix(buf.String(), "{") || !strings.Contains(buf.String(), "hello") {
		t.Fatalf("console output: %q", buf.String())
	}
}

func TestBadLevelAndFormat(t *testing.T) {
	if _, err := New(&bytes.Buffer{}, "loud", "json"); err == nil {
		t.Fatal("accepted level loud")
	}
	if _, err := New(&bytes.Buffer{}, "info", "xml"); err == nil {
		t.Fatal("accepted format xml")
	}
}
