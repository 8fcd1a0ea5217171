package segment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	ort "github.com/yalue/onnxruntime_go"
)

// Execution provider names.
const (
	ProviderCPU  = "cpu"
	ProviderCUDA = "cuda"
)

// The files the CUDA execution provider needs beside libonnxruntime.so.
const (
	cudaProviderLib   = "libonnxruntime_providers_cuda.so"
	sharedProviderLib = "libonnxruntime_providers_shared.so"
)

// Options configure an Engine.
type Options struct {
	// Provider is "cpu" or "cuda".
	Provider string
	// DeviceID is the CUDA device number.
	DeviceID int
	// FallbackToCPU runs on CPU, with one warning, when CUDA cannot start.
	FallbackToCPU bool
	// IntraOpThreads is ONNX Runtime's intra-op thread count (0: its default).
	IntraOpThreads int
	// InterOpThreads, when above 0, runs independent graph nodes in
	// parallel (ONNX Runtime's parallel execution mode) on that many
	// threads; 0 keeps the sequential mode.
	InterOpThreads int
	// GraphOptimization is ONNX Runtime's graph optimisation level:
	// "disable", "basic", "extended" or "all" ("": its default, all).
	GraphOptimization string
	// BatchSize is the most frames per session run (default 8).
	BatchSize int
	// ConcurrentRuns is how many batches run through the session at once.
	// 0 means automatic: 2 on CPU when there are at least 2 CPUs (two runs
	// of half the threads each keep a small model's cores busier than one
	// run of all of them; bench/RESULTS.md), 1 on CUDA. With more than one
	// run, IntraOpThreads 0 becomes NumCPU / ConcurrentRuns.
	ConcurrentRuns int
	// MinComponentArea removes smaller mask components (0: keep all).
	MinComponentArea int
	// Logger receives the fallback warning; zero value logs nothing.
	Logger zerolog.Logger
	// OnRun, when set, is called after every session run with its batch
	// size and duration (for metrics).
	OnRun func(batch int, d time.Duration)
}

// Engine runs a TMCA model through ONNX Runtime. It is safe for concurrent
// use: ONNX Runtime sessions may be run from several goroutines, and every
// call takes its own buffers from a pool.
type Engine struct {
	m        *Manifest
	opts     Options
	session  *ort.DynamicAdvancedSession
	provider string
	pre      *Preprocessor
	bufs     sync.Pool
	post     sync.Pool // *postScratch
	runNanos atomic.Int64
	runs     atomic.Int64
	frames   atomic.Int64
	busy     busyClock
}

// NewEngine loads the manifest's ONNX model (ONNX Runtime must be loaded
// with InitRuntime), checks its inputs and outputs against the manifest, and
// creates the session on the configured execution provider.
func NewEngine(m *Manifest, opts Options) (*Engine, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 8
	}
	if opts.Provider == "" {
		opts.Provider = ProviderCPU
	}
	if opts.ConcurrentRuns < 1 {
		opts.ConcurrentRuns = 1
		if opts.Provider == ProviderCPU && runtime.NumCPU() >= 2 {
			opts.ConcurrentRuns = 2
		}
	}
	if opts.ConcurrentRuns > 1 && opts.IntraOpThreads == 0 {
		opts.IntraOpThreads = max(1, runtime.NumCPU()/opts.ConcurrentRuns)
	}
	if !ort.IsInitialized() {
		return nil, errors.New("engine: onnxruntime is not loaded (call segment.InitRuntime first)")
	}
	onnxPath := m.Path(m.ONNX)
	if err := checkModelIO(onnxPath, m); err != nil {
		return nil, err
	}
	e := &Engine{m: m, opts: opts, pre: NewPreprocessor(m)}
	s, provider, err := e.newSession(onnxPath)
	if err != nil {
		return nil, err
	}
	e.session, e.provider = s, provider
	return e, nil
}

// checkModelIO compares the ONNX file's inputs and outputs with the manifest.
func checkModelIO(path string, m *Manifest) error {
	ins, outs, err := ort.GetInputOutputInfo(path)
	if err != nil {
		return fmt.Errorf("engine: reading %s: %w", path, err)
	}
	check := func(kind string, specs []TensorSpec, infos []ort.InputOutputInfo) error {
		if len(specs) != len(infos) {
			return fmt.Errorf("engine: %s has %d %ss, manifest lists %d", path, len(infos), kind, len(specs))
		}
		byName := map[string]ort.InputOutputInfo{}
		for _, in := range infos {
			byName[in.Name] = in
		}
		for _, s := range specs {
			in, ok := byName[s.Name]
			if !ok {
				return fmt.Errorf("engine: %s has no %s %q that the manifest names", path, kind, s.Name)
			}
			got := []int64(in.Dimensions)
			if !shapeEqual(got, s.Shape) {
				return fmt.Errorf("engine: %s %q: model shape %v, manifest shape %v", kind, s.Name, got, s.Shape)
			}
			if dt := dtypeName(in.DataType); dt != s.DType {
				return fmt.Errorf("engine: %s %q: model type %s, manifest type %s", kind, s.Name, dt, s.DType)
			}
		}
		return nil
	}
	if err := check("input", m.Inputs, ins); err != nil {
		return err
	}
	return check("output", m.Outputs, outs)
}

func dtypeName(t ort.TensorElementDataType) string {
	switch t {
	case ort.TensorElementDataTypeFloat:
		return "float32"
	case ort.TensorElementDataTypeInt64:
		return "int64"
	case ort.TensorElementDataTypeInt32:
		return "int32"
	}
	return t.String()
}

var missingSO = regexp.MustCompile(`([A-Za-z0-9_.+-]+\.so[0-9.]*): cannot open shared object file`)

// newSession creates the session on the requested provider, falling back
// to CPU when allowed.
func (e *Engine) newSession(onnxPath string) (*ort.DynamicAdvancedSession, string, error) {
	switch e.opts.Provider {
	case ProviderCPU:
		s, err := e.sessionWith(onnxPath, nil)
		return s, ProviderCPU, err
	case ProviderCUDA:
		s, err := e.sessionWith(onnxPath, e.appendCUDA)
		if err == nil {
			return s, ProviderCUDA, nil
		}
		if !e.opts.FallbackToCPU {
			return nil, "", err
		}
		e.opts.Logger.Warn().Err(err).Msg("CUDA execution provider unavailable; running on CPU (model.fallback_to_cpu = true)")
		s, err = e.sessionWith(onnxPath, nil)
		return s, ProviderCPU, err
	default:
		return nil, "", fmt.Errorf("engine: unknown execution provider %q (want cpu or cuda)", e.opts.Provider)
	}
}

// appendCUDA adds the CUDA provider, first checking that its libraries sit
// beside the loaded ONNX Runtime so the error can name the missing file.
func (e *Engine) appendCUDA(so *ort.SessionOptions) error {
	dir := filepath.Dir(runtimePath)
	for _, name := range []string{cudaProviderLib, sharedProviderLib} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("engine: CUDA execution provider: %s not found (it must sit beside %s; see README, \"GPU\")", p, runtimePath)
		}
	}
	co, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return fmt.Errorf("engine: CUDA provider options: %w", err)
	}
	defer co.Destroy()
	if err := co.Update(map[string]string{"device_id": fmt.Sprint(e.opts.DeviceID)}); err != nil {
		return fmt.Errorf("engine: CUDA provider options: %w", err)
	}
	if err := so.AppendExecutionProviderCUDA(co); err != nil {
		return cudaError(err)
	}
	return nil
}

// cudaError names the shared library CUDA could not load, when ONNX
// Runtime's message says which.
func cudaError(err error) error {
	if m := missingSO.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Errorf("engine: CUDA execution provider: %s not found (install CUDA 13 and cuDNN 9, or point LD_LIBRARY_PATH at them): %w", m[1], err)
	}
	return fmt.Errorf("engine: CUDA execution provider: %w", err)
}

func (e *Engine) sessionWith(onnxPath string, provider func(*ort.SessionOptions) error) (*ort.DynamicAdvancedSession, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("engine: session options: %w", err)
	}
	defer so.Destroy()
	if e.opts.IntraOpThreads > 0 {
		if err := so.SetIntraOpNumThreads(e.opts.IntraOpThreads); err != nil {
			return nil, fmt.Errorf("engine: intra-op threads: %w", err)
		}
	}
	if e.opts.InterOpThreads > 0 {
		if err := so.SetExecutionMode(ort.ExecutionModeParallel); err != nil {
			return nil, fmt.Errorf("engine: execution mode: %w", err)
		}
		if err := so.SetInterOpNumThreads(e.opts.InterOpThreads); err != nil {
			return nil, fmt.Errorf("engine: inter-op threads: %w", err)
		}
	}
	if e.opts.GraphOptimization != "" {
		level, err := graphOptimizationLevel(e.opts.GraphOptimization)
		if err != nil {
			return nil, err
		}
		if err := so.SetGraphOptimizationLevel(level); err != nil {
			return nil, fmt.Errorf("engine: graph optimisation level: %w", err)
		}
	}
	if provider != nil {
		if err := provider(so); err != nil {
			return nil, err
		}
	}
	names := func(ts []TensorSpec) []string {
		out := make([]string, len(ts))
		for i, t := range ts {
			out[i] = t.Name
		}
		return out
	}
	s, err := ort.NewDynamicAdvancedSession(onnxPath, names(e.m.Inputs), names(e.m.Outputs), so)
	if err != nil {
		if provider != nil {
			return nil, cudaError(err)
		}
		return nil, fmt.Errorf("engine: creating session for %s: %w", onnxPath, err)
	}
	return s, nil
}

// graphOptimizationLevel maps Options.GraphOptimization to ONNX Runtime's level.
func graphOptimizationLevel(name string) (ort.GraphOptimizationLevel, error) {
	switch name {
	case "disable":
		return ort.GraphOptimizationLevelDisableAll, nil
	case "basic":
		return ort.GraphOptimizationLevelEnableBasic, nil
	case "extended":
		return ort.GraphOptimizationLevelEnableExtended, nil
	case "all":
		return ort.GraphOptimizationLevelEnableAll, nil
	}
	return 0, fmt.Errorf("engine: unknown graph optimisation level %q (want disable, basic, extended or all)", name)
}

// Manifest returns the engine's model manifest.
func (e *Engine) Manifest() *Manifest { return e.m }

// Provider returns the execution provider in use ("cpu" or "cuda").
func (e *Engine) Provider() string { return e.provider }

// BatchSize returns the most frames per session run.
func (e *Engine) BatchSize() int { return e.opts.BatchSize }

// Stats returns the cumulative time spent inside session runs (summed over
// concurrent runs), the number of runs and the number of frames run.
func (e *Engine) Stats() (runTime time.Duration, runs, frames int64) {
	return time.Duration(e.runNanos.Load()), e.runs.Load(), e.frames.Load()
}

// BusyTime returns the wall time during which at least one session run was
// in progress (concurrent runs counted once).
func (e *Engine) BusyTime() time.Duration { return e.busy.total() }

// busyClock accumulates the wall time during which at least one run is
// active.
type busyClock struct {
	mu     sync.Mutex
	active int
	since  time.Time
	nanos  time.Duration
}

func (b *busyClock) enter() time.Time {
	now := time.Now()
	b.mu.Lock()
	if b.active == 0 {
		b.since = now
	}
	b.active++
	b.mu.Unlock()
	return now
}

func (b *busyClock) leave() {
	now := time.Now()
	b.mu.Lock()
	b.active--
	if b.active == 0 {
		b.nanos += now.Sub(b.since)
	}
	b.mu.Unlock()
}

func (b *busyClock) total() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.nanos
	if b.active > 0 {
		t += time.Since(b.since)
	}
	return t
}

// Close releases the session.
func (e *Engine) Close() error {
	if e.session == nil {
		return nil
	}
	err := e.session.Destroy()
	e.session = nil
	return err
}

// batchBuf holds the reusable input and output buffers of one batch.
type batchBuf struct {
	image, prob []float32
	ids, mask   []int64
}

func (e *Engine) getBuf() *batchBuf {
	if b, ok := e.bufs.Get().(*batchBuf); ok {
		return b
	}
	hw := e.m.Image.Height * e.m.Image.Width
	n, l := e.opts.BatchSize, e.m.Tokenizer.MaxLength
	return &batchBuf{
		image: make([]float32, n*hw), prob: make([]float32, n*hw),
		ids: make([]int64, n*l), mask: make([]int64, n*l),
	}
}

// Run runs the session on n prepared inputs: image [n,1,H,W], input_ids and
// attention_mask [n,L], writing prob [n,1,H,W]. n may exceed the batch size
// only if the slices are large enough; Predict is the usual entry point.
func (e *Engine) Run(n int, image []float32, ids, mask []int64, prob []float32) error {
	h, w, l := int64(e.m.Image.Height), int64(e.m.Image.Width), int64(e.m.Tokenizer.MaxLength)
	nn := int64(n)
	imgT, err := ort.NewTensor(ort.NewShape(nn, 1, h, w), image)
	if err != nil {
		return fmt.Errorf("engine: image tensor: %w", err)
	}
	defer imgT.Destroy()
	idsT, err := ort.NewTensor(ort.NewShape(nn, l), ids)
	if err != nil {
		return fmt.Errorf("engine: input_ids tensor: %w", err)
	}
	defer idsT.Destroy()
	maskT, err := ort.NewTensor(ort.NewShape(nn, l), mask)
	if err != nil {
		return fmt.Errorf("engine: attention_mask tensor: %w", err)
	}
	defer maskT.Destroy()
	outT, err := ort.NewTensor(ort.NewShape(nn, 1, h, w), prob)
	if err != nil {
		return fmt.Errorf("engine: prob tensor: %w", err)
	}
	defer outT.Destroy()
	inputs := make([]ort.Value, len(e.m.Inputs))
	for i, spec := range e.m.Inputs {
		switch spec.Name {
		case "image":
			inputs[i] = imgT
		case "input_ids":
			inputs[i] = idsT
		case "attention_mask":
			inputs[i] = maskT
		}
	}
	start := e.busy.enter()
	err = e.session.Run(inputs, []ort.Value{outT})
	e.busy.leave()
	if err != nil {
		return fmt.Errorf("engine: running %s: %w", e.m.ID(), err)
	}
	d := time.Since(start)
	e.runNanos.Add(int64(d))
	e.runs.Add(1)
	e.frames.Add(nn)
	if e.opts.OnRun != nil {
		e.opts.OnRun(n, d)
	}
	return nil
}
