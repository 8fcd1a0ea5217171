// Package config is tmcad's typed configuration: one TOML file, defaults for
// every key, strict loading (unknown keys are errors) and validation whose
// errors name the file and the key. It is the floor of the module: it imports
// nothing of ours.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// Config is the whole configuration of tmcad.
type Config struct {
	// StateDir holds the queue database and the catalog (unless
	// queue.database_url), and the outbox (unless archive.outbox_dir).
	StateDir string `toml:"state_dir"`
	// Node names this node in logs, metrics, the queue and the shared
	// outbox; empty means the host name. Nodes sharing one queue need
	// distinct names.
	Node      string          `toml:"node"`
	Roles     RolesConfig     `toml:"roles"`
	Log       LogConfig       `toml:"log"`
	ORT       ORTConfig       `toml:"ort"`
	Model     ModelConfig     `toml:"model"`
	Watch     WatchConfig     `toml:"watch"`
	Select    SelectConfig    `toml:"select"`
	Limits    LimitsConfig    `toml:"limits"`
	Reports   ReportsConfig   `toml:"reports"`
	SEG       SEGConfig       `toml:"seg"`
	Archive   ArchiveConfig   `toml:"archive"`
	Queue     QueueConfig     `toml:"queue"`
	Schedule  ScheduleConfig  `toml:"schedule"`
	Retention RetentionConfig `toml:"retention"`
	HTTP      HTTPConfig      `toml:"http"`
	HL7       HL7Config       `toml:"hl7"`
	Source    SourceConfig    `toml:"source"`

	// path is the file the config was loaded from ("" for defaults).
	path string
}

// LogConfig selects the log level and format.
type LogConfig struct {
	// Level is one of trace, debug, info, warn, error.
	Level string `toml:"level"`
	// Format is auto (JSON when stderr is not a terminal), json or console.
	Format string `toml:"format"`
}

// ORTConfig locates the ONNX Runtime shared library.
type ORTConfig struct {
	// Library is the path to libonnxruntime.so; empty means: TMCAD_ORT_LIB,
	// then third_party/onnxruntime beside the binary or the working
	// directory, then /usr/lib/tmcad.
	Library string `toml:"library"`
}

// ModelConfig selects the model and how it runs.
type ModelConfig struct {
	// Dir is the model folder holding manifest.json.
	Dir string `toml:"dir"`
	// ExecutionProvider is cpu or cuda.
	ExecutionProvider string `toml:"execution_provider"`
	// DeviceID is the CUDA device number.
	DeviceID int `toml:"device_id"`
	// FallbackToCPU runs on CPU (with one warning) when CUDA cannot start.
	FallbackToCPU bool `toml:"fallback_to_cpu"`
	// IntraOpThreads is ONNX Runtime's intra-op thread count; 0 = its default.
	IntraOpThreads int `toml:"intra_op_threads"`
	// BatchSize is the most frames sent through the session at once.
	BatchSize int `toml:"batch_size"`
	// ConcurrentRuns is how many batches run through the model at once;
	// 0 is automatic (2 on CPU with at least 2 CPUs, 1 on CUDA). With more
	// than 1 and intra_op_threads = 0, each run gets NumCPU / concurrent_runs
	// threads.
	ConcurrentRuns int `toml:"concurrent_runs"`
	// MinComponentArea removes mask components smaller than this many pixels
	// (0 = keep all).
	MinComponentArea int `toml:"min_component_area"`
}

// WatchConfig describes the drop folders and series stability.
type WatchConfig struct {
	// DICOMDir is the drop folder for DICOM files (watched recursively).
	DICOMDir string `toml:"dicom_dir"`
	// ReportsDir is the drop folder for report files.
	ReportsDir string `toml:"reports_dir"`
	// StableAfter is the quiet period after the last instance of a series
	// after which the series is ready.
	StableAfter Duration `toml:"stable_after"`
	// RescanEvery is the period of the full rescan that catches missed events.
	RescanEvery Duration `toml:"rescan_every"`
	// SizeStableFor is how long a file's size must not change before it is read.
	SizeStableFor Duration `toml:"size_stable_for"`
	// IncompleteWait is how long a DICOM file that ends inside an element
	// (a slow writer that paused longer than SizeStableFor) is waited for
	// before it is quarantined as unreadable; it is read again each time
	// it grows. Zero quarantines it at once.
	IncompleteWait Duration `toml:"incomplete_wait"`
}

// SelectConfig chooses which series are processed.
type SelectConfig struct {
	// Modalities processed; empty means the model manifest's modalities.
	Modalities []string `toml:"modalities"`
	// BodyParts processed (BodyPartExamined); empty means any.
	BodyParts []string `toml:"body_parts"`
	// SkipImageTypes lists ImageType values whose series are skipped.
	SkipImageTypes []string `toml:"skip_image_types"`
	// MinSlices is the fewest frames a series must have.
	MinSlices int `toml:"min_slices"`
}

// LimitsConfig bounds what one series may make the daemon allocate, and
// how much work may wait before ingestion pauses.
type LimitsConfig struct {
	// MaxRows is the largest accepted Rows.
	MaxRows int `toml:"max_rows"`
	// MaxColumns is the largest accepted Columns.
	MaxColumns int `toml:"max_columns"`
	// MaxFrames is the most frames in one series.
	MaxFrames int `toml:"max_frames"`
	// MaxVoxels bounds rows × columns × frames of one series.
	MaxVoxels int64 `toml:"max_voxels"`
	// MaxQueuedJobs pauses ingestion while this many process jobs or more
	// are unfinished in the queue (waiting, running or to be retried);
	// it resumes below 90 % of it. 0: no limit.
	MaxQueuedJobs int `toml:"max_queued_jobs"`
	// MaxOutbox pauses ingestion while this many SEGs or more wait in the
	// outbox for the archive; it resumes below 90 % of it. 0: no limit.
	MaxOutbox int `toml:"max_outbox"`
}

// ReportsConfig describes how reports are read and waited for.
type ReportsConfig struct {
	// Wait is how long a ready series waits for its report before it is
	// parked as awaiting_report.
	Wait Duration `toml:"wait"`
	// Required: without a report a series is not processed (only a manifest
	// with text_required = false allows false).
	Required bool `toml:"required"`
	// Sections of a sectioned report that describe the findings.
	Sections []string `toml:"sections"`
	// NoTarget decides what happens to a series whose report describes no
	// target finding (a normal report, or every finding negated):
	// "record" runs no model and records the outcome (an empty SEG when
	// seg.write_when_empty), "run" runs the model on the report's
	// sections anyway.
	NoTarget string `toml:"no_target"`
	// Charset of plain-text reports that are not valid UTF-8: auto (UTF-8
	// only) or latin1.
	Charset string `toml:"charset"`
}

// SEGConfig describes the DICOM Segmentation objects written.
type SEGConfig struct {
	// Type is binary or fractional.
	Type string `toml:"type"`
	// OmitEmptyFrames leaves frames without any segmented pixel out.
	OmitEmptyFrames bool `toml:"omit_empty_frames"`
	// WriteWhenEmpty writes a SEG even when nothing was segmented.
	WriteWhenEmpty bool `toml:"write_when_empty"`
	// UIDRoot is an organisation UID root; empty means the 2.25 UUID form.
	UIDRoot string `toml:"uid_root"`
	// SeriesNumber of the SEG series.
	SeriesNumber int `toml:"series_number"`
	// SeriesDescription of the SEG series.
	SeriesDescription string `toml:"series_description"`
	// ContentLabel of the SEG (a DICOM CS value: upper case, digits, _).
	ContentLabel string `toml:"content_label"`
	// ContentCreatorName of the SEG (a PN value).
	ContentCreatorName string `toml:"content_creator_name"`
	// Manufacturer written into Enhanced General Equipment.
	Manufacturer string `toml:"manufacturer"`
	// SR writes a measurement report (Comprehensive SR, TID 1500) with each
	// SEG: per segment its finding, site, algorithm and area (mm²,
	// radiographs) or volume (mL, cross-sectional series).
	SR bool `toml:"sr"`
	// Overlay writes a Secondary Capture series with each SEG: the source
	// images with the segmentation outline burned in, marked NOT FOR
	// DIAGNOSIS, for viewers that do not show SEGs.
	Overlay bool `toml:"overlay"`
}

// ArchiveConfig describes where SEG objects go.
type ArchiveConfig struct {
	// Kind is filesystem, dicomweb or dimse (C-STORE to a PACS).
	Kind string `toml:"kind"`
	// Dir is the filesystem archive's root.
	Dir string `toml:"dir"`
	// URL is the DICOMweb base URL (e.g. http://pacs:8042/dicom-web).
	URL string `toml:"url"`
	// Username for HTTP basic authentication.
	Username string `toml:"username"`
	// Password for basic authentication (prefer password_env or password_file).
	Password Secret `toml:"password"`
	// Token is a bearer token (prefer token_env or token_file).
	Token Secret `toml:"token"`
	// CAFile is a PEM bundle of CAs trusted for the DICOMweb server, or
	// for the PACS's certificate with kind = "dimse" and TLS.
	CAFile string `toml:"ca_file"`
	// Timeout of one STOW-RS request, or of one C-STORE association (dimse).
	Timeout Duration `toml:"timeout"`
	// MaxRetries on connection errors and 5xx responses, within one export
	// attempt.
	MaxRetries int `toml:"max_retries"`
	// CalledAE is the PACS's AE title for kind = "dimse".
	CalledAE string `toml:"called_ae"`
	// CallingAE is tmcad's own AE title for kind = "dimse"; the PACS must
	// know it (and allow it to store).
	CallingAE string `toml:"calling_ae"`
	// Host and Port are the PACS's DICOM address for kind = "dimse".
	Host string `toml:"host"`
	Port int    `toml:"port"`
	// TLS sends C-STORE over DICOM TLS (PS3.15 Annex B) for kind =
	// "dimse"; the PACS's certificate is verified against CAFile.
	TLS bool `toml:"tls"`
	// TLSCert and TLSKey are tmcad's PEM client certificate and
	// unencrypted key for a PACS that requires one (mutual TLS); both or
	// neither.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// RetryMaxInterval caps the wait between export attempts of a SEG the
	// archive did not take for a reason that may go away (down, busy,
	// unmounted, full): the wait doubles from 2 seconds up to this, and
	// the SEG is tried again without end. Only an archive refusing the
	// object itself fails the export.
	RetryMaxInterval Duration `toml:"retry_max_interval"`
	// OutboxDir is where SEGs wait for the archive, each node in its own
	// sub-folder named after the node; empty means state_dir/outbox. Nodes
	// sharing one queue set it to the same folder on shared storage, so
	// that any node can export a SEG another one made.
	OutboxDir string `toml:"outbox_dir"`
}

// RolesConfig says which parts of the pipeline this node runs. A node
// alone runs them all; nodes sharing one PostgreSQL queue may split them
// (a GPU node that only processes, say).
type RolesConfig struct {
	// Ingest runs the watcher on the drop folders, the ready loop that
	// queues series, and the HL7 listener.
	Ingest bool `toml:"ingest"`
	// Process runs process jobs (the model).
	Process bool `toml:"process"`
	// Export runs export jobs (outbox to archive).
	Export bool `toml:"export"`
}

// QueueConfig describes the job queue.
type QueueConfig struct {
	// DatabaseURL selects PostgreSQL (postgres://...); empty means the
	// embedded SQLite database in state_dir.
	DatabaseURL Secret `toml:"database_url"`
	// Workers is the number of concurrent jobs.
	Workers int `toml:"workers"`
	// MaxAttempts before a process job ends failed and its inputs are
	// quarantined. Exports are not bounded by it (archive.retry_max_interval).
	MaxAttempts int `toml:"max_attempts"`
	// DrainTimeout is how long running jobs may take to finish on SIGTERM
	// before they are handed back to the queue; keep it below the unit's
	// TimeoutStopSec.
	DrainTimeout Duration `toml:"drain_timeout"`
}

// ScheduleConfig holds the cron schedules.
type ScheduleConfig struct {
	// Export is "immediate" or a cron expression opening the export window.
	// "@every D" opens at multiples of D since 00:00 UTC, 1 January 1970
	// (the same instants on every node and after every restart).
	Export string `toml:"export"`
	// ExportWindow is how long the export window stays open after it opens.
	ExportWindow Duration `toml:"export_window"`
	// Reprocess is the cron expression of the nightly reprocessing.
	Reprocess string `toml:"reprocess"`
	// Timezone of the cron expressions (IANA name); empty means local time.
	Timezone string `toml:"timezone"`
}

// RetentionConfig says what happens to inputs once their SEG is stored.
type RetentionConfig struct {
	// Inputs is keep, move (to done_dir) or delete.
	Inputs string `toml:"inputs"`
	// DoneDir receives inputs when inputs = "move".
	DoneDir string `toml:"done_dir"`
	// QuarantineDir receives inputs that could not be processed.
	QuarantineDir string `toml:"quarantine_dir"`
}

// HTTPConfig describes the health and metrics endpoint.
type HTTPConfig struct {
	// Listen is the address of /healthz, /readyz and /metrics; empty disables.
	Listen string `toml:"listen"`
}

// HL7Config describes the HL7 v2 listener: radiology reports (ORU^R01)
// sent over MLLP are stored in watch.reports_dir, where they are read like
// report files.
type HL7Config struct {
	// Listen is the MLLP address (host:port); empty disables the listener.
	Listen string `toml:"listen"`
	// Allow lists the address ranges (CIDR, or single addresses) that may
	// connect; others are disconnected at once.
	Allow []string `toml:"allow"`
	// TLSCert and TLSKey are PEM files; both set turns on TLS.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// IdleTimeout closes a connection on which nothing arrived for this
	// long (and bounds the wait for a message's rest).
	IdleTimeout Duration `toml:"idle_timeout"`
	// MaxConnections is the most connections served at once.
	MaxConnections int `toml:"max_connections"`
	// MaxMessageBytes is the largest message accepted; longer ones are
	// answered AR.
	MaxMessageBytes int `toml:"max_message_bytes"`
}

// Path returns the file the configuration was loaded from, or "" for defaults.
func (c *Config) Path() string { return c.path }

// Load reads, resolves and validates the configuration file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes TOML data on top of the defaults, rejects unknown keys,
// resolves secrets and relative paths, and validates. name is used in errors
// and for resolving relative secret files.
func Parse(data []byte, name string) (*Config, error) {
	c := Default()
	c.path = name
	label := filepath.Base(name)
	if name == "" {
		label = "config"
	}
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(c)
	if err != nil {
		return nil, decodeError(label, err)
	}
	if err := removedKeys(label, data, md); err != nil {
		return nil, err
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, 0, len(und))
		for _, k := range und {
			if k.String() == "seg.preview" {
				continue // checked by removedKeys
			}
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		if len(keys) > 0 {
			return nil, fmt.Errorf("%s: %s: unknown key (check the spelling against systemd/tmcad.example.toml)", label, strings.Join(keys, ", "))
		}
	}
	if err := c.resolveSecrets(label); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// removedKeys fails for keys tmcad no longer has, set to what it no
// longer does, saying what to use instead. seg.preview = false, which asks
// for what tmcad does anyway, is accepted so that a configuration copied
// from an older example file still loads.
func removedKeys(label string, data []byte, md toml.MetaData) error {
	if !md.IsDefined("seg", "preview") {
		return nil
	}
	var old struct {
		SEG struct {
			Preview any `toml:"preview"`
		} `toml:"seg"`
	}
	if _, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&old); err != nil {
		return decodeError(label, err)
	}
	if v, ok := old.SEG.Preview.(bool); ok && !v {
		return nil
	}
	return fmt.Errorf("%s: seg.preview: removed: tmcad writes only DICOM objects into the archive; remove the key, and use seg.overlay = true for a picture of the outline in the study, or `tmcad preview SEG.dcm --source DIR -o OUT.png` for a PNG", label)
}

// decodeError turns a TOML decoding error into one that names the key.
func decodeError(label string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		if key := pe.LastKey; key != "" {
			return fmt.Errorf("%s: %s: %s (line %d)", label, key, pe.Message, pe.Position.Line)
		}
		return fmt.Errorf("%s: line %d: %s", label, pe.Position.Line, pe.Message)
	}
	return fmt.Errorf("%s: %w", label, err)
}
