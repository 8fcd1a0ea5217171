// Command engine benchmarks the Go inference engine (segment) against its
// peers measured in the same run: images/s at several batch sizes (PyTorch
// eager numbers come from torch_bench.py, run by scripts/bench.sh), the
// achieved FLOP/s against a large single-precision MatMul run by the same
// ONNX Runtime, and the pipeline overhead on a 100-slice CT series.
//
//	go run ./bench/engine -model models/tmca-cxr-compact -matmul /tmp/matmul.onnx -ct /tmp/ct100 -out /tmp/engine.json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	ort "github.com/yalue/onnxruntime_go"

	"tmcad/daemon/pipeline"
	"tmcad/dicomio"
	"tmcad/reports"
	"tmcad/segment"
	"tmcad/writer"
)

// Result is what the benchmark writes as JSON.
type Result struct {
	Model          string             `json:"model"`
	Provider       string             `json:"provider"`
	Threads        int                `json:"threads"`
	Concurrent     int                `json:"concurrent_runs"`
	ImagesPerSec   map[string]float64 `json:"images_per_sec"`
	MatMulN        int                `json:"matmul_n"`
	MatMulGFLOPS   float64            `json:"matmul_gflops"`
	PipelineFrames int                `json:"pipeline_frames"`
	PipelineWall   float64            `json:"pipeline_wall_s"`
	PipelineRun    float64            `json:"pipeline_run_s"`
	PipelineLoad   float64            `json:"pipeline_load_s"`
	Overhead       float64            `json:"pipeline_overhead_fraction"`
	// Head, Gaps and Tail split the overhead: before the first session run
	// starts, between runs, and after the last one ends (seconds).
	Head float64 `json:"pipeline_head_s"`
	Gaps float64 `json:"pipeline_gaps_s"`
	Tail float64 `json:"pipeline_tail_s"`
	// Overheads holds every repetition's overhead; the fields above are
	// the median repetition's.
	Overheads []float64 `json:"pipeline_overheads"`
	// GraphOptimization and InterOpThreads are the session settings
	// (segment.Options) the run used ("" and 0: ONNX Runtime's defaults).
	GraphOptimization string `json:"graph_optimization"`
	InterOpThreads    int    `json:"inter_op_threads"`
	// LoadSeconds is the time NewEngine took (session creation, graph
	// optimisation included).
	LoadSeconds float64 `json:"load_s"`
	// RSSLoadedMB is the resident memory once the session exists, and
	// PeakRSSMB the process's peak resident memory (VmHWM) at the end.
	RSSLoadedMB float64 `json:"rss_loaded_mb"`
	// ReferenceMaxAbsDiff is the largest difference between the engine's
	// probabilities and the model folder's PyTorch reference (-reference).
	ReferenceMaxAbsDiff float64 `json:"reference_max_abs_diff,omitempty"`
	PeakRSSMB           float64 `json:"peak_rss_mb"`
	// Padded is the same measurement on a copy of the series that declares
	// a Pixel Padding Value; nil without -ct-padded.
	Padded *PipelineResult `json:"pipeline_padded,omitempty"`
}

// PipelineResult is one series' pipeline measurement: the median
// repetition, and every repetition's overhead.
type PipelineResult struct {
	Frames    int       `json:"frames"`
	Wall      float64   `json:"wall_s"`
	Run       float64   `json:"run_s"`
	Overhead  float64   `json:"overhead_fraction"`
	Head      float64   `json:"head_s"`
	Gaps      float64   `json:"gaps_s"`
	Tail      float64   `json:"tail_s"`
	Overheads []float64 `json:"overheads"`
}

func main() {
	model := flag.String("model", "models/tmca-cxr-compact", "model folder")
	batches := flag.String("batches", "1,4,8,16", "batch sizes")
	seconds := flag.Float64("seconds", 6, "measuring time per batch size")
	threads := flag.Int("threads", 2, "ONNX Runtime intra-op threads")
	matmul := flag.String("matmul", "", "ONNX file of a square MatMul (from torch_bench.py --write-matmul)")
	matmulN := flag.Int("matmul-n", 1024, "its size")
	ct := flag.String("ct", "", "a tmca.dicom_writer folder with one 100-slice CT series, for the pipeline overhead")
	ctPadded := flag.String("ct-padded", "", "the same series with a Pixel Padding Value declared (optional)")
	reps := flag.Int("pipeline-reps", 9, "repetitions of the pipeline measurement (the median is reported)")
	out := flag.String("out", "", "write the JSON result here")
	provider := flag.String("provider", "cpu", "execution provider: cpu or cuda (no fallback: a CUDA failure is an error)")
	deviceID := flag.Int("device", 0, "CUDA device id")
	concurrent := flag.Int("concurrent", 1, "batches run at once (engine ConcurrentRuns); threads is then per run")
	graphOpt := flag.String("graph-opt", "", "ONNX Runtime graph optimisation level: disable, basic, extended or all (default: its own, all)")
	interOp := flag.Int("inter-op", 0, "ONNX Runtime inter-op threads (parallel execution mode); 0: sequential")
	reference := flag.Bool("reference", false, "also compare the engine with the model folder's PyTorch reference")
	flag.Parse()
	opts := segment.Options{Provider: *provider, DeviceID: *deviceID, IntraOpThreads: *threads, ConcurrentRuns: *concurrent,
		GraphOptimization: *graphOpt, InterOpThreads: *interOp}
	if err := run(*model, *batches, *seconds, opts, *matmul, *matmulN, *ct, *ctPadded, *reps, *reference, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench/engine:", err)
		os.Exit(1)
	}
}

func run(modelDir, batchList string, seconds float64, opts segment.Options, matmul string, matmulN int, ct, ctPadded string, reps int, reference bool, out string) error {
	threads := opts.IntraOpThreads
	m, err := loadManifest(modelDir)
	if err != nil {
		return err
	}
	res := Result{Model: m.ID(), Threads: threads, ImagesPerSec: map[string]float64{},
		GraphOptimization: opts.GraphOptimization, InterOpThreads: opts.InterOpThreads}
	sizes, err := parseBatchSizes(batchList)
	if err != nil {
		return err
	}
	maxB := 0
	for _, b := range sizes {
		maxB = max(maxB, b)
	}
	opts.BatchSize = maxB
	e, err := res.openEngine(m, opts)
	if err != nil {
		return err
	}
	defer e.Close()
	if reference {
		if err := res.compareReference(m, e, maxB); err != nil {
			return err
		}
	}
	if err := res.measureThroughput(e, m, sizes, maxB, seconds); err != nil {
		return err
	}
	if matmul != "" {
		g, err := matmulGFLOPS(matmul, matmulN, threads, seconds)
		if err != nil {
			return err
		}
		res.MatMulN, res.MatMulGFLOPS = matmulN, g
		fmt.Fprintf(os.Stderr, "onnxruntime MatMul %d: %.1f GFLOP/s\n", matmulN, g)
	}
	if ct != "" {
		if err := res.measurePipelines(modelDir, ct, ctPadded, opts, reps); err != nil {
			return err
		}
	}
	res.PeakRSSMB = procStatusMB("VmHWM")
	b, _ := json.MarshalIndent(res, "", "  ")
	if out != "" {
		return os.WriteFile(out, b, 0o644)
	}
	fmt.Println(string(b))
	return nil
}

// loadManifest starts ONNX Runtime and reads the model folder's manifest.
func loadManifest(modelDir string) (*segment.Manifest, error) {
	lib, err := segment.ResolveLibrary("")
	if err != nil {
		return nil, err
	}
	if _, err := segment.InitRuntime(lib); err != nil {
		return nil, err
	}
	return segment.LoadManifest(modelDir)
}

// parseBatchSizes reads -batches, a comma-separated list of batch sizes.
func parseBatchSizes(list string) ([]int, error) {
	var sizes []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("-batches: %w", err)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}

// openEngine creates the engine, recording how long that took, the
// resident memory after it, the provider and the concurrent runs.
func (res *Result) openEngine(m *segment.Manifest, opts segment.Options) (*segment.Engine, error) {
	t0 := time.Now()
	e, err := segment.NewEngine(m, opts)
	if err != nil {
		return nil, err
	}
	res.LoadSeconds = time.Since(t0).Seconds()
	res.RSSLoadedMB = procStatusMB("VmRSS")
	res.Provider = e.Provider()
	res.Concurrent = max(1, opts.ConcurrentRuns)
	return e, nil
}

// compareReference records the largest difference between the engine's
// probabilities and the model folder's PyTorch reference.
func (res *Result) compareReference(m *segment.Manifest, e *segment.Engine, maxB int) error {
	ref, err := segment.LoadReference(m)
	if err != nil {
		return err
	}
	if res.ReferenceMaxAbsDiff, err = ref.MaxAbsDifference(e, maxB); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "reference: max |engine - PyTorch| = %.2g\n", res.ReferenceMaxAbsDiff)
	return nil
}

// measureThroughput records the engine's images/s at each batch size, on
// synthetic inputs.
func (res *Result) measureThroughput(e *segment.Engine, m *segment.Manifest, sizes []int, maxB int, seconds float64) error {
	hw, l := m.Image.Height*m.Image.Width, m.Tokenizer.MaxLength
	img, ids, mask := syntheticInputs(maxB, hw, l)
	for _, b := range sizes {
		ips, runs, err := throughput(e, res.Concurrent, b, seconds, img, ids, mask, hw)
		if err != nil {
			return err
		}
		res.ImagesPerSec[strconv.Itoa(b)] = ips
		fmt.Fprintf(os.Stderr, "engine batch %2d ×%d: %.1f images/s (%d runs)\n", b, res.Concurrent, ips, runs)
	}
	return nil
}

// syntheticInputs are n images of hw pixels in [-1, 1) and their token ids
// and attention masks (sequences of length l, 12 tokens each).
func syntheticInputs(n, hw, l int) (img []float32, ids, mask []int64) {
	img = make([]float32, n*hw)
	for i := range img {
		img[i] = float32((i*7919)%1000)/500 - 1
	}
	ids = make([]int64, n*l)
	mask = make([]int64, n*l)
	for b := 0; b < n; b++ {
		for j := 0; j < 12; j++ {
			ids[b*l+j] = int64(5 + (b+j)%50)
			mask[b*l+j] = 1
		}
	}
	return img, ids, mask
}

// measurePipelines records the pipeline overhead on the CT series, and on
// its padded copy when there is one.
func (res *Result) measurePipelines(modelDir, ct, ctPadded string, opts segment.Options, reps int) error {
	pr, load, err := pipelineOverhead(modelDir, ct, opts, reps)
	if err != nil {
		return err
	}
	res.PipelineFrames, res.PipelineWall, res.PipelineRun, res.Overhead = pr.Frames, pr.Wall, pr.Run, pr.Overhead
	res.Head, res.Gaps, res.Tail, res.Overheads, res.PipelineLoad = pr.Head, pr.Gaps, pr.Tail, pr.Overheads, load
	if ctPadded != "" {
		if res.Padded, _, err = pipelineOverhead(modelDir, ctPadded, opts, reps); err != nil {
			return err
		}
	}
	return nil
}

// throughput runs batches of b through the engine on `concurrent`
// goroutines for about `seconds` after a warm-up and returns images/s: with
// one goroutine, b divided by the median run time; with several, the images
// completed divided by the wall time.
func throughput(e *segment.Engine, concurrent, b int, seconds float64, img []float32, ids, mask []int64, hw int) (float64, int, error) {
	prob := make([]float32, b*hw)
	if err := e.Run(b, img, ids, mask, prob); err != nil { // warm-up
		return 0, 0, err
	}
	if concurrent <= 1 {
		var times []float64
		deadline := time.Now().Add(time.Duration(seconds * float64(time.Second)))
		for len(times) < 3 || time.Now().Before(deadline) {
			t0 := time.Now()
			if err := e.Run(b, img, ids, mask, prob); err != nil {
				return 0, 0, err
			}
			times = append(times, time.Since(t0).Seconds())
		}
		sort.Float64s(times)
		return float64(b) / times[len(times)/2], len(times), nil
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		runs  int
		first error
	)
	start := time.Now()
	deadline := start.Add(time.Duration(seconds * float64(time.Second)))
	for g := 0; g < concurrent; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]float32, b*hw)
			for time.Now().Before(deadline) {
				if err := e.Run(b, img, ids, mask, out); err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
					return
				}
				mu.Lock()
				runs++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return float64(runs*b) / time.Since(start).Seconds(), runs, first
}

// matmulGFLOPS runs C = A·B (n × n, float32) through ONNX Runtime's MatMul.
func matmulGFLOPS(path string, n, threads int, seconds float64) (float64, error) {
	a := make([]float32, n*n)
	for i := range a {
		a[i] = float32(i%17) / 17
	}
	ta, err := ort.NewTensor(ort.NewShape(int64(n), int64(n)), a)
	if err != nil {
		return 0, err
	}
	defer ta.Destroy()
	tb, err := ort.NewTensor(ort.NewShape(int64(n), int64(n)), a)
	if err != nil {
		return 0, err
	}
	defer tb.Destroy()
	tc, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(n), int64(n)))
	if err != nil {
		return 0, err
	}
	defer tc.Destroy()
	so, err := ort.NewSessionOptions()
	if err != nil {
		return 0, err
	}
	defer so.Destroy()
	if err := so.SetIntraOpNumThreads(threads); err != nil {
		return 0, err
	}
	s, err := ort.NewAdvancedSession(path, []string{"a", "b"}, []string{"c"}, []ort.Value{ta, tb}, []ort.Value{tc}, so)
	if err != nil {
		return 0, fmt.Errorf("matmul session: %w", err)
	}
	defer s.Destroy()
	if err := s.Run(); err != nil {
		return 0, err
	}
	var times []float64
	deadline := time.Now().Add(time.Duration(seconds * float64(time.Second)))
	for len(times) < 3 || time.Now().Before(deadline) {
		t0 := time.Now()
		if err := s.Run(); err != nil {
			return 0, err
		}
		times = append(times, time.Since(t0).Seconds())
	}
	sort.Float64s(times)
	return 2 * float64(n) * float64(n) * float64(n) / times[len(times)/2] / 1e9, nil
}

// pipelineOverhead runs the production pipeline on one CT series (load,
// tokenize, pre-process, model, post-process, SEG encode) reps times and
// measures the wall time during which no session run was in progress; it
// returns the median repetition and the time of LoadSeries alone.
func pipelineOverhead(modelDir, folder string, opts segment.Options, reps int) (*PipelineResult, float64, error) {
	span := &runSpan{}
	p, err := newBenchPipeline(modelDir, opts, span.onRun)
	if err != nil {
		return nil, 0, err
	}
	defer p.Close()
	job, err := seriesJob(folder)
	if err != nil {
		return nil, 0, err
	}
	if _, err := p.Process(context.Background(), job); err != nil { // warm-up (page cache, allocator)
		return nil, 0, err
	}
	tl := time.Now()
	if _, err := dicomio.LoadSeries(job.Paths, dicomio.Limits{}); err != nil {
		return nil, 0, err
	}
	load := time.Since(tl).Seconds()
	var all []PipelineResult
	for i := 0; i < max(1, reps); i++ {
		pr, err := measureRepetition(p, job, span)
		if err != nil {
			return nil, 0, err
		}
		all = append(all, pr)
	}
	med := medianOverhead(all)
	fmt.Fprintf(os.Stderr, "pipeline %s, %d frames, median of %d: wall %.3fs, in Run %.3fs, overhead %.1f%% (before the first run %.1f ms, between runs %.1f ms, after the last %.1f ms; all: %s; LoadSeries alone %.3fs)\n",
		filepath.Base(folder), med.Frames, len(all), med.Wall, med.Run, 100*med.Overhead, 1e3*med.Head, 1e3*med.Gaps, 1e3*med.Tail, percents(med.Overheads), load)
	return &med, load, nil
}

// runSpan tracks, from the engine's OnRun calls, when the first session
// run of a repetition started and when the last one ended.
type runSpan struct {
	mu       sync.Mutex
	firstRun time.Time
	lastEnd  time.Time
}

// onRun is the engine's OnRun: a run of duration d just ended.
func (s *runSpan) onRun(_ int, d time.Duration) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := now.Add(-d); s.firstRun.IsZero() || st.Before(s.firstRun) {
		s.firstRun = st
	}
	if now.After(s.lastEnd) {
		s.lastEnd = now
	}
}

// reset forgets the runs seen so far.
func (s *runSpan) reset() {
	s.mu.Lock()
	s.firstRun, s.lastEnd = time.Time{}, time.Time{}
	s.mu.Unlock()
}

// headTail is the time from t0 to the first run's start and from the last
// run's end to t1, in seconds.
func (s *runSpan) headTail(t0, t1 time.Time) (head, tail float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.firstRun.Sub(t0).Seconds(), t1.Sub(s.lastEnd).Seconds()
}

// newBenchPipeline builds the production pipeline with the engine
// settings of opts (batches of 16) and onRun as the engine's OnRun; the
// SEG and report settings are the configuration's defaults.
func newBenchPipeline(modelDir string, opts segment.Options, onRun func(int, time.Duration)) (*pipeline.Pipeline, error) {
	return pipeline.New(pipeline.Options{
		ModelDir: modelDir,
		Engine: segment.Options{
			Provider:       opts.Provider,
			DeviceID:       opts.DeviceID,
			IntraOpThreads: opts.IntraOpThreads,
			BatchSize:      16,
			ConcurrentRuns: max(1, opts.ConcurrentRuns),
			OnRun:          onRun,
		},
		SEG: writer.Description{
			Type: writer.Binary, SeriesNumber: 9901, SeriesDescription: "TMCA segmentation",
			ContentLabel: "TMCA", ContentCreatorName: "TMCAD^Daemon", Manufacturer: "tmcad",
		},
		Sections: []string{"FINDINGS", "IMPRESSION"},
	}, zerolog.Nop())
}

// seriesJob is the job for the series in a tmca.dicom_writer folder: its
// files under dicom/ and its report, reports/<accession>.txt.
func seriesJob(folder string) (pipeline.SeriesJob, error) {
	var paths []string
	err := filepath.WalkDir(filepath.Join(folder, "dicom"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".dcm") {
			paths = append(paths, path)
		}
		return err
	})
	if err != nil {
		return pipeline.SeriesJob{}, err
	}
	h, err := dicomio.ReadHeader(paths[0])
	if err != nil {
		return pipeline.SeriesJob{}, err
	}
	rd, err := reports.NewReader(reports.Options{})
	if err != nil {
		return pipeline.SeriesJob{}, err
	}
	rps, err := rd.ReadFile(filepath.Join(folder, "reports", h.AccessionNumber+".txt"))
	if err != nil {
		return pipeline.SeriesJob{}, err
	}
	return pipeline.SeriesJob{StudyUID: h.StudyInstanceUID, SeriesUID: h.SeriesInstanceUID, Paths: paths, Report: &rps[0]}, nil
}

// measureRepetition processes the job once and splits its wall time into
// session runs and the overhead before, between and after them.
func measureRepetition(p *pipeline.Pipeline, job pipeline.SeriesJob, span *runSpan) (PipelineResult, error) {
	runtime.GC() // each repetition starts as a job after an idle daemon would
	busy0 := p.Engine().BusyTime()
	span.reset()
	t0 := time.Now()
	r, err := p.Process(context.Background(), job)
	if err != nil {
		return PipelineResult{}, err
	}
	t1 := time.Now()
	wall := t1.Sub(t0).Seconds()
	runS := (p.Engine().BusyTime() - busy0).Seconds()
	pr := PipelineResult{Frames: r.Summary.Frames, Wall: wall, Run: runS, Overhead: (wall - runS) / wall}
	pr.Head, pr.Tail = span.headTail(t0, t1)
	pr.Gaps = wall - runS - pr.Head - pr.Tail
	return pr, nil
}

// medianOverhead is the repetition of median overhead, with every
// repetition's overhead in ascending order.
func medianOverhead(all []PipelineResult) PipelineResult {
	sort.Slice(all, func(i, j int) bool { return all[i].Overhead < all[j].Overhead })
	med := all[len(all)/2]
	for _, r := range all {
		med.Overheads = append(med.Overheads, r.Overhead)
	}
	return med
}

// procStatusMB reads one memory line of /proc/self/status (VmRSS, VmHWM)
// in MB (10^6 bytes); 0 where it cannot be read.
func procStatusMB(key string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb * 1024 / 1e6
			}
		}
	}
	return 0
}

// percents formats fractions as a list of percentages.
func percents(v []float64) string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = fmt.Sprintf("%.1f%%", 100*x)
	}
	return strings.Join(out, " ")
}
