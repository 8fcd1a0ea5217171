package main

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"tmcad/config"
	"tmcad/daemon/pull"
	"tmcad/segment"
)

// pullDoor is the DICOMweb door of `tmcad run` (polling) and of
// `tmcad reprocess --study` (fetching one study into the drop folder).
type pullDoor struct {
	// Run polls the PACS until the context given to newPullDoor ends;
	// start it in a goroutine. It returns nil then.
	Run func() error
	// FetchStudy retrieves every series of one study into
	// watch.dicom_dir; instances already there are not written again.
	FetchStudy func(ctx context.Context, studyUID string) (pull.Result, error)
	// Metrics are the door's counters, to register on the registry that
	// serves /metrics.
	Metrics prometheus.Collector
}

// newPullDoor builds the DICOMweb door from cfg's [source.dicomweb]; it
// returns nil (and no error) when source.dicomweb.enabled is false. It
// checks the folders (staging on the drop folder's filesystem) and reads
// the high-water mark, and contacts the PACS only when Run or FetchStudy
// is called. With no modalities configured (source.dicomweb.modalities,
// select.modalities), the model manifest's are searched.
func newPullDoor(ctx context.Context, cfg *config.Config, log zerolog.Logger) (*pullDoor, error) {
	if !cfg.Source.DICOMweb.Enabled {
		return nil, nil
	}
	var modelModalities []string
	if len(cfg.PullModalities(nil)) == 0 {
		m, err := segment.LoadManifest(cfg.Model.Dir)
		if err != nil {
			return nil, fmt.Errorf("source.dicomweb: modalities to search: %w", err)
		}
		modelModalities = m.Modalities
	}
	opts, err := pullOptions(cfg, modelModalities, log)
	if err != nil {
		return nil, err
	}
	p, err := pull.New(opts)
	if err != nil {
		return nil, err
	}
	return &pullDoor{
		Run:        func() error { return p.Run(ctx) },
		FetchStudy: p.FetchStudy,
		Metrics:    p.Metrics(),
	}, nil
}
