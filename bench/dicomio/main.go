// Command dicomio benchmarks tmcad's DICOM reading against pydicom on the
// same files in the same run: header cataloguing (files/s), LoadSeries
// throughput (MB/s of files), and peak memory (VmHWM of a child process) of
// LoadSeries on a 300-slice 512×512 CT relative to the float32 volume it
// returns. Its compressed section measures LoadSeries on a 300-slice
// 512×512 CT phantom in JPEG Lossless SV1, JPEG-LS lossless, JPEG 2000
// lossless, JPEG Extended 12-bit and HTJ2K lossless against gdcmconv --raw
// (HTJ2K: ojph_expand) followed by LoadSeries of the native copies, and
// against pydicom decoding through GDCM, on the same files.
// Run from the repository root:
//
//	go run ./bench/dicomio [-dir /tmp/tmcad-bench-dicomio] [-slices 300] [-size 512] [-section all|native|compressed]
//
// It prints a Markdown section per part for bench/RESULTS.md.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/frame"

	"tmcad/dicomio"
)

type memResult struct {
	Mode        string  `json:"mode"`
	VolumeBytes int64   `json:"volume_bytes"`
	HWMBeforeKB int64   `json:"hwm_before_kb"`
	HWMAfterKB  int64   `json:"hwm_after_kb"`
	Seconds     float64 `json:"seconds"`
}

type peerResult struct {
	HeaderFilesPerSec float64 `json:"header_files_per_s"`
	LoadMBPerSec      float64 `json:"load_mb_per_s"`
	LoadMaxRSSKB      int64   `json:"load_maxrss_kb"`
	VolumeBytes       int64   `json:"volume_bytes"`
	Pydicom           string  `json:"pydicom"`
}

func main() {
	dir := flag.String("dir", filepath.Join(os.TempDir(), "tmcad-bench-dicomio"), "where the generated series lives")
	slices := flag.Int("slices", 300, "slices in the generated CT")
	size := flag.Int("size", 512, "rows and columns of the generated CT")
	mode := flag.String("mode", "all", "all | mem-load | mem-library (child modes)")
	section := flag.String("section", "all", "all | native | compressed: which sections to measure")
	files := flag.String("files", "", "mem-load child: load the *.dcm files in this folder instead of the generated series")
	reps := flag.Int("reps", 3, "repetitions (best is reported)")
	flag.Parse()
	log.SetFlags(0)
	if *mode == "mem-load" && *files != "" {
		paths, err := filepath.Glob(filepath.Join(*files, "*.dcm"))
		if err != nil || len(paths) == 0 {
			log.Fatalf("no DICOM files in %s (%v)", *files, err)
		}
		_ = json.NewEncoder(os.Stdout).Encode(memChild(*mode, paths, *size))
		return
	}
	switch *section {
	case "all", "native":
	case "compressed":
		benchCompressed(*dir, *slices, *size, *reps)
		return
	default:
		log.Fatalf("-section %q: want all, native or compressed", *section)
	}
	paths, err := ensureSeries(*dir, *slices, *size)
	if err != nil {
		log.Fatal(err)
	}
	switch *mode {
	case "mem-load", "mem-library":
		r := memChild(*mode, paths, *size)
		_ = json.NewEncoder(os.Stdout).Encode(r)
		return
	}
	var fileBytes int64
	for _, p := range paths {
		st, _ := os.Stat(p)
		fileBytes += st.Size()
	}
	// Header cataloguing.
	hdrRate := 0.0
	for r := 0; r < *reps*3; r++ {
		t0 := time.Now()
		for _, p := range paths {
			if _, err := dicomio.ReadHeader(p); err != nil {
				log.Fatal(err)
			}
		}
		hdrRate = max(hdrRate, float64(len(paths))/time.Since(t0).Seconds())
	}
	// LoadSeries throughput (in process).
	loadRate := 0.0
	for r := 0; r < *reps; r++ {
		t0 := time.Now()
		s, err := dicomio.LoadSeries(paths, dicomio.Limits{})
		if err != nil {
			log.Fatal(err)
		}
		loadRate = max(loadRate, float64(fileBytes)/1e6/time.Since(t0).Seconds())
		runtime.KeepAlive(s)
		s = nil
		runtime.GC()
	}
	memLoad := spawn("mem-load", *dir, *slices, *size)
	memLib := spawn("mem-library", *dir, *slices, *size)
	peer := runPeer(*dir, *reps)

	host, _ := os.Hostname()
	cpu := cpuModel()
	vol := float64(memLoad.VolumeBytes)
	fmt.Printf("## dicomio: header cataloguing, LoadSeries throughput and memory\n\n")
	fmt.Printf("Measured %s on %s (%s, %d CPUs visible, shared with other work; %s), `go run ./bench/dicomio -reps %d`; peer: Debian python3-pydicom %s via /usr/bin/python3 on the same files in the same run (`bench/dicomio/peer.py`). Series: %d slices %d×%d CT, explicit VR little endian, 16-bit signed, %.1f MB of files; float32 volume %.1f MB. Best of the repetitions.\n\n",
		time.Now().UTC().Format("2006-01-02"), host, cpu, runtime.NumCPU(), runtime.Version(), *reps, peer.Pydicom, *slices, *size, *size, float64(fileBytes)/1e6, vol/1e6)
	fmt.Printf("| measure | tmcad dicomio | pydicom | ratio (tmcad / pydicom) |\n|---|---|---|---|\n")
	fmt.Printf("| header cataloguing (`ReadHeader` vs `dcmread(stop_before_pixels=True)`) | %.0f files/s | %.0f files/s | %.1f× |\n", hdrRate, peer.HeaderFilesPerSec, hdrRate/peer.HeaderFilesPerSec)
	fmt.Printf("| series load to float32 HU (`LoadSeries` vs `dcmread` + `pixel_array` + `apply_modality_lut`, stacked) | %.0f MB/s | %.0f MB/s | %.1f× |\n", loadRate, peer.LoadMBPerSec, loadRate/peer.LoadMBPerSec)
	fmt.Printf("| peak RSS of the load (child process VmHWM / ru_maxrss) | %.0f MB (%.2f× volume) | %.0f MB (%.2f× volume) | %.2f× |\n\n",
		float64(memLoad.HWMAfterKB)*1024/1e6, float64(memLoad.HWMAfterKB)*1024/vol,
		float64(peer.LoadMaxRSSKB)*1024/1e6, float64(peer.LoadMaxRSSKB)*1024/vol,
		float64(memLoad.HWMAfterKB)/float64(peer.LoadMaxRSSKB))
	fmt.Printf("Peak memory of `LoadSeries` (whole process, Go runtime included, %.0f MB before loading): %.0f MB = **%.2f× the float32 volume** (bound: 2.5×). ",
		float64(memLoad.HWMBeforeKB)*1024/1e6, float64(memLoad.HWMAfterKB)*1024/1e6, float64(memLoad.HWMAfterKB)*1024/vol)
	fmt.Printf("For comparison, parsing each file fully with suyashkumar/dicom v1.1.0 (`ParseFile` with pixel data) and converting its frame into the same float32 volume peaks at %.0f MB = %.2f× the volume (%.1f s vs %.1f s for LoadSeries in its child). LoadSeries parses headers with the library up to (7FE0,0010) only and converts native pixel data from the file straight into the volume in 256 KiB chunks.\n\n",
		float64(memLib.HWMAfterKB)*1024/1e6, float64(memLib.HWMAfterKB)*1024/vol, memLib.Seconds, memLoad.Seconds)
	if *section == "all" {
		benchCompressed(*dir, *slices, *size, *reps)
	}
}

// spawn runs this program as a child in a memory mode and decodes its result.
func spawn(mode, dir string, slices, size int) memResult {
	exe, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	out, err := exec.Command(exe, "-mode", mode, "-dir", dir, "-slices", strconv.Itoa(slices), "-size", strconv.Itoa(size)).Output()
	if err != nil {
		log.Fatalf("child %s: %v", mode, err)
	}
	var r memResult
	if err := json.Unmarshal(out, &r); err != nil {
		log.Fatalf("child %s: %v: %s", mode, err, out)
	}
	return r
}

// memChild loads the series once and reports VmHWM.
func memChild(mode string, paths []string, size int) memResult {
	r := memResult{Mode: mode, HWMBeforeKB: vmHWM()}
	t0 := time.Now()
	switch mode {
	case "mem-load":
		s, err := dicomio.LoadSeries(paths, dicomio.Limits{})
		if err != nil {
			log.Fatal(err)
		}
		r.VolumeBytes = s.VolumeBytes()
		runtime.KeepAlive(s)
	case "mem-library":
		npix := size * size
		vol := make([]float32, npix*len(paths))
		for i, p := range paths {
			ds, err := dicom.ParseFile(p, nil)
			if err != nil {
				log.Fatal(err)
			}
			e, err := ds.FindElementByTag(dicomTagPixelData)
			if err != nil {
				log.Fatal(err)
			}
			info := dicom.MustGetPixelDataInfo(e.Value)
			nf, err := info.Frames[0].GetNativeFrame()
			if err != nil {
				log.Fatal(err)
			}
			convertNative(vol[i*npix:(i+1)*npix], nf)
		}
		r.VolumeBytes = int64(len(vol)) * 4
		runtime.KeepAlive(vol)
	}
	r.Seconds = time.Since(t0).Seconds()
	r.HWMAfterKB = vmHWM()
	return r
}

func convertNative(dst []float32, nf frame.INativeFrame) {
	raw, ok := nf.RawDataSlice().([]uint16)
	if !ok || len(raw) < len(dst) {
		log.Fatalf("unexpected native frame %T", nf.RawDataSlice())
	}
	for i := range dst {
		dst[i] = float32(int16(raw[i])) - 1024
	}
}

// vmHWM reads the peak resident set size (kB) from /proc/self/status.
func vmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ":"))
		}
	}
	return runtime.GOARCH
}

// runPeer runs peer.py (pydicom) on the same files.
func runPeer(dir string, reps int) peerResult {
	script := filepath.Join("bench", "dicomio", "peer.py")
	out, err := exec.Command("/usr/bin/python3", script, dir, strconv.Itoa(reps)).Output()
	if err != nil {
		log.Fatalf("peer: %v", err)
	}
	var r peerResult
	if err := json.Unmarshal(out, &r); err != nil {
		log.Fatalf("peer: %v: %s", err, out)
	}
	return r
}
