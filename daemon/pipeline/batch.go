package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rs/zerolog"

	"tmcad/dicomio"
	"tmcad/logging"
	"tmcad/reports"
	"tmcad/writer"
	"tmcad/writer/archive"
)

// BatchOptions describe one one-shot batch (`tmcad process`).
type BatchOptions struct {
	// Input is the folder tree of DICOM files (DICOM SR reports included).
	Input string
	// Reports is the folder of report files; may be empty.
	Reports string
	// Sink receives the SEGs.
	Sink archive.Sink
	// ArchiveDir, when the sink is a filesystem archive, is used to report
	// each SEG's path.
	Archive *archive.FilesystemSink
	// MasksDir, when set, receives every frame's mask as PNG
	// (<SOPInstanceUID>.png, or <SOPInstanceUID>_<frame>.png for
	// multi-frame sources) and summary.json.
	MasksDir string
	// Progress, when set, is called after each series with (done, total).
	Progress func(done, total int)
}

// BatchRow is one line of the batch summary. It carries no PHI.
type BatchRow struct {
	SeriesUID string `json:"series_uid"`
	StudyUID  string `json:"study_uid"`
	Modality  string `json:"modality"`
	// Report says how the report was matched, or why not.
	Report string `json:"report"`
	// Guide says how the report became the model's guide text: the rule
	// and counts of `tmcad explain-report`, never the text.
	Guide string `json:"guide,omitempty"`
	// NoTarget is true when the report describes no target finding and
	// the model did not run (reports.no_target = "record").
	NoTarget bool `json:"no_target,omitempty"`
	Frames   int  `json:"frames"`
	// SegmentedPixels over all frames; AreaMM2 (projection images) or
	// VolumeML (cross-sectional series) where the geometry allows.
	SegmentedPixels int64   `json:"segmented_pixels"`
	AreaMM2         float64 `json:"area_mm2,omitempty"`
	VolumeML        float64 `json:"volume_ml,omitempty"`
	// Output is the SEG's path or archive name; empty when none.
	Output string `json:"output,omitempty"`
	// Objects lists every object stored for the series: the SEG, then the
	// measurement report and the overlay when configured (seg.sr,
	// seg.overlay).
	Objects []BatchObject `json:"objects,omitempty"`
	// Masks lists the PNG mask files written (with MasksDir).
	Masks []BatchMask `json:"masks,omitempty"`
	// Skipped is true for a series the selection rules left out (not a
	// failure); Error is the reason a selected series failed.
	Skipped bool   `json:"skipped,omitempty"`
	Error   string `json:"error,omitempty"`
}

// BatchObject is one object stored for a series.
type BatchObject struct {
	// Kind is "SEG", CompanionSR or CompanionOverlay.
	Kind           string `json:"kind"`
	SOPInstanceUID string `json:"sop_instance_uid"`
	// Output is the object's path, or the archive's name.
	Output string `json:"output"`
}

// BatchMask names one frame's PNG mask.
type BatchMask struct {
	SOPInstanceUID string `json:"sop_instance_uid"`
	FrameNumber    int    `json:"frame_number"`
	File           string `json:"file"`
}

// Failed reports whether a selected series did not produce its output.
func (r BatchRow) Failed() bool { return !r.Skipped && r.Error != "" }

// RunBatch finds the series under opts.Input and their reports, runs them
// through the pipeline in shared batches, stores the SEGs in opts.Sink and
// returns one row per series found (selected or skipped), in a stable order.
func RunBatch(ctx context.Context, p *Pipeline, sel dicomio.Selector, opts BatchOptions, log zerolog.Logger) ([]BatchRow, error) {
	headers, cat, err := findInputs(opts, p.opts.Reports, log)
	if err != nil {
		return nil, err
	}
	if len(sel.Modalities) == 0 {
		sel.Modalities = p.manifest.Modalities
	}
	rows, jobs := p.planBatch(headers, cat, sel, log)
	if err := p.runBatchJobs(ctx, rows, jobs, opts, log); err != nil {
		return rows, err
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].StudyUID != rows[j].StudyUID {
			return rows[i].StudyUID < rows[j].StudyUID
		}
		return rows[i].SeriesUID < rows[j].SeriesUID
	})
	if opts.MasksDir != "" {
		if err := writeSummary(filepath.Join(opts.MasksDir, "summary.json"), rows); err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// findInputs reads the headers of the DICOM files under opts.Input and
// catalogues the reports: the DICOM SRs among those files and every file
// of opts.Reports. Unreadable files are skipped with a warning.
func findInputs(opts BatchOptions, ro reports.Options, log zerolog.Logger) ([]dicomio.Header, *reports.Catalog, error) {
	rd, err := reports.NewReader(ro)
	if err != nil {
		return nil, nil, err
	}
	cat := reports.NewCatalog(reports.MatchOptions{})
	var headers []dicomio.Header
	err = walkFiles(opts.Input, func(path string) {
		h, err := dicomio.ReadHeader(path)
		if err != nil {
			log.Warn().Str("file", path).Err(err).Msg("not a readable DICOM file; skipped")
			return
		}
		if !reports.IsSR(h.SOPClassUID, h.Modality) {
			headers = append(headers, h)
			return
		}
		if reps, err := rd.ReadFile(path); err != nil {
			log.Warn().Str("file", path).Err(err).Msg("DICOM SR report unreadable; skipped")
		} else {
			cat.Put(path, reps)
		}
	})
	if err != nil || opts.Reports == "" {
		return headers, cat, err
	}
	err = walkFiles(opts.Reports, func(path string) {
		if reps, err := rd.ReadFile(path); err != nil {
			log.Warn().Str("file", path).Err(err).Msg("report unreadable; skipped")
		} else {
			cat.Put(path, reps)
		}
	})
	return headers, cat, err
}

// walkFiles calls each for every regular file under root whose name does
// not start with a dot.
func walkFiles(root string, each func(path string)) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("scanning %s: %w", path, err)
		}
		if !d.IsDir() && !strings.HasPrefix(d.Name(), ".") && d.Type().IsRegular() {
			each(path)
		}
		return nil
	})
}

// batchJob is one selected series of a batch and its row.
type batchJob struct {
	row int
	job SeriesJob
}

// planBatch applies the selection rules to the headers and matches each
// selected series' report: one row per series (skipped ones included) and
// one job per series to run.
func (p *Pipeline) planBatch(headers []dicomio.Header, cat *reports.Catalog, sel dicomio.Selector, log zerolog.Logger) ([]BatchRow, []batchJob) {
	kept, skipped := dicomio.Select(headers, sel)
	var rows []BatchRow
	for _, s := range skipped {
		slog := logging.Series{SeriesUID: s.SeriesInstanceUID}.Logger(log)
		if s.SOPInstanceUID != "" {
			slog.Debug().Str("sop_uid", s.SOPInstanceUID).Str("reason", s.Reason).Msg("instance left out of its series")
			continue
		}
		slog.Debug().Str("reason", s.Reason).Msg("series skipped")
		rows = append(rows, BatchRow{SeriesUID: s.SeriesInstanceUID, Skipped: true, Error: s.Reason})
	}
	var jobs []batchJob
	for _, g := range kept {
		h := g.Headers[0]
		row := BatchRow{SeriesUID: g.SeriesInstanceUID, StudyUID: g.StudyInstanceUID, Modality: g.Modality, Frames: g.Frames()}
		m := cat.Match(reports.Study{StudyInstanceUID: h.StudyInstanceUID, AccessionNumber: h.AccessionNumber, PatientID: h.PatientID, StudyDate: h.StudyDate})
		job := SeriesJob{StudyUID: g.StudyInstanceUID, SeriesUID: g.SeriesInstanceUID, Paths: g.Paths(), ModelVersion: p.manifest.Version, Select: &sel}
		if m.Matched() {
			job.Report = m.Report
			row.Report = "matched by " + string(m.By)
			if m.Conflict != "" {
				slog := logging.Series{StudyUID: g.StudyInstanceUID, SeriesUID: g.SeriesInstanceUID}.Logger(log)
				slog.Warn().Str("conflict", m.Conflict).Msg("two different reports of equal status for the study; the choice follows the content hash")
			}
		} else {
			row.Report = "none: " + m.Reason
			if p.opts.ReportRequired || p.manifest.TextRequired {
				row.Error = "no report: " + m.Reason
			}
		}
		rows = append(rows, row)
		if row.Error == "" {
			jobs = append(jobs, batchJob{len(rows) - 1, job})
		}
	}
	return rows, jobs
}

// runBatchJobs runs the jobs through the model in chunks of whole series
// of about four batches' worth of frames (they share the model's batches
// while memory stays bounded), and fills in each job's row.
func (p *Pipeline) runBatchJobs(ctx context.Context, rows []BatchRow, jobs []batchJob, opts BatchOptions, log zerolog.Logger) error {
	chunkFrames := 4 * p.engine.BatchSize()
	done := 0
	for start := 0; start < len(jobs); {
		if err := ctx.Err(); err != nil {
			return err
		}
		end, frames := start, 0
		for end < len(jobs) && (end == start || frames+rows[jobs[end].row].Frames <= chunkFrames) {
			frames += rows[jobs[end].row].Frames
			end++
		}
		chunk := jobs[start:end]
		sj := make([]SeriesJob, len(chunk))
		for i, c := range chunk {
			sj[i] = c.job
		}
		for i, out := range p.ProcessMany(ctx, sj) {
			c := chunk[i]
			finishBatchRow(ctx, &rows[c.row], out, opts, logging.Series{StudyUID: c.job.StudyUID, SeriesUID: c.job.SeriesUID}.Logger(log))
		}
		for range chunk {
			done++
			if opts.Progress != nil {
				opts.Progress(done, len(jobs))
			}
		}
		start = end
	}
	return nil
}

// finishBatchRow records one series' outcome in its row: the objects
// stored, the PNG masks written, or why it failed; log names the series.
func finishBatchRow(ctx context.Context, row *BatchRow, out Outcome, opts BatchOptions, log zerolog.Logger) {
	var notSelected *dicomio.SkippedError
	if errors.As(out.Err, &notSelected) {
		row.Skipped, row.Error = true, notSelected.Reason
		return
	}
	if out.Err != nil {
		row.Error = out.Err.Error()
		log.Error().Err(out.Err).Str("reason", ErrorReason(out.Err)).Msg("series failed")
		return
	}
	finishRow(row, out)
	row.Guide, row.NoTarget = out.Summary.Guide, out.Summary.NoTarget
	switch {
	case out.SEG != nil:
		if !storeBatchObjects(ctx, row, out, opts, log) {
			return
		}
		row.Output = row.Objects[0].Output
	case out.Summary.NoTarget:
		row.Output = "(no target described; model not run: reports.no_target = record)"
	default:
		row.Output = "(nothing segmented; no SEG written: seg.write_when_empty = false)"
	}
	if opts.MasksDir != "" && out.Masks != nil {
		ms, err := writeMaskPNGs(opts.MasksDir, out.Series, out.Masks)
		if err != nil {
			row.Error = err.Error()
			return
		}
		row.Masks = ms
	}
	if out.Summary.NoTarget {
		log.Info().Str("guide", row.Guide).Bool("empty_seg", out.SEG != nil).Msg("the report describes no target; the model did not run")
		return
	}
	log.Info().Int("frames", row.Frames).Int64("segmented_pixels", row.SegmentedPixels).Dur("inference", out.Summary.Inference).Str("guide", row.Guide).Msg("series segmented")
}

// storeBatchObjects stores the SEG and its companions in opts.Sink and
// lists them in the row; false (with row.Error set) when one failed.
func storeBatchObjects(ctx context.Context, row *BatchRow, out Outcome, opts BatchOptions, log zerolog.Logger) bool {
	objs := append([]Companion{{Kind: "SEG", StudyUID: out.StudyUID, SeriesUID: out.SeriesUID, SOPInstanceUID: out.SOPInstanceUID, Data: out.SEG}}, out.Companions...)
	for _, o := range objs {
		if err := opts.Sink.Put(ctx, o.StudyUID, o.SeriesUID, o.SOPInstanceUID, o.Data); err != nil {
			row.Error = fmt.Sprintf("storing %s: %v", o.Kind, err)
			log.Error().Err(err).Str("kind", o.Kind).Msg("storing an object failed")
			return false
		}
		where := opts.Sink.Name()
		if opts.Archive != nil {
			if p, err := opts.Archive.Path(o.StudyUID, o.SeriesUID, o.SOPInstanceUID); err == nil {
				where = p
			}
		}
		row.Objects = append(row.Objects, BatchObject{Kind: o.Kind, SOPInstanceUID: o.SOPInstanceUID, Output: where})
	}
	return true
}

// finishRow fills in the segmented amount of a row from the outcome.
func finishRow(row *BatchRow, out Outcome) {
	s := out.Series
	row.SegmentedPixels = out.SegmentedPixels
	row.Frames = len(s.Frames)
	switch q, v, ok := Measure(s, out.SegmentedPixels); {
	case ok && q == writer.Volume:
		row.VolumeML = v
	case ok:
		row.AreaMM2 = v
	}
}

// writeMaskPNGs writes one 8-bit PNG (0/255) per frame.
func writeMaskPNGs(dir string, s *dicomio.Series, masks [][]uint8) ([]BatchMask, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("masks: %w", err)
	}
	perSOP := map[string]int{}
	for _, f := range s.Frames {
		perSOP[f.SOPInstanceUID]++
	}
	var out []BatchMask
	for i, f := range s.Frames {
		name := dicomio.SafePathComponent(f.SOPInstanceUID)
		if perSOP[f.SOPInstanceUID] > 1 {
			name = fmt.Sprintf("%s_%d", name, f.FrameNumber)
		}
		name += ".png"
		img := image.NewGray(image.Rect(0, 0, s.Columns, s.Rows))
		for k, v := range masks[i] {
			img.Pix[k] = v * 255
		}
		if err := writePNG(filepath.Join(dir, name), img); err != nil {
			return nil, err
		}
		out = append(out, BatchMask{SOPInstanceUID: f.SOPInstanceUID, FrameNumber: f.FrameNumber, File: name})
	}
	return out, nil
}

func writePNG(path string, img image.Image) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("masks: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("masks: %w", cerr)
		}
	}()
	if err := png.Encode(f, img); err != nil {
		return fmt.Errorf("masks: %s: %w", path, err)
	}
	return nil
}

func writeSummary(path string, rows []BatchRow) error {
	b, err := json.MarshalIndent(struct {
		Series []BatchRow `json:"series"`
	}{rows}, "", "  ")
	if err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	// The folder exists already when any mask was written, but not when no
	// series got one (every report without a target, or every series failed).
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	return nil
}

// ErrBatchFailed is returned by callers when any selected series failed.
var ErrBatchFailed = errors.New("one or more series failed")
