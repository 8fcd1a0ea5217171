package config

import "time"

// Default returns the configuration used for every key the file leaves out.
func Default() *Config {
	return &Config{
		StateDir: "/var/lib/tmcad",
		Log:      LogConfig{Level: "info", Format: "auto"},
		Roles:    RolesConfig{Ingest: true, Process: true, Export: true},
		Model: ModelConfig{
			Dir:               "/usr/share/tmcad/models/tmca-cxr-compact",
			ExecutionProvider: "cpu",
			FallbackToCPU:     true,
			BatchSize:         8,
			ConcurrentRuns:    0,
		},
		Watch: WatchConfig{
			DICOMDir:       "/var/spool/tmcad/dicom",
			ReportsDir:     "/var/spool/tmcad/reports",
			StableAfter:    D(30 * time.Second),
			RescanEvery:    D(5 * time.Minute),
			SizeStableFor:  D(2 * time.Second),
			IncompleteWait: D(10 * time.Minute),
		},
		Select: SelectConfig{
			Modalities:     []string{},
			BodyParts:      []string{},
			SkipImageTypes: []string{"DERIVED", "SECONDARY", "LOCALIZER"},
			MinSlices:      1,
		},
		Limits: LimitsConfig{
			MaxRows:       8192,
			MaxColumns:    8192,
			MaxFrames:     3000,
			MaxVoxels:     1 << 30,
			MaxQueuedJobs: 1000,
			MaxOutbox:     500,
		},
		Reports: ReportsConfig{
			Wait:     D(24 * time.Hour),
			Required: true,
			Sections: []string{"FINDINGS", "IMPRESSION"},
			NoTarget: "record",
			Charset:  "auto",
		},
		SEG: SEGConfig{
			Type:               "binary",
			OmitEmptyFrames:    true,
			WriteWhenEmpty:     true,
			SeriesNumber:       9901,
			SeriesDescription:  "TMCA segmentation",
			ContentLabel:       "TMCA",
			ContentCreatorName: "TMCAD^Daemon",
			Manufacturer:       "tmcad",
			SR:                 false,
			Overlay:            false,
		},
		Archive: ArchiveConfig{
			Kind:             "filesystem",
			Dir:              "/var/lib/tmcad/archive",
			Timeout:          D(60 * time.Second),
			MaxRetries:       5,
			RetryMaxInterval: D(2 * time.Minute),
			CallingAE:        "TMCAD",
			Port:             104,
		},
		Queue:     QueueConfig{Workers: 1, MaxAttempts: 5, DrainTimeout: D(60 * time.Second)},
		Schedule:  ScheduleConfig{Export: "immediate", ExportWindow: D(6 * time.Hour), Reprocess: "0 2 * * *"},
		Retention: RetentionConfig{Inputs: "keep"},
		HTTP:      HTTPConfig{Listen: "127.0.0.1:9464"},
		HL7: HL7Config{
			Allow:           []string{"127.0.0.1/32", "::1/128"},
			IdleTimeout:     D(5 * time.Minute),
			MaxConnections:  32,
			MaxMessageBytes: 8 << 20,
		},
		Source: SourceConfig{DICOMweb: DICOMwebSourceConfig{
			PollEvery:    D(5 * time.Minute),
			Modalities:   []string{},
			LookBackDays: 7,
			PageSize:     100,
			Timeout:      D(60 * time.Second),
			MaxRetries:   5,
		}},
	}
}
