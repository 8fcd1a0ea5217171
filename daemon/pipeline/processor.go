// Package pipeline turns DICOM series into SEGs: it loads a series (the
// selection rules applied), makes the model's guide text from its report,
// runs the model and encodes the SEG with the objects configured to go with
// it. Pipeline is the one path from files to a SEG: the daemon's worker
// runs it one series per job through the Processor interface, and RunBatch
// (`tmcad process`) several series per call so that their frames share the
// model's batches.
package pipeline

import (
	"context"
	"time"

	"tmcad/dicomio"
	"tmcad/reports"
)

// Processor turns one series into one encoded DICOM SEG. Pipeline is
// the production implementation; tests use fakes. Process must honour ctx:
// when it is cancelled (shutdown) the job is handed back and retried later.
type Processor interface {
	// Model describes the loaded model; it must not change while the
	// daemon runs.
	Model() ModelInfo
	// Process loads the series, runs the model and encodes the SEG. Its
	// error should be a *ProcessError (see Permanent and Transient);
	// unclassified errors are treated as transient.
	Process(ctx context.Context, job SeriesJob) (Result, error)
}

// ModelInfo is what the daemon needs to know about the loaded model.
type ModelInfo struct {
	// Name of the model (manifest "name").
	Name string
	// Version of the model (manifest "version"); jobs are unique per
	// (series UID, Version) and a series last processed by another version
	// is reprocessed by the nightly schedule.
	Version string
	// ExecutionProvider actually in use: "cpu" or "cuda" (after any
	// fallback). Exported as a labelled gauge.
	ExecutionProvider string
	// TextRequired is the manifest's text_required: when true a series is
	// never processed without a report, whatever reports.required says.
	TextRequired bool
	// Modalities the model accepts (manifest); select.modalities empty
	// means these.
	Modalities []string
}

// SeriesJob is one unit of work: one series, one model version.
type SeriesJob struct {
	// JobID is the queue's job ID (for log lines via logging.Series).
	JobID int64
	// Attempt is the 1-based attempt number of this run.
	Attempt int
	// StudyUID and SeriesUID identify the series.
	StudyUID  string
	SeriesUID string
	// Paths are the instance files of the series, absolute, one per SOP
	// Instance UID, in no particular order.
	Paths []string
	// Report is the matched report, already parsed; nil when the series
	// is processed without text (reports.required = false and the model
	// allows it). Its Text is PHI: never log it.
	Report *reports.Report
	// ModelVersion the job was queued for; equal to Processor.Model().Version.
	ModelVersion string
	// Select, when set, are the selection rules applied to the files as
	// they load (dicomio.Select's): instances it drops are left out, and a
	// series it skips whole ends with a *dicomio.SkippedError.
	Select *dicomio.Selector
}

// Result is what Process produced for one series.
type Result struct {
	// SEG is the encoded DICOM Segmentation (Part 10 file bytes). Nil when
	// nothing was segmented and seg.write_when_empty is false: the series
	// is then done without a SEG.
	SEG []byte
	// StudyUID of the SEG (the source study).
	StudyUID string
	// SeriesUID and SOPInstanceUID of the SEG itself.
	SeriesUID      string
	SOPInstanceUID string
	// Companions are the objects made with the SEG and stored with it
	// (seg.sr, seg.overlay); empty when there is no SEG.
	Companions []Companion
	// Summary of the run, for logs, metrics and `tmcad status`.
	Summary Summary
}

// Companion is an object made with a SEG, in the same job, and stored with
// it before the series is done: the measurement report or the overlay.
type Companion struct {
	// Kind is CompanionSR or CompanionOverlay.
	Kind string
	// StudyUID (the source study), SeriesUID and SOPInstanceUID of the
	// object.
	StudyUID       string
	SeriesUID      string
	SOPInstanceUID string
	// Data is the Part 10 file.
	Data []byte
}

// Kinds of Companion.
const (
	// CompanionSR is the measurement report (Comprehensive SR, TID 1500).
	CompanionSR = "SR"
	// CompanionOverlay is the Secondary Capture overlay.
	CompanionOverlay = "overlay"
)

// Summary describes one run of the model on a series. It carries no PHI.
type Summary struct {
	// Frames is the number of source frames segmented.
	Frames int
	// Segments is the number of segments described in the SEG.
	Segments int
	// NonEmptyFrames counts frames with at least one segmented pixel.
	NonEmptyFrames int
	// Inference is the time spent in the model (pre- and post-processing
	// excluded); observed in the inference seconds histogram.
	Inference time.Duration
	// ExecutionProvider that ran the model ("cpu" or "cuda").
	ExecutionProvider string
	// ReportHash is reports.Report.Hash() of the guiding report, "" when none.
	ReportHash string
	// Guide says how the report became the model's guide text
	// (guide.Result.Summary: the rule and counts, never the text); "" when
	// the series had no report.
	Guide string
	// NoTarget is true when the report describes no target finding and
	// reports.no_target = "record": the model did not run.
	NoTarget bool
	// Warnings found on the way (uneven slice spacing, ...); never PHI.
	Warnings []string
}
