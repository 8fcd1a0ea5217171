package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"tmcad/dicomio"
)

// benchCodec is one compressed transfer syntax of the compressed section
// and the real encoder that writes it (input and output paths are
// appended; nil: OpenJPH's ojph_compress on each slice, see encodeHTJ2K).
type benchCodec struct {
	name    string
	ts      string
	sub     string // folder of its files under the compressed series' folder
	encoder []string
	// source: the native series it encodes, "native" (16-bit signed) or
	// "native12" (the same values as 12-bit unsigned, for the 12-bit
	// JPEG processes).
	source string
	// lossy: its volume is checked against peer (a)'s, not the native one.
	lossy bool
	// gdcm: pydicom with GDCM decodes it (peer b); else peer (a) is
	// ojph_expand of the codestreams.
	gdcm bool
}

// benchCodecs are the compressed syntaxes measured.
var benchCodecs = []benchCodec{
	{"JPEG Lossless SV1", dicomio.JPEGLosslessSV1, "sv1", []string{"dcmcjpeg", "+e1"}, "native", false, true},
	{"JPEG-LS lossless", dicomio.JPEGLSLossless, "jls", []string{"dcmcjpls", "+el"}, "native", false, true},
	{"JPEG 2000 lossless", dicomio.JPEG2000Lossless, "j2k", []string{"gdcmconv", "--j2k"}, "native", false, true},
	{"JPEG Extended 12-bit (lossy, dcmtk's default quality)", dicomio.JPEGExtended12Bit, "jpeg12", []string{"dcmcjpeg", "+ee"}, "native12", true, true},
	{"HTJ2K lossless", dicomio.HTJ2KLossless, "htj2k", nil, "native", false, false},
}

// htj2kStreams is the folder (beside the codecs') of the bare HTJ2K
// codestreams that peer (a) expands.
const htj2kStreams = "htj2k-j2c"

// gdcmPeer is what peer.py reports for pydicom decoding through GDCM.
type gdcmPeer struct {
	LoadSeconds  float64 `json:"load_seconds"`
	LoadCPU      float64 `json:"load_cpu_seconds"`
	LoadMaxRSSKB int64   `json:"load_maxrss_kb"`
	VolumeSHA256 string  `json:"volume_sha256"`
	GDCM         string  `json:"gdcm"`
	Pydicom      string  `json:"pydicom"`
}

// codecResult is the measurement of one compressed syntax.
type codecResult struct {
	codec     benchCodec
	fileBytes int64
	// tmcad: best seconds of LoadSeries on the compressed files, and the
	// CPU seconds of that repetition.
	tmcad, tmcadCPU float64
	// raw: best seconds of gdcmconv --raw of every file (on as many
	// workers as CPUs) then LoadSeries of the native copies; rawConv and
	// rawLoad are its two parts in that best repetition.
	raw, rawConv, rawLoad float64
	peer                  gdcmPeer
	mem                   memResult
	// same: the volume LoadSeries returns equals the native series' (a
	// lossy syntax: peer a's).
	same bool
	// peerSame: peer (b)'s volume equals the same reference.
	peerSame bool
}

// compressedDir is the folder of the compressed section's series.
func compressedDir(dir string, slices, size int) string {
	return filepath.Join(dir, fmt.Sprintf("compressed-%dx%dx%d", slices, size, size))
}

// ensureCompressed writes the phantom series (native, and its 12-bit
// variant) and its copies in each benchCodecs syntax unless already
// there, and returns the native paths and those of each copy by codec
// folder.
func ensureCompressed(root string, slices, size int) ([]string, map[string][]string, error) {
	tools := []string{"ojph_compress", "ojph_expand"}
	for _, c := range benchCodecs {
		if c.encoder != nil {
			tools = append(tools, c.encoder[0])
		}
	}
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			return nil, nil, fmt.Errorf("compressed series: %s is not installed (make deps): %w", t, err)
		}
	}
	names := make([]string, slices)
	for k := range names {
		names[k] = fmt.Sprintf("ct%04d.dcm", k)
	}
	sources := map[string][]string{}
	for _, src := range []struct {
		sub    string
		series string
		f      ctFormat
	}{
		{"native", "1.2.826.0.1.3680043.10.1234.503", ctFormat{bitsStored: 16, signed: true}},
		{"native12", "1.2.826.0.1.3680043.10.1234.504", ctFormat{bitsStored: 12}},
	} {
		d := filepath.Join(root, src.sub)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, nil, fmt.Errorf("compressed series: %w", err)
		}
		paths, err := writeMissing(d, names, int64(2*size*size), func(k int, path string) error {
			// The phantom's stored values are 0..4095: the same in 12
			// bits unsigned as in 16 bits signed.
			return writeCTAs(path, src.series, k, size, phantomSlice(k, size), src.f)
		})
		if err != nil {
			return nil, nil, fmt.Errorf("compressed series: %w", err)
		}
		sources[src.sub] = paths
	}
	out := map[string][]string{}
	for _, c := range benchCodecs {
		d := filepath.Join(root, c.sub)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, nil, fmt.Errorf("compressed series: %w", err)
		}
		paths, err := writeMissing(d, names, 0, func(k int, path string) error {
			// Written under a temporary name first, so that an interrupted
			// run leaves no partial file that a later run would keep.
			tmp := path + ".part"
			if c.encoder == nil {
				if err := encodeHTJ2K(root, k, size, tmp); err != nil {
					return err
				}
				return os.Rename(tmp, path)
			}
			src := sources[c.source][k]
			args := append(append([]string{}, c.encoder[1:]...), src, tmp)
			if b, err := exec.Command(c.encoder[0], args...).CombinedOutput(); err != nil {
				return fmt.Errorf("%s %s: %w\n%s", strings.Join(c.encoder, " "), src, err, b)
			}
			return os.Rename(tmp, path)
		})
		if err != nil {
			return nil, nil, fmt.Errorf("compressed series (%s): %w", c.name, err)
		}
		out[c.sub] = paths
	}
	return sources["native"], out, nil
}

// writeMissing writes, on as many workers as CPUs, each file names[k] in
// dir that is not there yet with more than minSize bytes, by write(k,
// path), and returns the paths of all of them.
func writeMissing(dir string, names []string, minSize int64, write func(k int, path string) error) ([]string, error) {
	paths := make([]string, len(names))
	err := parallelDo(len(names), func(k int) error {
		paths[k] = filepath.Join(dir, names[k])
		if st, err := os.Stat(paths[k]); err == nil && st.Size() > minSize {
			return nil
		}
		return write(k, paths[k])
	})
	return paths, err
}

// encodeHTJ2K writes slice k in HTJ2K lossless to path: its 16-bit
// samples (the stored values' bit patterns, unsigned, as DICOM's HTJ2K
// encoders write signed data) encoded by ojph_compress, reversible, one
// tile, the bare codestream kept under htj2kStreams for peer (a).
func encodeHTJ2K(root string, k, size int, path string) error {
	dir := filepath.Join(root, htj2kStreams)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	vals := phantomSlice(k, size)
	raw := make([]byte, 2*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint16(raw[2*i:], uint16(v))
	}
	yuv := filepath.Join(dir, fmt.Sprintf("ct%04d.yuv", k))
	j2c := filepath.Join(dir, fmt.Sprintf("ct%04d.j2c", k))
	if err := os.WriteFile(yuv, raw, 0o644); err != nil {
		return err
	}
	defer os.Remove(yuv)
	cmd := exec.Command("ojph_compress", "-i", yuv, "-o", j2c, "-dims", fmt.Sprintf("{%d,%d}", size, size),
		"-num_comps", "1", "-signed", "false", "-bit_depth", "16", "-downsamp", "{1,1}", "-reversible", "true", "-prog_order", "LRCP")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ojph_compress slice %d: %w\n%s", k, err, b)
	}
	cs, err := os.ReadFile(j2c)
	if err != nil {
		return err
	}
	return writeCTAs(path, "1.2.826.0.1.3680043.10.1234.503", k, size, vals,
		ctFormat{bitsStored: 16, signed: true, ts: dicomio.HTJ2KLossless, codestream: cs})
}

// expandHTJ2K is peer (a) for HTJ2K: ojph_expand of every slice's
// codestream into raw samples (one process per slice on as many workers as
// CPUs), checked equal to the phantom's values; it returns its seconds.
func expandHTJ2K(root string, slices, size int, check bool) float64 {
	in := filepath.Join(root, htj2kStreams)
	out := filepath.Join(root, "raw-htj2k")
	if err := os.RemoveAll(out); err != nil {
		log.Fatal(err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(out)
	t0 := time.Now()
	err := parallelDo(slices, func(k int) error {
		j2c := filepath.Join(in, fmt.Sprintf("ct%04d.j2c", k))
		yuv := filepath.Join(out, fmt.Sprintf("ct%04d.yuv", k))
		if b, err := exec.Command("ojph_expand", "-i", j2c, "-o", yuv).CombinedOutput(); err != nil {
			return fmt.Errorf("ojph_expand %s: %w\n%s", j2c, err, b)
		}
		return nil
	})
	sec := time.Since(t0).Seconds()
	if err != nil {
		log.Fatal(err)
	}
	if check {
		for k := 0; k < slices; k++ {
			b, err := os.ReadFile(filepath.Join(out, fmt.Sprintf("ct%04d.yuv", k)))
			if err != nil {
				log.Fatal(err)
			}
			vals := phantomSlice(k, size)
			if len(b) != 2*len(vals) {
				log.Fatalf("ojph_expand slice %d: %d bytes, want %d", k, len(b), 2*len(vals))
			}
			for i, v := range vals {
				if binary.LittleEndian.Uint16(b[2*i:]) != uint16(v) {
					log.Fatalf("ojph_expand slice %d: sample %d differs from the native series'", k, i)
				}
			}
		}
	}
	return sec
}

// parallelDo runs f(0..n-1) on as many goroutines as CPUs and returns the
// first error.
func parallelDo(n int, f func(i int) error) error {
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < runtime.NumCPU(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = f(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// loadTimed runs LoadSeries and returns its seconds, the process's CPU
// seconds meanwhile, and the SHA-256 of the volume's float32 little endian
// bytes in frame order.
func loadTimed(paths []string) (float64, float64, string) {
	c0 := cpuSeconds()
	t0 := time.Now()
	s, err := dicomio.LoadSeries(paths, dicomio.Limits{})
	if err != nil {
		log.Fatal(err)
	}
	sec := time.Since(t0).Seconds()
	cpu := cpuSeconds() - c0
	h := sha256.New()
	buf := make([]byte, 4*s.Rows*s.Columns)
	for _, f := range s.Frames {
		for i, v := range f.Pixels {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		h.Write(buf)
	}
	s = nil
	runtime.GC()
	return sec, cpu, hex.EncodeToString(h.Sum(nil))
}

// cpuSeconds is the user and system CPU time of this process so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func fileSizes(paths []string) int64 {
	var n int64
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			log.Fatal(err)
		}
		n += st.Size()
	}
	return n
}

// benchCompressed measures LoadSeries on the phantom series in each
// compressed syntax against gdcmconv --raw + LoadSeries and pydicom with
// GDCM on the same files, and prints its Markdown section.
func benchCompressed(dir string, slices, size, reps int) {
	root := compressedDir(dir, slices, size)
	native, byCodec, err := ensureCompressed(root, slices, size)
	if err != nil {
		log.Fatal(err)
	}
	run := compressedRun{slices: slices, size: size, reps: reps, nativeBytes: fileSizes(native), pixelMB: float64(slices*size*size*2) / 1e6}
	run.nativeSec, run.nativeSum = math.Inf(1), ""
	for r := 0; r < reps; r++ {
		sec, _, sum := loadTimed(native)
		run.nativeSec, run.nativeSum = min(run.nativeSec, sec), sum
	}
	for _, c := range benchCodecs {
		run.results = append(run.results, run.measure(root, c, byCodec[c.sub], native))
	}
	run.printIntro()
	run.printThroughput()
	run.printMemory()
}

// compressedRun is the compressed section's series and what was measured
// on it.
type compressedRun struct {
	slices, size, reps int
	nativeBytes        int64   // the native series' files
	pixelMB            float64 // decoded 16-bit pixel data
	// nativeSec: best seconds of LoadSeries on the native series;
	// nativeSum: the SHA-256 of its volume.
	nativeSec float64
	nativeSum string
	results   []codecResult
}

// measure times LoadSeries on codec c's files (paths) and peer (a) on the
// same series, checks their volumes, and measures the memory of one load
// and peer (b) when it decodes c.
func (run *compressedRun) measure(root string, c benchCodec, paths, native []string) codecResult {
	res := codecResult{codec: c, fileBytes: fileSizes(paths), tmcad: math.Inf(1), raw: math.Inf(1), same: true}
	rawDir := filepath.Join(root, "raw-"+c.sub)
	rawPaths := make([]string, len(paths))
	for i, p := range paths {
		rawPaths[i] = filepath.Join(rawDir, filepath.Base(p))
	}
	ref := run.nativeSum // what every volume must equal; lossy: peer (a)'s
	var sums []string
	for r := 0; r < run.reps; r++ {
		sec, cpu, sum := loadTimed(paths)
		if sec < res.tmcad {
			res.tmcad, res.tmcadCPU = sec, cpu
		}
		sums = append(sums, sum)

		if !c.gdcm {
			// ojph_expand writes raw samples equal to the native
			// series' (checked); the native files are what a
			// site would then load (wrapping the samples in DICOM
			// is not counted).
			conv := expandHTJ2K(root, run.slices, run.size, r == 0)
			load, _, sum := loadTimed(native)
			if conv+load < res.raw {
				res.raw, res.rawConv, res.rawLoad = conv+load, conv, load
			}
			if sum != run.nativeSum {
				log.Fatalf("%s: the native series loads differently than before", c.name)
			}
			continue
		}
		conv := gdcmconvRaw(paths, rawPaths, rawDir)
		load, _, sum := loadTimed(rawPaths)
		if conv+load < res.raw {
			res.raw, res.rawConv, res.rawLoad = conv+load, conv, load
		}
		if c.lossy {
			ref = sum
		} else if sum != run.nativeSum {
			log.Fatalf("%s: the volume of gdcmconv --raw's copies differs from the native series'", c.name)
		}
	}
	for _, sum := range sums {
		res.same = res.same && sum == ref
	}
	if !res.same && !c.lossy {
		log.Fatalf("%s: LoadSeries returns a volume that differs from the native series'", c.name)
	}
	_ = os.RemoveAll(rawDir)
	res.mem = spawnFiles(filepath.Dir(paths[0]))
	if c.gdcm {
		res.peer = runGDCMPeer(filepath.Dir(paths[0]), run.reps)
		res.peerSame = res.peer.VolumeSHA256 == ref
		if !res.peerSame && !c.lossy {
			log.Fatalf("%s: pydicom with GDCM returns a volume that differs from the native series'", c.name)
		}
	}
	return res
}

// gdcmconvRaw is peer (a)'s conversion: gdcmconv --raw of every file in
// paths to rawPaths, in the emptied folder rawDir, one process per file on
// as many workers as CPUs; it returns its seconds.
func gdcmconvRaw(paths, rawPaths []string, rawDir string) float64 {
	if err := os.RemoveAll(rawDir); err != nil {
		log.Fatal(err)
	}
	if err := os.MkdirAll(rawDir, 0o755); err != nil {
		log.Fatal(err)
	}
	t0 := time.Now()
	err := parallelDo(len(paths), func(i int) error {
		if b, err := exec.Command("gdcmconv", "--raw", paths[i], rawPaths[i]).CombinedOutput(); err != nil {
			return fmt.Errorf("gdcmconv --raw %s: %w\n%s", paths[i], err, b)
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	return time.Since(t0).Seconds()
}

// mbps is the throughput of a load of the series in sec seconds, MB/s of
// decoded 16-bit pixel data.
func (run *compressedRun) mbps(sec float64) float64 { return run.pixelMB / sec }

// printIntro prints the section's heading and how it was measured.
func (run *compressedRun) printIntro() {
	host, _ := os.Hostname()
	p := run.results[0].peer
	fmt.Printf("## dicomio: compressed series, LoadSeries throughput and memory\n\n")
	fmt.Printf("Measured %s on %s (%s, %d CPUs visible, shared with other work; %s), `go run ./bench/dicomio -section compressed -reps %d`. "+
		"Series: %d slices %d×%d CT, 16-bit signed, a chest-like phantom with Gaussian noise (15 HU in the body, 4 HU in the air; `phantomSlice` in `bench/dicomio/gen.go`) so that it compresses about as a scanner's CT does, "+
		"native %.1f MB of files, encoded by dcmtk %s (`dcmcjpeg +e1`, `dcmcjpls +el`; `dcmcjpeg +ee` of a copy with the same values stored as 12-bit unsigned), GDCM (`gdcmconv --j2k`) and OpenJPH (`ojph_compress -reversible true`, each slice's codestream wrapped as one fragment); float32 volume %.1f MB. "+
		"Peers on the same files in the same run: (a) `gdcmconv --raw` of every file (GDCM %s, one process per file on %d workers) then `LoadSeries` of the native copies; for HTJ2K, which this GDCM cannot decode, `ojph_expand` of every slice's bare codestream (one process per slice on as many workers; its samples checked equal to the native series') then `LoadSeries` of the native series (writing the samples into DICOM files is not counted); "+
		"(b) Debian python3-pydicom %s with python3-gdcm %s as its only pixel data handler (`dcmread` + `pixel_array` + `apply_modality_lut`, stacked; `bench/dicomio/peer.py … gdcm`), which decodes no HTJ2K. "+
		"Throughput is MB/s of decoded 16-bit pixel data (%.1f MB: slices × rows × columns × 2), best of the repetitions, with the CPU seconds per wall second of that repetition (cores busy: tmcad decodes files on GOMAXPROCS goroutines; pydicom is single-threaded, but GDCM's OpenJPEG decodes JPEG 2000 on threads of its own); every volume (tmcad's, the peers') is checked equal, float32 for float32, to LoadSeries of the native series (lossy JPEG Extended: to peer (a)'s, see below the table).\n\n",
		time.Now().UTC().Format("2006-01-02"), host, cpuModel(), runtime.NumCPU(), runtime.Version(), run.reps,
		run.slices, run.size, run.size, float64(run.nativeBytes)/1e6, dcmtkVersion(), float64(run.results[0].mem.VolumeBytes)/1e6,
		p.GDCM, runtime.NumCPU(), p.Pydicom, p.GDCM, run.pixelMB)
}

// printThroughput prints the throughput table, and whether each lossy
// syntax's volumes agree.
func (run *compressedRun) printThroughput() {
	fmt.Printf("| transfer syntax | files (vs native) | tmcad `LoadSeries` | (a) decoder tool + `LoadSeries` of native copies | tmcad / (a) | (b) pydicom + GDCM | tmcad / (b) |\n|---|---|---|---|---|---|---|\n")
	fmt.Printf("| Explicit VR Little Endian (native, for reference) | %.1f MB | %.0f MB/s | | | | |\n", float64(run.nativeBytes)/1e6, run.mbps(run.nativeSec))
	for _, r := range run.results {
		tool := "gdcmconv"
		if !r.codec.gdcm {
			tool = "ojph_expand"
		}
		b, rb := "cannot decode it", ""
		if r.codec.gdcm {
			b = fmt.Sprintf("%.0f MB/s (%.1f cores)", run.mbps(r.peer.LoadSeconds), r.peer.LoadCPU/r.peer.LoadSeconds)
			rb = fmt.Sprintf("%.1f×", r.peer.LoadSeconds/r.tmcad)
		}
		fmt.Printf("| %s | %.1f MB (%.2f×) | %.0f MB/s (%.1f cores) | %.0f MB/s (%.2f s = %.2f s %s + %.2f s load) | %.1f× | %s | %s |\n",
			r.codec.name, float64(r.fileBytes)/1e6, float64(r.fileBytes)/float64(run.nativeBytes),
			run.mbps(r.tmcad), r.tmcadCPU/r.tmcad, run.mbps(r.raw), r.raw, r.rawConv, tool, r.rawLoad, r.raw/r.tmcad, b, rb)
	}
	for _, r := range run.results {
		if r.codec.lossy {
			fmt.Printf("\n%s: tmcad's volume equals (a)'s: %v; pydicom + GDCM's equals (a)'s: %v.\n", r.codec.name, r.same, r.peerSame)
		}
	}
}

// printMemory prints the peak memory table.
func (run *compressedRun) printMemory() {
	fmt.Printf("\nPeak memory (child processes: VmHWM of `LoadSeries`, whole Go process; ru_maxrss of the pydicom load):\n\n")
	fmt.Printf("| transfer syntax | tmcad `LoadSeries` | × float32 volume | pydicom + GDCM | × float32 volume | tmcad / pydicom |\n|---|---|---|---|---|---|\n")
	for _, r := range run.results {
		vol := float64(r.mem.VolumeBytes)
		if !r.codec.gdcm {
			fmt.Printf("| %s | %.0f MB | %.2f× | | | |\n", r.codec.name,
				float64(r.mem.HWMAfterKB)*1024/1e6, float64(r.mem.HWMAfterKB)*1024/vol)
			continue
		}
		fmt.Printf("| %s | %.0f MB | %.2f× | %.0f MB | %.2f× | %.2f× |\n", r.codec.name,
			float64(r.mem.HWMAfterKB)*1024/1e6, float64(r.mem.HWMAfterKB)*1024/vol,
			float64(r.peer.LoadMaxRSSKB)*1024/1e6, float64(r.peer.LoadMaxRSSKB)*1024/vol,
			float64(r.mem.HWMAfterKB)/float64(r.peer.LoadMaxRSSKB))
	}
	fmt.Println()
}

// dcmtkVersion is the version dcmcjpeg reports ("3.6.7"), or "?".
func dcmtkVersion() string {
	out, _ := exec.Command("dcmcjpeg", "--version").Output()
	if m := regexp.MustCompile(`v(\d+\.\d+\.\d+)`).FindSubmatch(out); m != nil {
		return string(m[1])
	}
	return "?"
}

// spawnFiles runs this program as a child that loads the series in dir
// once and reports its peak memory.
func spawnFiles(dir string) memResult {
	exe, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	out, err := exec.Command(exe, "-mode", "mem-load", "-files", dir).Output()
	if err != nil {
		log.Fatalf("child mem-load %s: %v", dir, err)
	}
	var r memResult
	if err := json.Unmarshal(out, &r); err != nil {
		log.Fatalf("child mem-load %s: %v: %s", dir, err, out)
	}
	return r
}

// runGDCMPeer runs peer.py's pydicom + GDCM load on the files in dir.
func runGDCMPeer(dir string, reps int) gdcmPeer {
	script := filepath.Join("bench", "dicomio", "peer.py")
	cmd := exec.Command("/usr/bin/python3", script, dir, strconv.Itoa(reps), "gdcm")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		log.Fatalf("peer (pydicom + GDCM) on %s: %v", dir, err)
	}
	var r gdcmPeer
	if err := json.Unmarshal(out, &r); err != nil {
		log.Fatalf("peer (pydicom + GDCM) on %s: %v: %s", dir, err, out)
	}
	return r
}
