package pull

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// stateVersion is the layout of the state file.
const stateVersion = 1

// state is the high-water mark of one PACS: the series fetched completely
// and the date of the last complete poll.
type state struct {
	Version int `json:"version"`
	// URL is the PACS's base URL (without credentials), for people reading
	// the file.
	URL string `json:"url"`
	// Watermark is the day (YYYYMMDD) the last complete poll started; the
	// next poll asks for StudyDate from look_back_days before it.
	Watermark string `json:"watermark,omitempty"`
	// Series maps a SeriesInstanceUID to what was fetched of it.
	Series map[string]seriesState `json:"series"`
}

// seriesState is one series fetched completely.
type seriesState struct {
	Study string `json:"study"`
	// Date is the study's StudyDate (YYYYMMDD); entries older than the
	// search window are dropped.
	Date string `json:"date,omitempty"`
	// Instances is the number of instances the series had when fetched;
	// a series that has more is fetched again.
	Instances int       `json:"instances"`
	Fetched   time.Time `json:"fetched"`
}

// statePath is the state file of baseURL in dir: one file per PACS, so
// that pointing tmcad at another PACS starts afresh.
func statePath(dir, baseURL string) string {
	sum := sha256.Sum256([]byte(strings.TrimRight(baseURL, "/")))
	return filepath.Join(dir, "dicomweb-"+hex.EncodeToString(sum[:6])+".json")
}

// loadState reads the state file; a missing one is an empty state.
func loadState(path, url string) (*state, error) {
	s := &state{Version: stateVersion, URL: url, Series: map[string]seriesState{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pull: state file: %w", err)
	}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("pull: state file %s is damaged (%v); move it aside to start afresh (series in the look-back window are fetched again; the catalogue sets aside instances it has)", path, err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("pull: state file %s has version %d, this tmcad reads %d", path, s.Version, stateVersion)
	}
	if s.Series == nil {
		s.Series = map[string]seriesState{}
	}
	s.URL = url
	return s, nil
}

// save writes the state atomically: a temporary file beside it, fsynced,
// renamed over it, and the folder fsynced.
func (s *state) save(path string) error {
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return fmt.Errorf("pull: state file: %w", err)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".state-*.tmp")
	if err != nil {
		return fmt.Errorf("pull: state file: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("pull: state file %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("pull: state file %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("pull: state file %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("pull: state file: %w", err)
	}
	ok = true
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("pull: state file: %w", err)
	}
	return nil
}

// prune drops series whose StudyDate is before from (YYYYMMDD): no search
// asks for them again.
func (s *state) prune(from string) {
	for uid, e := range s.Series {
		if e.Date < from {
			delete(s.Series, uid)
		}
	}
}
