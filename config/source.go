package config

import (
	"errors"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// SourceConfig holds the doors through which tmcad fetches DICOM itself,
// beside the drop folder that others write into.
type SourceConfig struct {
	// DICOMweb polls a PACS over DICOMweb (QIDO-RS, WADO-RS).
	DICOMweb DICOMwebSourceConfig `toml:"dicomweb"`
}

// DICOMwebSourceConfig describes the PACS that `tmcad run` polls over
// DICOMweb: new series are found with QIDO-RS, retrieved with WADO-RS as
// explicit VR little endian and written into watch.dicom_dir the way the
// DICOM receiver writes them (staged, then renamed).
type DICOMwebSourceConfig struct {
	// Enabled turns the poller on.
	Enabled bool `toml:"enabled"`
	// URL is the DICOMweb base URL (e.g. http://pacs:8042/dicom-web).
	URL string `toml:"url"`
	// PollEvery is the time between two polls.
	PollEvery Duration `toml:"poll_every"`
	// Modalities fetched (one QIDO-RS query each); empty means
	// select.modalities, or the model manifest's when that is empty too.
	Modalities []string `toml:"modalities"`
	// Since is the earliest StudyDate fetched (YYYY-MM-DD); empty means
	// look_back_days before the first poll.
	Since string `toml:"since"`
	// LookBackDays is how many days before the last complete poll each
	// poll looks again, for series that reach the PACS late.
	LookBackDays int `toml:"look_back_days"`
	// PageSize is the QIDO-RS limit of one page of results.
	PageSize int `toml:"page_size"`
	// Username for HTTP basic authentication.
	Username string `toml:"username"`
	// Password for basic authentication; prefer {env = "NAME"} or
	// {file = "/path"} to a literal.
	Password Secret `toml:"password"`
	// Token is a bearer token; prefer {env = "NAME"} or {file = "/path"}.
	Token Secret `toml:"token"`
	// CAFile is a PEM bundle of CAs trusted for the PACS (added to the
	// system's).
	CAFile string `toml:"ca_file"`
	// InsecureSkipVerify accepts any certificate of the PACS (testing only).
	InsecureSkipVerify bool `toml:"insecure_skip_verify"`
	// Timeout bounds the wait for an answer, and for each next piece of a
	// retrieval in progress.
	Timeout Duration `toml:"timeout"`
	// MaxRetries on connection errors and 5xx, 408 and 429 answers, per
	// request.
	MaxRetries int `toml:"max_retries"`
	// StagingDir is where retrieved instances are written before they are
	// renamed into watch.dicom_dir; it must be on the same filesystem and
	// outside it. Empty means "pull-staging" beside watch.dicom_dir.
	StagingDir string `toml:"staging_dir"`
}

// PullStagingDir is where the DICOMweb poller stages retrieved instances:
// source.dicomweb.staging_dir, or "pull-staging" beside watch.dicom_dir.
func (c *Config) PullStagingDir() string {
	if c.Source.DICOMweb.StagingDir != "" {
		return c.Source.DICOMweb.StagingDir
	}
	return filepath.Join(filepath.Dir(filepath.Clean(c.Watch.DICOMDir)), "pull-staging")
}

// PullStateDir is where the DICOMweb poller keeps its high-water mark:
// state_dir/pull.
func (c *Config) PullStateDir() string { return filepath.Join(c.StateDir, "pull") }

// PullSince parses source.dicomweb.since; the zero time when it is empty.
func (c *Config) PullSince() (time.Time, error) {
	s := strings.TrimSpace(c.Source.DICOMweb.Since)
	if s == "" {
		return time.Time{}, nil
	}
	return time.ParseInLocation(time.DateOnly, s, time.Local)
}

// PullModalities is the modalities the DICOMweb poller asks for:
// source.dicomweb.modalities, else select.modalities, else
// modelModalities (the model manifest's).
func (c *Config) PullModalities(modelModalities []string) []string {
	switch {
	case len(c.Source.DICOMweb.Modalities) > 0:
		return c.Source.DICOMweb.Modalities
	case len(c.Select.Modalities) > 0:
		return c.Select.Modalities
	}
	return modelModalities
}

var modalityRE = regexp.MustCompile(`^[A-Z0-9_]{1,16}$`)

// validateSource checks the [source.dicomweb] keys; the URL, credentials
// and folders only when the poller is enabled.
func (c *Config) validateSource(bad func(key, want string, got any), add func(error)) {
	s := c.Source.DICOMweb
	const p = "source.dicomweb."
	add(s.PollEvery.check(p+"poll_every", false))
	add(s.Timeout.check(p+"timeout", false))
	for _, m := range s.Modalities {
		if !modalityRE.MatchString(m) {
			bad(p+"modalities", "must list DICOM modality codes (upper case, e.g. \"CT\", \"CR\")", m)
		}
	}
	if _, err := c.PullSince(); err != nil {
		bad(p+"since", "must be a date YYYY-MM-DD or empty", s.Since)
	}
	if s.LookBackDays < 0 || s.LookBackDays > 3660 {
		bad(p+"look_back_days", "must be between 0 and 3660", s.LookBackDays)
	}
	if s.PageSize < 1 || s.PageSize > 10000 {
		bad(p+"page_size", "must be between 1 and 10000", s.PageSize)
	}
	if s.MaxRetries < 0 {
		bad(p+"max_retries", "must be >= 0", s.MaxRetries)
	}
	if withoutUserInfo(s.URL) != s.URL {
		bad(p+"url", "must not hold credentials (user:password@); use source.dicomweb.username with source.dicomweb.password, or source.dicomweb.token", withoutUserInfo(s.URL))
	}
	if s.Password.Value != "" && s.Token.Value != "" {
		add(errors.New(p + "password, " + p + "token: give one of basic or bearer authentication, not both"))
	}
	if s.Password.Value != "" && s.Username == "" {
		add(errors.New(p + "username: must be set when " + p + "password is"))
	}
	if !s.Enabled {
		return
	}
	u, err := url.Parse(s.URL)
	if s.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad(p+"url", "must be an http(s) URL when source.dicomweb.enabled = true", withoutUserInfo(s.URL))
	}
	if c.Watch.DICOMDir != "" {
		drop := filepath.Clean(c.Watch.DICOMDir)
		staging := filepath.Clean(c.PullStagingDir())
		if staging == drop || strings.HasPrefix(staging, drop+string(filepath.Separator)) {
			// The watcher would read instances before they are complete.
			bad(p+"staging_dir", "must be outside watch.dicom_dir (on the same filesystem)", c.PullStagingDir())
		}
	}
}
