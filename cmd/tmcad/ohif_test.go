package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"tmcad/internal/testpeers"
	"tmcad/writer"
)

// ohifDir holds OHIF's SEG loader (package.json, package-lock.json, the
// loader script); `make deps` installs the packages into its node_modules.
const ohifDir = repoRoot + "/testdata/ohif"

// ohifPins are the packages the loader must find installed, at these
// versions: the SEG adapter OHIF uses and the dcmjs it reads DICOM with.
var ohifPins = map[string]string{
	"@cornerstonejs/adapters": "5.14.0",
	"@cornerstonejs/core":     "5.14.0",
	"dcmjs":                   "0.52.2",
}

// requireOHIFLoader fails the test, naming `make deps`, when node or the
// pinned packages are missing.
func requireOHIFLoader(t *testing.T) string {
	t.Helper()
	node := testpeers.RequireTool(t, "node")
	for pkg, want := range ohifPins {
		b, err := os.ReadFile(filepath.Join(ohifDir, "node_modules", pkg, "package.json"))
		if err != nil {
			t.Fatalf("OHIF's SEG loader is not installed (%v): run `make deps`", err)
		}
		var p struct{ Version string }
		if err := json.Unmarshal(b, &p); err != nil || p.Version != want {
			t.Fatalf("%s is %q in %s/node_modules, want %s: run `make deps`", pkg, p.Version, ohifDir, want)
		}
	}
	return node
}

// ohifResult is what testdata/ohif/seg-labelmap.mjs prints for one SEG.
type ohifResult struct {
	SEG      string `json:"seg"`
	Error    string `json:"error"`
	Segments []struct {
		Number int       `json:"number"`
		Label  string    `json:"label"`
		CIELab []int     `json:"cielab"`
		RGB    []float64 `json:"rgb"`
	} `json:"segments"`
	Labelmaps []struct {
		SOP     string   `json:"sop"`
		Rows    int      `json:"rows"`
		Columns int      `json:"columns"`
		Groups  []string `json:"groups"`
	} `json:"labelmaps"`
}

// TestOHIFLoadsEverySEG runs `tmcad process` with the shipped model on the
// example studies (CR and CT) and loads every SEG with OHIF's own SEG loader
// (the Cornerstone3D SEG adapter over dcmjs, from npm): each must load, and
// the label map OHIF would display must equal tmcad's masks (the PNGs of
// --masks-png, and the SEG's own frames) pixel for pixel, in the colour the
// SEG recommends.
func TestOHIFLoadsEverySEG(t *testing.T) {
	node := requireOHIFLoader(t)
	dir := t.TempDir()
	archive, masks := filepath.Join(dir, "archive"), filepath.Join(dir, "masks")
	if err := os.MkdirAll(archive, 0o755); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "process", "--input", repoRoot+"/examples/dicom", "--reports", repoRoot+"/examples/reports",
		"--archive", archive, "--masks-png", masks, "--model", shippedModel, "--log-level", "warn")
	if code != 0 {
		t.Fatalf("tmcad process exit %d\n%s\n%s", code, stdout, stderr)
	}

	var sum struct {
		Series []struct {
			SeriesUID string `json:"series_uid"`
			Modality  string `json:"modality"`
			Output    string `json:"output"`
			Masks     []struct {
				SOP  string `json:"sop_instance_uid"`
				File string `json:"file"`
			} `json:"masks"`
		} `json:"series"`
	}
	readJSON(t, filepath.Join(masks, "summary.json"), &sum)
	var cases struct {
		Series []struct {
			SeriesUID string   `json:"series_instance_uid"`
			Files     []string `json:"files"`
		} `json:"series"`
	}
	readJSON(t, repoRoot+"/examples/cases.json", &cases)
	sources := map[string][]string{}
	for _, c := range cases.Series {
		for _, f := range c.Files {
			p, err := filepath.Abs(filepath.Join(repoRoot, "examples", f))
			if err != nil {
				t.Fatal(err)
			}
			sources[c.SeriesUID] = append(sources[c.SeriesUID], p)
		}
	}

	type job struct {
		SEG     string   `json:"seg"`
		Sources []string `json:"sources"`
	}
	var jobs []job
	modality := map[string]string{}
	pngOf := map[string]string{}
	for _, s := range sum.Series {
		if len(sources[s.SeriesUID]) == 0 || s.Output == "" {
			t.Fatalf("series %s: no source files in examples/cases.json or no SEG written", s.SeriesUID)
		}
		seg, err := filepath.Abs(s.Output)
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, job{seg, sources[s.SeriesUID]})
		modality[seg] = s.Modality
		for _, m := range s.Masks {
			pngOf[m.SOP] = filepath.Join(masks, m.File)
		}
	}
	if len(jobs) != 6 {
		t.Fatalf("%d SEGs written, want 6 (4 CR, 2 CT)", len(jobs))
	}
	jobsPath := filepath.Join(dir, "jobs.json")
	b, _ := json.Marshal(map[string]any{"jobs": jobs})
	if err := os.WriteFile(jobsPath, b, 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "seg-labelmap.mjs", jobsPath)
	cmd.Dir = ohifDir
	cmd.Stderr = &limitedBuffer{max: 8192}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("OHIF's SEG loader did not run: %v\n%s", err, cmd.Stderr)
	}
	var res struct {
		Results []ohifResult `json:"results"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("reading the loader's output: %v\n%.2000s", err, out)
	}
	if len(res.Results) != len(jobs) {
		t.Fatalf("the loader answered for %d SEGs, want %d", len(res.Results), len(jobs))
	}

	seen := map[string]int{}
	for _, r := range res.Results {
		name := modality[r.SEG] + " " + filepath.Base(r.SEG)
		if r.Error != "" {
			t.Errorf("%s: OHIF's SEG loader rejects it:\n%s", name, r.Error)
			continue
		}
		data, err := os.ReadFile(r.SEG)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := writer.ReadSEG(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		compared, set, bad := checkOHIFLabelmaps(t, name, r, dec, pngOf)
		checkOHIFColors(t, name, r)
		seen[modality[r.SEG]]++
		if bad == 0 {
			t.Logf("%s: loaded; %d source frames, %d pixels compared, %d segmented, all equal", name, len(r.Labelmaps), compared, set)
		}
	}
	if seen["CR"] != 4 || seen["CT"] != 2 {
		t.Errorf("SEGs loaded by modality: %v, want 4 CR and 2 CT", seen)
	}
}

// checkOHIFLabelmaps compares the adapter's label maps with the SEG's own
// frames and with the PNG masks, pixel for pixel, and returns how many
// pixels it compared, how many of them were segmented and how many differ.
func checkOHIFLabelmaps(t *testing.T, name string, r ohifResult, dec *writer.DecodedSEG, pngOf map[string]string) (compared, set, differ int) {
	t.Helper()
	n := dec.Rows * dec.Columns
	// want[sop][segment] is the SEG's frame for that source and segment.
	want := map[string]map[int][]byte{}
	for _, f := range dec.Frames {
		if want[f.SourceSOP] == nil {
			want[f.SourceSOP] = map[int][]byte{}
		}
		want[f.SourceSOP][f.Segment] = f.Pixels
	}
	for _, lm := range r.Labelmaps {
		if lm.Rows != dec.Rows || lm.Columns != dec.Columns {
			t.Errorf("%s: source %s is %dx%d, the SEG %dx%d", name, lm.SOP, lm.Rows, lm.Columns, dec.Rows, dec.Columns)
			continue
		}
		groups := make([][]byte, len(lm.Groups))
		for g, enc := range lm.Groups {
			px, err := base64.StdEncoding.DecodeString(enc)
			if err != nil || (len(px) != 0 && len(px) != n) {
				t.Fatalf("%s: label map %d of source %s: %d bytes, %v", name, g, lm.SOP, len(px), err)
			}
			groups[g] = px
		}
		png := readGray(t, pngOf[lm.SOP])
		if png.Rect.Dx() != dec.Columns || png.Rect.Dy() != dec.Rows {
			t.Fatalf("%s: mask PNG of %s is %v", name, lm.SOP, png.Rect)
		}
		bad := 0
		for i := 0; i < n; i++ {
			shownAny := false
			for _, seg := range r.Segments {
				shown := false
				for _, px := range groups {
					if len(px) == n && int(px[i]) == seg.Number {
						shown = true
					}
				}
				inSEG := want[lm.SOP][seg.Number] != nil && want[lm.SOP][seg.Number][i] != 0
				if shown != inSEG {
					bad++
				}
				shownAny = shownAny || shown
			}
			if shownAny != (png.Pix[(i/dec.Columns)*png.Stride+i%dec.Columns] != 0) {
				bad++
			}
			if shownAny {
				set++
			}
			compared++
		}
		if bad > 0 {
			t.Errorf("%s: source %s: %d pixels differ between OHIF's label map and tmcad's masks", name, lm.SOP, bad)
		}
		differ += bad
	}
	for sop := range want {
		found := false
		for _, lm := range r.Labelmaps {
			found = found || lm.SOP == sop
		}
		if !found {
			t.Errorf("%s: the SEG segments source %s, which OHIF did not place", name, sop)
			differ++
		}
	}
	return compared, set, differ
}

// checkOHIFColors: every segment carries Recommended Display CIELab Value,
// and the colour OHIF turns it into is the segment's colour (the shipped
// manifest names none, so the writer's default).
func checkOHIFColors(t *testing.T, name string, r ohifResult) {
	t.Helper()
	for _, s := range r.Segments {
		want := writer.DefaultColor(s.Number)
		lab := want.CIELab()
		if len(s.CIELab) != 3 || s.CIELab[0] != int(lab[0]) || s.CIELab[1] != int(lab[1]) || s.CIELab[2] != int(lab[2]) {
			t.Errorf("%s: segment %d RecommendedDisplayCIELabValue %v, want %v", name, s.Number, s.CIELab, lab)
		}
		if len(s.RGB) != 3 || s.RGB[0] != float64(want[0]) || s.RGB[1] != float64(want[1]) || s.RGB[2] != float64(want[2]) {
			t.Errorf("%s: segment %d is shown in RGB %v, want %v", name, s.Number, s.RGB, want)
		}
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// limitedBuffer keeps the first max bytes written to it (a child's stderr
// for the failure message).
type limitedBuffer struct {
	max int
	b   []byte
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }
