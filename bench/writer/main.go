// Command writer benchmarks tmcad's SEG writer: encoding and writing a
// 300-frame 512×512 BINARY SEG, against a plain buffered write of the same
// number of bytes in the same run.
//
//	go run ./bench/writer [-frames 300] [-size 512] [-runs 5] [-dir /tmp]
package main

import (
	"bufio"
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
	runs := flag.Int("runs", 5, "repetitions (the median is reported)")
	dir := flag.String("dir", os.TempDir(), "folder for the output files")
	flag.Parse()
	if err := run(*frames, *size, *runs, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "bench/writer:", err)
		os.Exit(1)
	}
}

func run(frames, size, runs int, dir string) error {
	src, masks := fixture(frames, size)
	desc := writer.Description{
		SeriesDescription: "bench", Manufacturer: "tmcad", ManufacturerModelName: "tmcad TMCA",
		SoftwareVersions: "bench", ModelName: "bench-model", ModelVersion: "1",
		Segments: []writer.Segment{{Number: 1, Label: "Lesion",
			Category: writer.Code{Value: "49755003", Scheme: "SCT", Meaning: "Morphologically Altered Structure"},
			Type:     writer.Code{Value: "52988006", Scheme: "SCT", Meaning: "Lesion"}}},
	}
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)

	segPath := filepath.Join(dir, "bench-seg.dcm")
	rawPath := filepath.Join(dir, "bench-raw.bin")
	defer os.Remove(segPath)
	defer os.Remove(rawPath)

	// Memory: one untimed run with a heap sampler (ReadMemStats stops the
	// world, so it must not run during the timed runs).
	var peakHeap uint64
	runtime.GC()
	stop := sampleHeap(&peakHeap)
	if _, err := writer.WriteSEG(io.Discard, src, masks, desc); err != nil {
		return err
	}
	stop()

	var segTimes, rawTimes, segCPU, rawCPU []time.Duration
	var size64 int
	for i := 0; i < runs; i++ {
		runtime.GC()
		c0 := cpuTime()
		t0 := time.Now()
		f, err := os.Create(segPath)
		if err != nil {
			return err
		}
		bw := bufio.NewWriterSize(f, 1<<20)
		seg, err := writer.WriteSEG(bw, src, masks, desc)
		if err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		segTimes = append(segTimes, time.Since(t0))
		segCPU = append(segCPU, cpuTime()-c0)
		st, _ := os.Stat(segPath)
		size64 = int(st.Size())
		if seg.NumberOfFrames != frames {
			return fmt.Errorf("wrote %d frames, want %d", seg.NumberOfFrames, frames)
		}

		// Baseline: the same number of bytes through a plain buffered write.
		buf := make([]byte, size64)
		for j := range buf {
			buf[j] = byte(j)
		}
		runtime.GC()
		c0 = cpuTime()
		t0 = time.Now()
		f, err = os.Create(rawPath)
		if err != nil {
			return err
		}
		bw = bufio.NewWriterSize(f, 1<<20)
		for off := 0; off < len(buf); off += 64 << 10 {
			end := min(off+64<<10, len(buf))
			if _, err := bw.Write(buf[off:end]); err != nil {
				return err
			}
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		rawTimes = append(rawTimes, time.Since(t0))
		rawCPU = append(rawCPU, cpuTime()-c0)
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	ms, mr := median(segTimes), median(rawTimes)
	maskBytes := frames * size * size
	fmt.Printf("frames=%d size=%dx%d SEG=%d bytes (%.1f MiB), %d runs\n", frames, size, size, size64, float64(size64)/(1<<20), runs)
	fmt.Printf("encode+write SEG:      wall median %v min %v; CPU median %v\n", ms.Round(time.Microsecond), minDur(segTimes).Round(time.Microsecond), median(segCPU).Round(time.Microsecond))
	fmt.Printf("plain buffered write:  wall median %v min %v; CPU median %v\n", mr.Round(time.Microsecond), minDur(rawTimes).Round(time.Microsecond), median(rawCPU).Round(time.Microsecond))
	fmt.Printf("ratio SEG/plain: wall median %.2fx, wall min %.2fx, CPU median %.2fx\n", float64(ms)/float64(mr),
		float64(minDur(segTimes))/float64(minDur(rawTimes)), float64(median(segCPU))/float64(median(rawCPU)))
	fmt.Printf("peak Go heap during encode+write: %.1f MiB (of which input masks %.1f MiB, before: %.1f MiB)\n",
		float64(peakHeap)/(1<<20), float64(maskBytes)/(1<<20), float64(base.HeapAlloc)/(1<<20))
	fmt.Printf("process max RSS: %.1f MiB\n", float64(ru.Maxrss)/1024)
	fmt.Printf("GOMAXPROCS=%d NumCPU=%d %s/%s %s\n", runtime.GOMAXPROCS(0), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	return nil
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
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return func() { done.Store(true); wg.Wait() }
}

func minDur(d []time.Duration) time.Duration {
	m := d[0]
	for _, x := range d {
		m = min(m, x)
	}
	return m
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// fixture builds a CT-like series with geometry and a disc mask on every
// slice (no frame empty, so all 300 frames are written).
func fixture(frames, size int) (*dicomio.Series, writer.Masks) {
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
	masks := writer.Masks{make([][]byte, frames)}
	for f := 0; f < frames; f++ {
		src.Frames = append(src.Frames, dicomio.Frame{
			SOPInstanceUID: fmt.Sprintf("2.25.1000%d", f+1),
			SOPClassUID:    "1.2.840.10008.5.1.4.1.1.2",
			FrameNumber:    1,
			Position:       dicomio.Vec3{0, 0, float64(f)},
		})
		m := make([]byte, size*size)
		r := float64(size) / 4 * (0.5 + 0.5*math.Sin(float64(f)/30))
		for y := 0; y < size; y++ {
			for x := 0; x < size; x++ {
				if math.Hypot(float64(x-size/2), float64(y-size/2)) <= r+1 {
					m[y*size+x] = 1
				}
			}
		}
		masks[0][f] = m
	}
	return src, masks
}
