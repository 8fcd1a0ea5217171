package daemon

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

	"tmcad/config"
	"tmcad/dicomio"
	"tmcad/logging"
	"tmcad/reports"
	"tmcad/writer"
)

// BatchOptions describe one one-shot batch (`tmcad process`).
type BatchOptions struct {
	// Input is the folder tree of DICOM files (DICOM SR reports included).
	Input string
	// Reports is the folder of report files; may be empty.
	Reports string
	// Sink receives the SEGs.
	Sink writer.Sink
	// ArchiveDir, when the sink is a filesystem archive, is used to report
	// each SEG's path.
	Archive *writer.FilesystemSink
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
	rd, err := reports.NewReader(ReportOptions(p.cfg))
	if err != nil {
		return nil, err
	}
	cat := reports.NewCatalog(reports.MatchOptions{})
	var headers []dicomio.Header
	err = filepath.WalkDir(opts.Input, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("scanning %s: %w", path, err)
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".") || !d.Type().IsRegular() {
			return nil
		}
		h, err := dicomio.ReadHeader(path)
		if err != nil {
			log.Warn().Str("file", path).Err(err).Msg("not a readable DICOM file; skipped")
			return nil
		}
		if reports.IsSRSOPClass(h.SOPClassUID) {
			reps, err := rd.ReadFile(path)
			if err != nil {
				log.Warn().Str("file", path).Err(err).Msg("DICOM SR report unreadable; skipped")
				return nil
			}
			cat.Put(path, reps)
			return nil
		}
		headers = append(headers, h)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if opts.Reports != "" {
		err = filepath.WalkDir(opts.Reports, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("scanning %s: %w", path, err)
			}
			if d.IsDir() || strings.HasPrefix(d.Name(), ".") {
				return nil
			}
			reps, err := rd.ReadFile(path)
			if err != nil {
				log.Warn().Str("file", path).Err(err).Msg("report unreadable; skipped")
				return nil
			}
			cat.Put(path, reps)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}

	if len(sel.Modalities) == 0 {
		sel.Modalities = p.manifest.Modalities
	}
	kept, skipped := dicomio.Select(headers, sel)
	var rows []BatchRow
	for _, s := range skipped {
		if s.SOPInstanceUID != "" {
			log.Debug().Str("series_uid", s.SeriesInstanceUID).Str("sop_uid", s.SOPInstanceUID).Str("reason", s.Reason).Msg("instance left out of its series")
			continue
		}
		log.Debug().Str("series_uid", s.SeriesInstanceUID).Str("reason", s.Reason).Msg("series skipped")
		rows = append(rows, BatchRow{SeriesUID: s.SeriesInstanceUID, Skipped: true, Error: s.Reason})
	}

	type pending struct {
		row int
		job SeriesJob
	}
	var jobs []pending
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
			if p.cfg.Reports.Required || p.manifest.TextRequired {
				row.Error = "no report: " + m.Reason
			}
		}
		rows = append(rows, row)
		if row.Error == "" {
			jobs = append(jobs, pending{len(rows) - 1, job})
		}
	}

	// Chunks of whole series of about four batches' worth of frames share
	// the model's batches while bounding memory.
	chunkFrames := 4 * p.engine.BatchSize()
	done, total := 0, len(jobs)
	for start := 0; start < len(jobs); {
		if err := ctx.Err(); err != nil {
			return rows, err
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
		outs := p.ProcessMany(ctx, sj)
		for i, c := range chunk {
			row := &rows[c.row]
			out := outs[i]
			slog := logging.Series{StudyUID: c.job.StudyUID, SeriesUID: c.job.SeriesUID}.Logger(log)
			var notSelected *dicomio.SkippedError
			if errors.As(out.Err, &notSelected) {
				row.Skipped, row.Error = true, notSelected.Reason
				continue
			}
			if out.Err != nil {
				row.Error = out.Err.Error()
				slog.Error().Err(out.Err).Str("reason", ErrorReason(out.Err)).Msg("series failed")
				continue
			}
			finishRow(row, out)
			row.Guide, row.NoTarget = out.Summary.Guide, out.Summary.NoTarget
			if out.SEG != nil {
				objs := append([]Companion{{Kind: "SEG", StudyUID: out.StudyUID, SeriesUID: out.SeriesUID, SOPInstanceUID: out.SOPInstanceUID, Data: out.SEG}}, out.Companions...)
				for _, o := range objs {
					if err := opts.Sink.Put(ctx, o.StudyUID, o.SeriesUID, o.SOPInstanceUID, o.Data); err != nil {
						row.Error = fmt.Sprintf("storing %s: %v", o.Kind, err)
						slog.Error().Err(err).Str("kind", o.Kind).Msg("storing an object failed")
						break
					}
					where := opts.Sink.Name()
					if opts.Archive != nil {
						if p, err := opts.Archive.Path(o.StudyUID, o.SeriesUID, o.SOPInstanceUID); err == nil {
							where = p
						}
					}
					row.Objects = append(row.Objects, BatchObject{Kind: o.Kind, SOPInstanceUID: o.SOPInstanceUID, Output: where})
				}
				if row.Error != "" {
					continue
				}
				row.Output = row.Objects[0].Output
			} else if out.Summary.NoTarget {
				row.Output = "(no target described; model not run: reports.no_target = record)"
			} else {
				row.Output = "(nothing segmented; no SEG written: seg.write_when_empty = false)"
			}
			if opts.MasksDir != "" && out.Masks != nil {
				ms, err := writeMaskPNGs(opts.MasksDir, out.Series, out.Masks)
				if err != nil {
					row.Error = err.Error()
					continue
				}
				row.Masks = ms
			}
			if out.Summary.NoTarget {
				slog.Info().Str("guide", row.Guide).Bool("empty_seg", out.SEG != nil).Msg("the report describes no target; the model did not run")
				continue
			}
			slog.Info().Int("frames", row.Frames).Int64("segmented_pixels", row.SegmentedPixels).Dur("inference", out.Summary.Inference).Str("guide", row.Guide).Msg("series segmented")
		}
		for range chunk {
			done++
			if opts.Progress != nil {
				opts.Progress(done, total)
			}
		}
		start = end
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

// ReportOptions maps the configuration onto the report reader's options.
func ReportOptions(cfg *config.Config) reports.Options {
	return reports.Options{Charset: reports.Charset(charsetOption(cfg.Reports.Charset))}
}

func charsetOption(c string) string {
	if c == "latin1" {
		return string(reports.CharsetLatin1)
	}
	return string(reports.CharsetAuto)
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
