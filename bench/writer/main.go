// Command writer benchmarks tmcad's SEG writer: encoding and writing a
// 300-frame 512×512 BINARY SEG, against a plain buffered write of the same
// number of bytes in the same run.
//
// It measures the production path (masks handed over bit-packed, as
// segment produces them: writer.BitMasks) and, for comparison, the older
// path from one byte per pixel (writer.Masks). Each repetition runs the
// plain write and both SEG paths back to back, in an order that rotates, so
// that load from other jobs hits them alike; it reports medians of wall and
// process CPU time and the medians of the per-repetition ratios. It also
// times the segment-side cost of producing the masks (thresholding the
// probabilities to bytes, as segment.ProbToMask does, vs writer.ThresholdPack
// straight to bits; writer.PackFrame of byte masks).
//
//	go run ./bench/writer [-frames 300] [-size 512] [-runs 21] [-dir /tmp]
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"tmcad/dicomio"
	"tmcad/writer"
)

func main() {
	frames := flag.Int("frames", 300, "source frames (slices)")
	size := flag.Int("size", 512, "rows = columns")
	runs := flag.Int("runs", 21, "repetitions (medians are reported)")
	dir := flag.String("dir", os.TempDir(), "folder for the output files")
	flag.Parse()
	if err := run(*frames, *size, *runs, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "bench/writer:", err)
		os.Exit(1)
	}
}

// sample is one timed operation: wall and process CPU time.
type sample struct{ wall, cpu time.Duration }

// timed runs f after a GC and measures it.
func timed(f func() error) (sample, error) {
	runtime.GC()
	c0 := cpuTime()
	t0 := time.Now()
	err := f()
	return sample{time.Since(t0), cpuTime() - c0}, err
}

// writeFile creates path and writes through a 1 MiB bufio.Writer with fill.
func writeFile(path string, fill func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := fill(bw); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func run(frames, size, runs int, dir string) error {
	src, probs := fixture(frames, size)
	n := size * size
	packed, byteMasks := handOverMasks(probs, n)
	masks := timeMaskProduction(probs, byteMasks, n, runs)
	probs = nil // not live during the SEG runs (the daemon frees them too)

	desc := benchDescription()
	segPath := filepath.Join(dir, "bench-seg.dcm")
	rawPath := filepath.Join(dir, "bench-raw.bin")
	defer os.Remove(segPath)
	defer os.Remove(rawPath)

	segSize, err := checkSamePaths(src, packed, byteMasks, desc, frames)
	if err != nil {
		return err
	}
	raw := make([]byte, segSize)
	for j := range raw {
		raw[j] = byte(j)
	}

	// Memory: untimed runs with a heap sampler (ReadMemStats stops the
	// world, so it must not run during the timed runs).
	packedHeap, err := measureHeap(src, packed, desc)
	if err != nil {
		return err
	}
	byteHeap, err := measureHeap(src, byteMasks, desc)
	if err != nil {
		return err
	}

	plainWrite := func() error {
		return writeFile(rawPath, func(w io.Writer) error {
			for off := 0; off < len(raw); off += 64 << 10 {
				if _, err := w.Write(raw[off:min(off+64<<10, len(raw))]); err != nil {
					return err
				}
			}
			return nil
		})
	}
	segWrite := func(m writer.MaskSet) func() error {
		return func() error {
			return writeFile(segPath, func(w io.Writer) error {
				_, err := writer.WriteSEG(w, src, m, desc)
				return err
			})
		}
	}
	writes, err := timeRotated([]func() error{plainWrite, segWrite(packed), segWrite(byteMasks)}, runs)
	if err != nil {
		return err
	}
	results{frames: frames, size: size, runs: runs, segSize: segSize, writes: writes,
		masks: masks, packedHeap: packedHeap, byteHeap: byteHeap}.print()
	return nil
}

// handOverMasks thresholds the probabilities into the two hand-overs from
// segment to writer: bit-packed masks (as segment produces them) and the
// older one byte per pixel.
func handOverMasks(probs [][]float32, n int) (writer.BitMasks, writer.Masks) {
	// Masks as segment hands them over: thresholded straight into bits.
	packed := writer.BitMasks{make([][]byte, len(probs))}
	for f, p := range probs {
		packed[0][f] = make([]byte, writer.PackedLen(n))
		writer.ThresholdPack(packed[0][f], p, 0.5)
	}
	// The older hand-over: one byte per pixel.
	byteMasks := writer.Masks{make([][]byte, len(probs))}
	for f, p := range probs {
		byteMasks[0][f] = thresholdBytes(make([]byte, n), p, 0.5)
	}
	return packed, byteMasks
}

// maskTimes are the segment-side costs of producing one series' masks,
// one sample per repetition.
type maskTimes struct {
	thrBytes  []sample // thresholding to bytes (segment.ProbToMask)
	thrBits   []sample // writer.ThresholdPack straight to bits
	packFrame []sample // writer.PackFrame of the byte masks
}

// timeMaskProduction times, runs times, producing the masks of every
// frame each way.
func timeMaskProduction(probs [][]float32, byteMasks writer.Masks, n, runs int) maskTimes {
	mask := make([]byte, n)
	bits := make([]byte, writer.PackedLen(n))
	var t maskTimes
	for i := 0; i < runs; i++ {
		s, _ := timed(func() error {
			for _, p := range probs {
				thresholdBytes(mask, p, 0.5)
			}
			return nil
		})
		t.thrBytes = append(t.thrBytes, s)
		s, _ = timed(func() error {
			for _, p := range probs {
				writer.ThresholdPack(bits, p, 0.5)
			}
			return nil
		})
		t.thrBits = append(t.thrBits, s)
		s, _ = timed(func() error {
			for _, m := range byteMasks[0] {
				writer.PackFrame(bits, m)
			}
			return nil
		})
		t.packFrame = append(t.packFrame, s)
	}
	return t
}

// benchDescription describes the one-segment SEG the benchmark writes.
func benchDescription() writer.Description {
	return writer.Description{
		SeriesDescription: "bench", Manufacturer: "tmcad", ManufacturerModelName: "tmcad TMCA",
		SoftwareVersions: "bench", ModelName: "bench-model", ModelVersion: "1",
		Segments: []writer.Segment{{Number: 1, Label: "Lesion",
			Category: writer.Code{Value: "49755003", Scheme: "SCT", Meaning: "Morphologically Abnormal Structure"},
			Type:     writer.Code{Value: "52988006", Scheme: "SCT", Meaning: "Lesion"}}},
	}
}

// checkSamePaths encodes the SEG from both hand-overs, which must give the
// same file of every frame, and returns its size.
func checkSamePaths(src *dicomio.Series, packed, byteMasks writer.MaskSet, desc writer.Description, frames int) (int, error) {
	a, err := writer.EncodeSEG(src, packed, desc)
	if err != nil {
		return 0, err
	}
	b, err := writer.EncodeSEG(src, byteMasks, desc)
	if err != nil {
		return 0, err
	}
	if !bytes.Equal(a.Data, b.Data) {
		return 0, fmt.Errorf("the SEGs from bit-packed and byte masks differ")
	}
	if a.NumberOfFrames != frames {
		return 0, fmt.Errorf("wrote %d frames, want %d", a.NumberOfFrames, frames)
	}
	return len(a.Data), nil
}

// heapUse is the Go heap around one WriteSEG call.
type heapUse struct{ before, peak, alloc uint64 }

// measureHeap runs WriteSEG once, untimed, with a heap sampler. The
// sampler can miss short-lived peaks, so the bytes allocated during the
// call (an upper bound on what the encoder adds) are reported too.
func measureHeap(src *dicomio.Series, m writer.MaskSet, desc writer.Description) (heapUse, error) {
	runtime.GC()
	var ms, after runtime.MemStats
	runtime.ReadMemStats(&ms)
	var peak uint64
	stop := sampleHeap(&peak)
	_, err := writer.WriteSEG(io.Discard, src, m, desc)
	stop()
	runtime.ReadMemStats(&after)
	return heapUse{ms.HeapAlloc, peak, after.TotalAlloc - ms.TotalAlloc}, err
}

// timeRotated runs every op once per repetition, in an order that rotates
// from one repetition to the next, and returns each op's samples.
func timeRotated(ops []func() error, runs int) ([][]sample, error) {
	res := make([][]sample, len(ops))
	for i := 0; i < runs; i++ {
		for k := range ops {
			j := (k + i) % len(ops) // rotate the order
			s, err := timed(ops[j])
			if err != nil {
				return nil, err
			}
			res[j] = append(res[j], s)
		}
	}
	return res, nil
}

// results are what one run measured.
type results struct {
	frames, size, runs, segSize int
	// writes are the plain write's, the BitMasks SEG's and the byte
	// Masks SEG's samples.
	writes               [][]sample
	masks                maskTimes
	packedHeap, byteHeap heapUse
}

// print writes the report: the machine, the write times and their ratios,
// the segment-side costs and the memory.
func (r results) print() {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	load, _ := os.ReadFile("/proc/loadavg")
	frames, res, n := r.frames, r.writes, r.size*r.size
	fmt.Printf("frames=%d size=%dx%d SEG=%d bytes (%.2f MiB), %d runs, GOMAXPROCS=%d NumCPU=%d %s/%s %s, loadavg %s",
		frames, r.size, r.size, r.segSize, float64(r.segSize)/(1<<20), r.runs, runtime.GOMAXPROCS(0), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), load)
	fmt.Printf("%-38s %12s %12s %12s\n", "", "wall median", "wall min", "CPU median")
	names := []string{"plain buffered write, same bytes", "SEG from BitMasks (production)", "SEG from byte Masks (old path)"}
	for k, name := range names {
		fmt.Printf("%-38s %12v %12v %12v\n", name, med(res[k], wallOf), minOf(res[k], wallOf), med(res[k], cpuOf))
	}
	for k := 1; k < len(res); k++ {
		fmt.Printf("ratio %s / plain: wall median-of-ratios %.2fx, ratio-of-medians %.2fx, ratio-of-mins %.2fx; CPU median-of-ratios %.2fx, ratio-of-medians %.2fx\n",
			names[k],
			medRatio(res[k], res[0], wallOf), ratio(med(res[k], wallOf), med(res[0], wallOf)), ratio(minOf(res[k], wallOf), minOf(res[0], wallOf)),
			medRatio(res[k], res[0], cpuOf), ratio(med(res[k], cpuOf), med(res[0], cpuOf)))
	}
	m := r.masks
	fmt.Printf("segment side, %d frames: threshold float32 -> bytes %v (CPU %v); ThresholdPack -> bits %v (CPU %v); PackFrame of byte masks %v (CPU %v) [wall/CPU medians]\n",
		frames, med(m.thrBytes, wallOf), med(m.thrBytes, cpuOf), med(m.thrBits, wallOf), med(m.thrBits, cpuOf), med(m.packFrame, wallOf), med(m.packFrame, cpuOf))
	fmt.Printf("memory, BitMasks: peak Go heap %.1f MiB (%.1f MiB live before); allocated during WriteSEG %.1f MiB\n",
		mib(r.packedHeap.peak), mib(r.packedHeap.before), mib(r.packedHeap.alloc))
	fmt.Printf("memory, byte Masks: peak Go heap %.1f MiB (%.1f MiB live before); allocated during WriteSEG %.1f MiB\n",
		mib(r.byteHeap.peak), mib(r.byteHeap.before), mib(r.byteHeap.alloc))
	fmt.Printf("inputs: bit-packed masks %.1f MiB, byte masks %.1f MiB, probabilities %.1f MiB; process max RSS %.1f MiB\n",
		mib(uint64(frames*writer.PackedLen(n))), mib(uint64(frames*n)), mib(uint64(frames*n*4)), float64(ru.Maxrss)/1024)
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// thresholdBytes is segment.ProbToMask's thresholding loop (after the
// resize), the byte-per-pixel hand-over.
func thresholdBytes(mask []byte, prob []float32, th float32) []byte {
	for i, p := range prob {
		if p >= th {
			mask[i] = 1
		} else {
			mask[i] = 0
		}
	}
	return mask
}

// sampleHeap records the peak HeapAlloc until stop is called.
func sampleHeap(peak *uint64) (stop func()) {
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m runtime.MemStats
		for !done.Load() {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > *peak {
				*peak = m.HeapAlloc
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return func() { done.Store(true); wg.Wait() }
}

func wallOf(s sample) time.Duration { return s.wall }
func cpuOf(s sample) time.Duration  { return s.cpu }

func med(s []sample, f func(sample) time.Duration) time.Duration {
	d := make([]time.Duration, len(s))
	for i, x := range s {
		d[i] = f(x)
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2].Round(10 * time.Microsecond)
}

func minOf(s []sample, f func(sample) time.Duration) time.Duration {
	m := f(s[0])
	for _, x := range s {
		m = min(m, f(x))
	}
	return m.Round(10 * time.Microsecond)
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

// medRatio is the median over repetitions of a[i]/b[i] (measured back to
// back, so they saw about the same load).
func medRatio(a, b []sample, f func(sample) time.Duration) float64 {
	r := make([]float64, len(a))
	for i := range a {
		r[i] = float64(f(a[i])) / float64(f(b[i]))
	}
	sort.Float64s(r)
	return r[len(r)/2]
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// fixture builds a CT-like series with geometry and, per slice, a
// probability map: a disc of varying radius with a soft edge (no frame
// empty, so all frames are written).
func fixture(frames, size int) (*dicomio.Series, [][]float32) {
	src := &dicomio.Series{
		PatientStudy:        dicomio.PatientStudy{StudyInstanceUID: "2.25.1", PatientID: "BENCH"},
		SeriesInstanceUID:   "2.25.2",
		Modality:            "CT",
		Rows:                size,
		Columns:             size,
		HasGeometry:         true,
		Orientation:         [6]float64{1, 0, 0, 0, 1, 0},
		PixelSpacing:        [2]float64{0.7, 0.7},
		SliceThickness:      1,
		FrameOfReferenceUID: "2.25.3",
	}
	probs := make([][]float32, frames)
	for f := 0; f < frames; f++ {
		src.Frames = append(src.Frames, dicomio.Frame{
			SOPInstanceUID: fmt.Sprintf("2.25.1000%d", f+1),
			SOPClassUID:    "1.2.840.10008.5.1.4.1.1.2",
			FrameNumber:    1,
			Position:       dicomio.Vec3{0, 0, float64(f)},
		})
		p := make([]float32, size*size)
		r := float64(size) / 4 * (0.5 + 0.5*math.Sin(float64(f)/30))
		for y := 0; y < size; y++ {
			for x := 0; x < size; x++ {
				d := math.Hypot(float64(x-size/2), float64(y-size/2))
				p[y*size+x] = float32(1 / (1 + math.Exp((d-r-1)/2))) // 0.5 at d = r+1
			}
		}
		probs[f] = p
	}
	return src, probs
}
