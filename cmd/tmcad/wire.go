package main

// The wiring: the configuration mapped onto the options of the packages
// that do not read it themselves.

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"

	"tmcad/config"
	"tmcad/writer/archive"
)

// newSink builds the archive sink the configuration names. For a
// filesystem archive the second result is the same sink, typed, so that
// callers can report paths and write previews; its folder (archive.dir)
// must exist.
func newSink(cfg *config.Config, log zerolog.Logger) (archive.Sink, *archive.FilesystemSink, error) {
	switch cfg.Archive.Kind {
	case "filesystem":
		// The archive root is never created here: a missing one is a typo
		// or an unmounted share, and SEGs written into a new folder would
		// be recorded stored where nobody looks.
		st, err := os.Stat(cfg.Archive.Dir)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return nil, nil, fmt.Errorf("archive.dir: the archive folder %s does not exist; create it, or mount the share it lives on", cfg.Archive.Dir)
		case err != nil:
			return nil, nil, fmt.Errorf("archive.dir: %w", err)
		case !st.IsDir():
			return nil, nil, fmt.Errorf("archive.dir: %s is not a folder", cfg.Archive.Dir)
		}
		fsink, err := archive.NewFilesystemSink(cfg.Archive.Dir)
		if err != nil {
			return nil, nil, fmt.Errorf("archive.dir: %w", err)
		}
		return fsink, fsink, nil
	case "dicomweb":
		s, err := archive.NewDICOMwebSink(archive.DICOMwebConfig{
			BaseURL:     cfg.Archive.URL,
			Username:    cfg.Archive.Username,
			Password:    cfg.Archive.Password.Value,
			BearerToken: cfg.Archive.Token.Value,
			CAFile:      cfg.Archive.CAFile,
			Timeout:     cfg.Archive.Timeout.Duration,
			MaxAttempts: cfg.Archive.MaxRetries + 1,
			OnRetry: func(attempt int, wait time.Duration, err error) {
				log.Warn().Int("attempt", attempt).Dur("wait", wait).Err(err).Msg("STOW-RS failed; retrying")
			},
		})
		if err != nil {
			return nil, nil, err
		}
		return s, nil, nil
	case "dimse":
		s, err := archive.NewDIMSESink(archive.DIMSEConfig{
			CalledAE:    cfg.Archive.CalledAE,
			CallingAE:   cfg.Archive.CallingAE,
			Host:        cfg.Archive.Host,
			Port:        cfg.Archive.Port,
			Timeout:     cfg.Archive.Timeout.Duration,
			MaxAttempts: cfg.Archive.MaxRetries + 1,
			OnRetry: func(attempt int, wait time.Duration, err error) {
				log.Warn().Int("attempt", attempt).Dur("wait", wait).Err(err).Msg("C-STORE failed; retrying")
			},
		})
		if err != nil {
			return nil, nil, fmt.Errorf("archive.kind dimse: %w", err)
		}
		return s, nil, nil
	}
	return nil, nil, fmt.Errorf("archive.kind %q: want filesystem, dicomweb or dimse", cfg.Archive.Kind)
}
