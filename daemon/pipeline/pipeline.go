package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"tmcad/dicomio"
	"tmcad/logging"
	"tmcad/reports"
	"tmcad/reports/guide"
	"tmcad/segment"
	"tmcad/writer"
)

// Options are what a Pipeline needs: the model and how it runs, the
// limits on a series, the SEG and the objects made with it, and how a
// report becomes the model's guide text. The package reads no
// configuration file: `tmcad` maps its configuration onto these
// (cmd/tmcad/wire.go), and tests and benchmarks fill them in directly.
type Options struct {
	// ModelDir is the model folder: manifest.json, the ONNX file and the
	// tokenizer's vocabulary.
	ModelDir string
	// ORTLibrary is the ONNX Runtime shared library; "" lets
	// segment.ResolveLibrary search for it.
	ORTLibrary string
	// Engine configures inference (provider, threads, batch size, ...).
	// Its OnRun, when set, observes every session run (for the inference
	// histogram); its Logger is replaced by New's.
	Engine segment.Options
	// Limits bound the size of a series loaded; a zero field takes
	// dicomio.DefaultLimits' value.
	Limits dicomio.Limits
	// SEG is the configured part of every SEG's description: type, series
	// number and description, content label and creator, manufacturer,
	// UID root, empty frames kept or not, an empty SEG written or not.
	// New adds what the model decides (its name and version, the
	// segments, the manufacturer model name and software versions). An
	// empty Type is BINARY.
	SEG writer.Description
	// SR writes a measurement report (Comprehensive SR, TID 1500) with
	// each SEG.
	SR bool
	// Overlay writes an outline overlay (Secondary Capture) with each SEG.
	Overlay bool
	// Reports are the report readers' options: RunBatch reads report files
	// with them.
	Reports reports.Options
	// Sections are the report sections the guide text is read from.
	Sections []string
	// RunWithoutTarget runs the model on the report's sections when the
	// report describes no target finding; when false such a series is
	// recorded without a model run (an empty SEG when the description
	// does not skip empty ones).
	RunWithoutTarget bool
	// ReportRequired fails a series of a batch (RunBatch) for which no
	// report was matched; the daemon decides this before it queues a
	// series.
	ReportRequired bool
}

// Pipeline is the production Processor: one series (or several, batched
// through the model together) → dicomio.LoadSeries → the report's guiding
// text tokenized → segment.Engine.Predict → writer.EncodeSEG.
type Pipeline struct {
	opts     Options
	manifest *segment.Manifest
	engine   *segment.Engine
	tok      *reports.Tokenizer
	desc     writer.Description
	log      zerolog.Logger
}

// New loads ONNX Runtime, the model of opts.ModelDir and its tokenizer,
// and prepares the SEG description.
func New(opts Options, log zerolog.Logger) (*Pipeline, error) {
	m, err := segment.LoadManifest(opts.ModelDir)
	if err != nil {
		return nil, err
	}
	lib, err := segment.ResolveLibrary(opts.ORTLibrary)
	if err != nil {
		return nil, err
	}
	if _, err := segment.InitRuntime(lib); err != nil {
		return nil, err
	}
	eo := opts.Engine
	eo.Logger = log
	eng, err := segment.NewEngine(m, eo)
	if err != nil {
		return nil, err
	}
	vocab, err := reports.LoadVocab(m.Path(m.Tokenizer.Vocab))
	if err != nil {
		eng.Close()
		return nil, fmt.Errorf("model %s: %w", m.ID(), err)
	}
	tok, err := reports.NewTokenizer(vocab, m.Tokenizer.LowerCase, m.Tokenizer.StripAccents, m.Tokenizer.MaxLength)
	if err != nil {
		eng.Close()
		return nil, fmt.Errorf("model %s: %w", m.ID(), err)
	}
	if err := CheckGuideForms(m); err != nil {
		eng.Close()
		return nil, err
	}
	p := &Pipeline{opts: opts, manifest: m, engine: eng, tok: tok, log: log, desc: segDescription(opts.SEG, m)}
	if err := p.desc.Validate(); err != nil {
		eng.Close()
		return nil, fmt.Errorf("seg description: %w", err)
	}
	return p, nil
}

// segDescription completes the configured SEG description with what the
// manifest decides: the model and its segments.
func segDescription(d writer.Description, m *segment.Manifest) writer.Description {
	d.ManufacturerModelName = "tmcad " + m.Name
	d.SoftwareVersions = m.Name + " " + m.Version
	d.ModelName = m.Name
	d.ModelVersion = m.Version
	if d.Type == "" {
		d.Type = writer.Binary
	}
	d.Segments = nil
	for _, s := range m.Segments {
		d.Segments = append(d.Segments, writer.Segment{
			Number:   s.Number,
			Label:    s.Label,
			Category: writer.Code{Value: s.Category.Code, Scheme: s.Category.Scheme, Meaning: s.Category.Meaning},
			Type:     writer.Code{Value: s.Type.Code, Scheme: s.Type.Scheme, Meaning: s.Type.Meaning},
			Site:     siteCode(s.Site),
			Color:    (*writer.RGB)(s.RGB()),
		})
	}
	return d
}

// siteCode maps a manifest segment's optional finding site.
func siteCode(c *segment.Code) *writer.Code {
	if c == nil {
		return nil
	}
	return &writer.Code{Value: c.Code, Scheme: c.Scheme, Meaning: c.Meaning}
}

// Manifest returns the loaded model's manifest.
func (p *Pipeline) Manifest() *segment.Manifest { return p.manifest }

// Engine returns the inference engine.
func (p *Pipeline) Engine() *segment.Engine { return p.engine }

// Model implements Processor.
func (p *Pipeline) Model() ModelInfo {
	return ModelInfo{
		Name: p.manifest.Name, Version: p.manifest.Version,
		ExecutionProvider: p.engine.Provider(),
		TextRequired:      p.manifest.TextRequired,
		Modalities:        append([]string(nil), p.manifest.Modalities...),
	}
}

// Close releases the engine.
func (p *Pipeline) Close() error { return p.engine.Close() }

// Process implements Processor for one series.
func (p *Pipeline) Process(ctx context.Context, job SeriesJob) (Result, error) {
	outs := p.ProcessMany(ctx, []SeriesJob{job})
	return outs[0].Result, outs[0].Err
}

// Outcome is the result of one series in ProcessMany: the Result, or Err;
// Series (frames and geometry) and Masks are kept for callers that write
// previews or PNG masks. When Err is set, Series (if any) has its geometry
// and frame list, but its frames' Pixels may not have been read.
type Outcome struct {
	Result
	Err    error
	Series *dicomio.Series
	// Masks holds one rows × cols 0/1 mask per frame of Series.
	Masks [][]uint8
	// SegmentedPixels counts mask pixels over all frames.
	SegmentedPixels int64
}

// ProcessMany processes several series, sending their frames through the
// model in shared batches. Every job gets an Outcome, in order; one job's
// failure does not fail the others.
//
// The model starts on a series as soon as its headers are read and its
// first frames decoded (the rest are decoded in the background), and BINARY
// masks are packed for the SEG as each batch comes out of the model, so
// that little of the work waits before the first session run or after the
// last.
func (p *Pipeline) ProcessMany(ctx context.Context, jobs []SeriesJob) []Outcome {
	outs := make([]Outcome, len(jobs))
	var reqs []segment.Request
	var idx []int
	var loads []*dicomio.Loading
	packed := make([]*packedMasks, len(jobs))
	guides := make([]guide.Result, len(jobs))
	for i, job := range jobs {
		l, req, g, noTarget, err := p.prepare(job)
		if l != nil {
			outs[i].Series = l.Series()
		}
		if err != nil {
			if l != nil {
				l.Cancel()
			}
			outs[i].Err = err
			continue
		}
		if noTarget {
			outs[i] = p.noTarget(job, l, g)
			continue
		}
		guides[i] = g
		if p.desc.Type == writer.Binary {
			pm := newPackedMasks(l.Series())
			packed[i] = pm
			req.OnMask = pm.add
		}
		reqs = append(reqs, req)
		idx = append(idx, i)
		loads = append(loads, l)
	}
	if len(reqs) == 0 {
		return outs
	}
	t0, _, frames0 := p.engine.Stats()
	preds, err := p.engine.Predict(ctx, reqs...)
	t1, _, frames1 := p.engine.Stats()
	if err != nil {
		// A failed run may be an accelerator hiccup or a cancelled context:
		// both are worth a retry.
		for k, i := range idx {
			loads[k].Cancel()
			outs[i].Err = Transient("model", err)
		}
		return outs
	}
	// Inference time is shared among the series by their frame counts.
	totalFrames := frames1 - frames0
	for k, i := range idx {
		if err := loads[k].Wait(); err != nil {
			outs[i].Err = classifyLoad(err)
			continue
		}
		pred := preds[k]
		job, s := jobs[i], outs[i].Series
		var share time.Duration
		if totalFrames > 0 {
			share = time.Duration(int64(t1-t0) * int64(len(s.Frames)) / totalFrames)
		}
		outs[i].Masks = pred.Masks
		outs[i].SegmentedPixels = pred.SegmentedPixels
		outs[i].Result, outs[i].Err = p.encode(job, s, pred, packed[i], share)
		outs[i].Summary.Guide = guides[i].Summary()
		if job.Report == nil {
			outs[i].Summary.Guide = ""
		}
	}
	return outs
}

// packedMasks collects a series' masks bit-packed for a BINARY SEG, frame
// by frame as the engine hands them over.
type packedMasks struct {
	bits     [][]byte
	nonEmpty atomic.Int64
}

func newPackedMasks(s *dicomio.Series) *packedMasks {
	n := writer.PackedLen(s.Rows * s.Columns)
	pm := &packedMasks{bits: make([][]byte, len(s.Frames))}
	for f := range pm.bits {
		pm.bits[f] = make([]byte, n)
	}
	return pm
}

// add packs one frame's mask (segment.Request.OnMask).
func (pm *packedMasks) add(frame int, mask []uint8) {
	if writer.PackFrame(pm.bits[frame], mask) > 0 {
		pm.nonEmpty.Add(1)
	}
}

// prepare starts loading the series and turns its report into the
// model's guide text, tokenized. The Loading is returned whenever the first
// pass succeeded, with or without an error. When the report describes no
// target and reports.no_target = "record", the request is not for the
// model: noTarget is true.
func (p *Pipeline) prepare(job SeriesJob) (l *dicomio.Loading, req segment.Request, g guide.Result, noTarget bool, err error) {
	var skipped []dicomio.Skipped
	if job.Select != nil {
		l, skipped, err = dicomio.StartLoadSelected(job.Paths, p.opts.Limits, *job.Select)
	} else {
		l, err = dicomio.StartLoadSeries(job.Paths, p.opts.Limits)
	}
	var notSelected *dicomio.SkippedError
	if errors.As(err, &notSelected) {
		return nil, req, g, false, notSelected
	}
	if err != nil {
		return nil, req, g, false, classifyLoad(err)
	}
	for _, sk := range skipped {
		slog := logging.Series{SeriesUID: sk.SeriesInstanceUID}.Logger(p.log)
		slog.Debug().Str("sop_uid", sk.SOPInstanceUID).Str("reason", sk.Reason).Msg("instance left out of its series")
	}
	s := l.Series()
	if !p.manifest.Supports(s.Modality) {
		return l, req, g, false, Permanent("modality", fmt.Errorf("series %s: modality %q is not one the model %s was trained for (%s)", s.SeriesInstanceUID, s.Modality, p.manifest.ID(), strings.Join(p.manifest.Modalities, ", ")))
	}
	text := ""
	if job.Report != nil {
		g = guide.Build(job.Report.Text, GuideOptions(p.opts.Sections, p.manifest, p.tok, s.Modality))
		text = g.Text
		if !g.Described() {
			if !p.opts.RunWithoutTarget {
				return l, req, g, true, nil
			}
			text = reports.ExtractSections(job.Report.Text, p.opts.Sections)
		}
	} else if p.manifest.TextRequired {
		return l, req, g, false, Permanent("no_report", fmt.Errorf("series %s: model %s needs a report and none was matched", s.SeriesInstanceUID, p.manifest.ID()))
	}
	ids, mask := p.tok.Encode(text)
	return l, segment.Request{Series: s, InputIDs: ids, AttentionMask: mask, WantProbabilities: p.desc.Type == writer.Fractional, Ready: l.WaitFrames}, g, false, nil
}

// GuideOptions maps the report sections read and the model's manifest
// onto the guide-text step for a series of modality; tok, when set, gives
// the model's token budget.
func GuideOptions(sections []string, m *segment.Manifest, tok *reports.Tokenizer, modality string) guide.Options {
	o := guide.Options{Sections: sections, Form: guide.Form(m.GuideForm(modality))}
	if m.Guide != nil {
		o.MaxZones = m.Guide.MaxZones
	}
	if tok != nil {
		o.Fits = func(text string) bool { return len(tok.Tokenize(text))+2 <= tok.MaxLen() }
	}
	return o
}

// CheckGuideForms checks that every guide-text form the manifest names is
// one the normaliser renders.
func CheckGuideForms(m *segment.Manifest) error {
	if m.Guide == nil {
		return nil
	}
	for mod, f := range m.Guide.Forms {
		if !guide.ValidForm(guide.Form(f)) {
			return fmt.Errorf("model %s: manifest guide.forms.%s: unknown form %q (want %s, %s or %s)", m.ID(), mod, f, guide.FormQaTa, guide.FormMosMed, guide.FormSections)
		}
	}
	return nil
}

// noTarget is the outcome of a series whose report describes no target:
// no model run, and an empty SEG when seg.write_when_empty.
func (p *Pipeline) noTarget(job SeriesJob, l *dicomio.Loading, g guide.Result) Outcome {
	l.Cancel()
	s := l.Series()
	out := Outcome{Series: s}
	pred := &segment.Prediction{}
	if p.desc.Type == writer.Fractional {
		pred.Probabilities = make([][]uint8, len(s.Frames))
		for i := range pred.Probabilities {
			pred.Probabilities[i] = make([]uint8, s.Rows*s.Columns)
		}
	}
	res, err := p.encode(job, s, pred, newPackedMasks(s), 0)
	if err != nil {
		out.Err = err
		return out
	}
	res.Summary.Guide, res.Summary.NoTarget = g.Summary(), true
	res.Summary.ExecutionProvider = ""
	out.Result = res
	return out
}

// classifyLoad sorts a LoadSeries error into permanent (the file is what it
// is) or transient (the file system may recover).
func classifyLoad(err error) error {
	var lim *dicomio.LimitError
	var ts *dicomio.UnsupportedTransferSyntaxError
	switch {
	case errors.As(err, &lim):
		return Permanent("limits", err)
	case errors.As(err, &ts):
		return Permanent("unsupported_transfer_syntax", err)
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		return Transient("io", err)
	}
	return Permanent("decode", err)
}

// encode builds the SEG for one predicted series.
func (p *Pipeline) encode(job SeriesJob, s *dicomio.Series, pred *segment.Prediction, packed *packedMasks, inference time.Duration) (Result, error) {
	desc := p.desc
	if job.Report != nil {
		desc.ReportHash = job.Report.Hash()
	}
	// BINARY SEGs take the bit-packed frames packed while the model ran
	// (the writer streams them as they are), which also counted the frames
	// with any segmented pixel.
	var masks writer.MaskSet
	nonEmpty := 0
	if desc.Type == writer.Fractional {
		masks = writer.Masks{pred.Probabilities}
		for _, m := range pred.Masks {
			if slices.ContainsFunc(m, func(v uint8) bool { return v != 0 }) {
				nonEmpty++
			}
		}
	} else {
		masks = writer.BitMasks{packed.bits}
		nonEmpty = int(packed.nonEmpty.Load())
	}
	sum := Summary{
		Frames: len(s.Frames), Segments: len(desc.Segments), NonEmptyFrames: nonEmpty,
		Inference: inference, ExecutionProvider: p.engine.Provider(),
		ReportHash: desc.ReportHash, Warnings: s.Warnings,
	}
	seg, err := writer.EncodeSEG(s, masks, desc)
	if errors.Is(err, writer.ErrEmpty) {
		return Result{StudyUID: s.StudyInstanceUID, Summary: sum}, nil
	}
	if err != nil {
		return Result{}, Permanent("encode", fmt.Errorf("series %s: %w", s.SeriesInstanceUID, err))
	}
	comps, err := p.companions(s, seg, pred, desc, &sum)
	if err != nil {
		return Result{}, Permanent("encode", fmt.Errorf("series %s: %w", s.SeriesInstanceUID, err))
	}
	return Result{
		SEG: seg.Data, StudyUID: seg.StudyInstanceUID,
		SeriesUID: seg.SeriesInstanceUID, SOPInstanceUID: seg.SOPInstanceUID,
		Companions: comps, Summary: sum,
	}, nil
}

// companions makes the objects configured to go with a SEG: the
// measurement report (seg.sr), with the amount the batch summary shows,
// and the overlay (seg.overlay) of the predicted masks. A series whose
// geometry gives no amount gets no report, and one the model did not run
// on (no masks, no decoded pixels) no overlay; sum.Warnings says so.
func (p *Pipeline) companions(s *dicomio.Series, seg *writer.SEG, pred *segment.Prediction, desc writer.Description, sum *Summary) ([]Companion, error) {
	var out []Companion
	if p.opts.SR {
		if q, v, ok := Measure(s, pred.SegmentedPixels); ok {
			ms := make([]writer.Measurement, len(desc.Segments))
			for i := range ms {
				// The model has one output: every segment is its mask.
				ms[i] = writer.Measurement{Segment: i + 1, Quantity: q, Value: v}
			}
			sr, err := writer.EncodeSR(s, seg, ms, desc)
			if err != nil {
				return nil, err
			}
			out = append(out, companionOf(CompanionSR, sr))
		} else {
			sum.Warnings = append(sum.Warnings, "no pixel spacing (or slice spacing) to measure with: no measurement report written")
		}
	}
	if p.opts.Overlay {
		if pred.Masks != nil {
			masks := make(writer.Masks, len(desc.Segments))
			for i := range masks {
				masks[i] = pred.Masks
			}
			ov, err := writer.EncodeOverlay(s, masks, desc)
			if err != nil {
				return nil, err
			}
			out = append(out, companionOf(CompanionOverlay, ov))
		} else {
			sum.Warnings = append(sum.Warnings, "the model did not run: no overlay written")
		}
	}
	return out, nil
}

func companionOf(kind string, o *writer.Object) Companion {
	return Companion{Kind: kind, StudyUID: o.StudyInstanceUID, SeriesUID: o.SeriesInstanceUID, SOPInstanceUID: o.SOPInstanceUID, Data: o.Data}
}

// Measure is the segmented amount of a series of which pixels pixels are
// segmented: an area in mm² for a projection image (or a single slice), a
// volume in mL for a cross-sectional series; ok is false when the geometry
// gives no pixel spacing (or no slice spacing). The batch summary and the
// measurement report both show this number.
func Measure(s *dicomio.Series, pixels int64) (q writer.Quantity, value float64, ok bool) {
	px := s.PixelSpacing[0] * s.PixelSpacing[1]
	if px <= 0 {
		return "", 0, false
	}
	if s.HasGeometry && len(s.Frames) > 1 {
		dz := s.SpacingBetweenSlices
		if dz <= 0 {
			dz = s.SliceThickness
		}
		if dz <= 0 {
			return "", 0, false
		}
		return writer.Volume, float64(pixels) * px * dz / 1000, true
	}
	return writer.Area, float64(pixels) * px, true
}
