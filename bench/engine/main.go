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
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	ort "github.com/yalue/onnxruntime_go"

	"tmcad/config"
	"tmcad/daemon"
	"tmcad/dicomio"
	"tmcad/reports"
	"tmcad/segment"
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
}

func main() {
	model := flag.String("model", "models/tmca-cxr-compact", "model folder")
	batches := flag.String("batches", "1,4,8,16", "batch sizes")
	seconds := flag.Float64("seconds", 6, "measuring time per batch size")
	threads := flag.Int("threads", 2, "ONNX Runtime intra-op threads")
	matmul := flag.String("matmul", "", "ONNX file of a square MatMul (from torch_bench.py --write-matmul)")
	matmulN := flag.Int("matmul-n", 1024, "its size")
	ct := flag.String("ct", "", "a tmca.dicom_writer folder with one 100-slice CT series, for the pipeline overhead")
	out := flag.String("out", "", "write the JSON result here")
	provider := flag.String("provider", "cpu", "execution provider: cpu or cuda (no fallback: a CUDA failure is an error)")
	deviceID := flag.Int("device", 0, "CUDA device id")
	concurrent := flag.Int("concurrent", 1, "batches run at once (engine ConcurrentRuns); threads is then per run")
	flag.Parse()
	opts := segment.Options{Provider: *provider, DeviceID: *deviceID, IntraOpThreads: *threads, ConcurrentRuns: *concurrent}
	if err := run(*model, *batches, *seconds, opts, *matmul, *matmulN, *ct, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench/engine:", err)
		os.Exit(1)
	}
}

func run(modelDir, batchList string, seconds float64, opts segment.Options, matmul string, matmulN int, ct, out string) error {
	threads := opts.IntraOpThreads
	lib, err := segment.ResolveLibrary("")
	if err != nil {
		return err
	}
	if _, err := segment.InitRuntime(lib); err != nil {
		return err
	}
	m, err := segment.LoadManifest(modelDir)
	if err != nil {
		return err
	}
	res := Result{Model: m.ID(), Threads: threads, ImagesPerSec: map[string]float64{}}
	var sizes []int
	for _, s := range strings.Split(batchList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("-batches: %w", err)
		}
		sizes = append(sizes, n)
	}
	maxB := 0
	for _, b := range sizes {
		maxB = max(maxB, b)
	}
	opts.BatchSize = maxB
	e, err := segment.NewEngine(m, opts)
	if err != nil {
		return err
	}
	res.Provider = e.Provider()
	res.Concurrent = max(1, opts.ConcurrentRuns)
	defer e.Close()
	hw, l := m.Image.Height*m.Image.Width, m.Tokenizer.MaxLength
	img := make([]float32, maxB*hw)
	for i := range img {
		img[i] = float32((i*7919)%1000)/500 - 1
	}
	ids := make([]int64, maxB*l)
	mask := make([]int64, maxB*l)
	for b := 0; b < maxB; b++ {
		for j := 0; j < 12; j++ {
			ids[b*l+j] = int64(5 + (b+j)%50)
			mask[b*l+j] = 1
		}
	}
	for _, b := range sizes {
		ips, runs, err := throughput(e, res.Concurrent, b, seconds, img, ids, mask, hw)
		if err != nil {
			return err
		}
		res.ImagesPerSec[strconv.Itoa(b)] = ips
		fmt.Fprintf(os.Stderr, "engine batch %2d ×%d: %.1f images/s (%d runs)\n", b, res.Concurrent, ips, runs)
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
		if err := pipelineOverhead(modelDir, ct, opts, &res); err != nil {
			return err
		}
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	if out != "" {
		return os.WriteFile(out, b, 0o644)
	}
	fmt.Println(string(b))
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
// tokenize, pre-process, model, post-process, SEG encode) and measures the
// wall time during which no session run was in progress.
func pipelineOverhead(modelDir, folder string, opts segment.Options, res *Result) error {
	cfg := config.Default()
	cfg.Model.Dir = modelDir
	cfg.Model.BatchSize = 16
	cfg.Model.IntraOpThreads = opts.IntraOpThreads
	cfg.Model.ConcurrentRuns = max(1, opts.ConcurrentRuns)
	cfg.Model.ExecutionProvider = opts.Provider
	cfg.Model.DeviceID = opts.DeviceID
	cfg.Model.FallbackToCPU = false
	var (
		mu       sync.Mutex
		firstRun time.Time
		lastEnd  time.Time
	)
	onRun := func(_ int, d time.Duration) {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if s := now.Add(-d); firstRun.IsZero() || s.Before(firstRun) {
			firstRun = s
		}
		if now.After(lastEnd) {
			lastEnd = now
		}
	}
	p, err := daemon.NewPipeline(cfg, zerolog.Nop(), onRun)
	if err != nil {
		return err
	}
	defer p.Close()
	var paths []string
	err = filepath.WalkDir(filepath.Join(folder, "dicom"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".dcm") {
			paths = append(paths, path)
		}
		return err
	})
	if err != nil {
		return err
	}
	h, err := dicomio.ReadHeader(paths[0])
	if err != nil {
		return err
	}
	rd, err := reports.NewReader(reports.Options{})
	if err != nil {
		return err
	}
	reps, err := rd.ReadFile(filepath.Join(folder, "reports", h.AccessionNumber+".txt"))
	if err != nil {
		return err
	}
	job := daemon.SeriesJob{StudyUID: h.StudyInstanceUID, SeriesUID: h.SeriesInstanceUID, Paths: paths, Report: &reps[0]}
	if _, err := p.Process(context.Background(), job); err != nil { // warm-up (page cache, allocator)
		return err
	}
	best := -1.0
	for i := 0; i < 3; i++ {
		busy0 := p.Engine().BusyTime()
		tl := time.Now()
		if _, err := dicomio.LoadSeries(paths, dicomio.Limits{}); err != nil {
			return err
		}
		load := time.Since(tl).Seconds()
		mu.Lock()
		firstRun, lastEnd = time.Time{}, time.Time{}
		mu.Unlock()
		t0 := time.Now()
		r, err := p.Process(context.Background(), job)
		if err != nil {
			return err
		}
		t1 := time.Now()
		wall := t1.Sub(t0).Seconds()
		runS := (p.Engine().BusyTime() - busy0).Seconds()
		ov := (wall - runS) / wall
		if best < 0 || ov < best {
			best = ov
			res.PipelineFrames, res.PipelineWall, res.PipelineRun, res.PipelineLoad, res.Overhead = r.Summary.Frames, wall, runS, load, ov
			mu.Lock()
			res.Head, res.Tail = firstRun.Sub(t0).Seconds(), t1.Sub(lastEnd).Seconds()
			mu.Unlock()
			res.Gaps = wall - runS - res.Head - res.Tail
		}
	}
	fmt.Fprintf(os.Stderr, "pipeline %d frames: wall %.3fs, in Run %.3fs, overhead %.1f%% (before the first run %.1f ms, between runs %.1f ms, after the last %.1f ms; LoadSeries alone %.3fs)\n",
		res.PipelineFrames, res.PipelineWall, res.PipelineRun, 100*res.Overhead, 1e3*res.Head, 1e3*res.Gaps, 1e3*res.Tail, res.PipelineLoad)
	return nil
}
