package main

// The wiring: the configuration mapped onto the options of the packages
// that do not read it themselves (the pipeline, the archive sink, the
// DICOMweb door, the report readers). The daemon takes the configuration
// itself, since SIGHUP reloads parts of it, and receives the rest of its
// parts from here.

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"

	"tmcad/config"
	"tmcad/daemon/pipeline"
	"tmcad/daemon/pull"
	"tmcad/dicomio"
	"tmcad/reports"
	"tmcad/segment"
	"tmcad/writer"
	"tmcad/writer/archive"
)

// pipelineOptions maps the configuration onto the pipeline's options:
// model.* and ort.library (the model and how it runs), limits.*,
// seg.* (the SEG and its companions) and reports.* (how a report becomes
// the guide text, and whether a batch needs one).
func pipelineOptions(cfg *config.Config) pipeline.Options {
	segType := writer.Binary
	if cfg.SEG.Type == "fractional" {
		segType = writer.Fractional
	}
	return pipeline.Options{
		ModelDir:   cfg.Model.Dir,
		ORTLibrary: cfg.ORT.Library,
		Engine: segment.Options{
			Provider:         cfg.Model.ExecutionProvider,
			DeviceID:         cfg.Model.DeviceID,
			FallbackToCPU:    cfg.Model.FallbackToCPU,
			IntraOpThreads:   cfg.Model.IntraOpThreads,
			BatchSize:        cfg.Model.BatchSize,
			ConcurrentRuns:   cfg.Model.ConcurrentRuns,
			MinComponentArea: cfg.Model.MinComponentArea,
		},
		Limits: dicomio.Limits{
			MaxRows: cfg.Limits.MaxRows, MaxColumns: cfg.Limits.MaxColumns,
			MaxFrames: cfg.Limits.MaxFrames, MaxBytes: cfg.Limits.MaxVoxels * 4,
		},
		SEG: writer.Description{
			Type:               segType,
			SeriesNumber:       cfg.SEG.SeriesNumber,
			SeriesDescription:  cfg.SEG.SeriesDescription,
			ContentLabel:       cfg.SEG.ContentLabel,
			ContentCreatorName: cfg.SEG.ContentCreatorName,
			Manufacturer:       cfg.SEG.Manufacturer,
			KeepEmptyFrames:    !cfg.SEG.OmitEmptyFrames,
			SkipIfEmpty:        !cfg.SEG.WriteWhenEmpty,
			UIDRoot:            cfg.SEG.UIDRoot,
		},
		SR:               cfg.SEG.SR,
		Overlay:          cfg.SEG.Overlay,
		Reports:          reportOptions(cfg),
		Sections:         cfg.Reports.Sections,
		RunWithoutTarget: cfg.Reports.NoTarget == "run",
		ReportRequired:   cfg.Reports.Required,
	}
}

// reportOptions maps reports.charset onto the report readers' options:
// the batch's, the daemon's (drop folder and HL7 listener) and
// explain-report's.
func reportOptions(cfg *config.Config) reports.Options {
	cs := reports.CharsetAuto
	if cfg.Reports.Charset == "latin1" {
		cs = reports.CharsetLatin1
	}
	return reports.Options{Charset: cs}
}

// pullOptions maps [source.dicomweb] onto the DICOMweb door's options.
// modelModalities (the model manifest's) are searched when neither
// source.dicomweb.modalities nor select.modalities is set.
func pullOptions(cfg *config.Config, modelModalities []string, log zerolog.Logger) (pull.Options, error) {
	s := cfg.Source.DICOMweb
	since, err := cfg.PullSince()
	if err != nil {
		return pull.Options{}, fmt.Errorf("source.dicomweb.since: %w", err)
	}
	return pull.Options{
		BaseURL:            s.URL,
		Username:           s.Username,
		Password:           s.Password.Value,
		BearerToken:        s.Token.Value,
		CAFile:             s.CAFile,
		InsecureSkipVerify: s.InsecureSkipVerify,
		Timeout:            s.Timeout.Duration,
		MaxAttempts:        s.MaxRetries + 1,
		Modalities:         cfg.PullModalities(modelModalities),
		Since:              since,
		LookBackDays:       s.LookBackDays,
		PageSize:           s.PageSize,
		PollEvery:          s.PollEvery.Duration,
		DropDir:            cfg.Watch.DICOMDir,
		StagingDir:         cfg.PullStagingDir(),
		StateDir:           cfg.PullStateDir(),
		Logger:             log,
	}, nil
}

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
		var dimseTLS *archive.DIMSETLS
		if cfg.Archive.TLS {
			dimseTLS = &archive.DIMSETLS{CAFile: cfg.Archive.CAFile, CertFile: cfg.Archive.TLSCert, KeyFile: cfg.Archive.TLSKey}
		}
		s, err := archive.NewDIMSESink(archive.DIMSEConfig{
			CalledAE:    cfg.Archive.CalledAE,
			CallingAE:   cfg.Archive.CallingAE,
			Host:        cfg.Archive.Host,
			Port:        cfg.Archive.Port,
			Timeout:     cfg.Archive.Timeout.Duration,
			MaxAttempts: cfg.Archive.MaxRetries + 1,
			TLS:         dimseTLS,
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
