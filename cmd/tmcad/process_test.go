package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const tinyModel = repoRoot + "/testdata/model-tiny"

// copyTree copies a folder tree (the example studies) so a test can change it.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func countFiles(t *testing.T, root, suffix string) int {
	n := 0
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && strings.HasSuffix(p, suffix) {
			n++
		}
		return nil
	})
	return n
}

// The one-shot batch through the real path (dicomio, reports, engine,
// writer, filesystem sink) on the example studies, with the 16×16 stand-in
// model: every series gets a SEG; a series without its report fails the
// run with the reason; a stray non-DICOM file is skipped with a warning.
func TestProcessExamples(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "examples")
	copyTree(t, repoRoot+"/examples", in)
	archive := filepath.Join(dir, "archive")
	code, out, errs := runCLI(t, "process", "--input", filepath.Join(in, "dicom"), "--reports", filepath.Join(in, "reports"),
		"--archive", archive, "--model", tinyModel, "--masks-png", filepath.Join(dir, "masks"))
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if got := countFiles(t, archive, ".dcm"); got != 6 {
		t.Fatalf("%d SEGs in the archive, want 6\n%s", got, out)
	}
	if !strings.Contains(out, "6 series segmented, 0 without a target in their report, 0 failed, 0 skipped") || !strings.Contains(out, "matched by accession") {
		t.Fatalf("summary:\n%s", out)
	}
	if got := countFiles(t, filepath.Join(dir, "masks"), ".png"); got != 4+2*20 {
		t.Fatalf("%d PNG masks, want 44", got)
	}

	// Again, with one report gone and a stray file: exit 1, the reason named.
	reps, _ := filepath.Glob(filepath.Join(in, "reports", "*.txt"))
	if err := os.Remove(reps[0]); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in, "dicom", "notes.txt"), []byte("not DICOM"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCLI(t, "process", "--input", filepath.Join(in, "dicom"), "--reports", filepath.Join(in, "reports"),
		"--archive", filepath.Join(dir, "archive2"), "--model", tinyModel)
	if code != 1 {
		t.Fatalf("exit %d with a report missing, want 1\n%s", code, out)
	}
	if !strings.Contains(out, "5 series segmented, 0 without a target in their report, 1 failed") || !strings.Contains(out, "FAILED: no report") {
		t.Fatalf("summary:\n%s", out)
	}
	if !strings.Contains(errs, "notes.txt") {
		t.Errorf("the stray file is not named in the log:\n%s", errs)
	}
}

// `tmcad preview` renders a SEG written by `tmcad process` over its source.
func TestPreviewFromProcessedSEG(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "archive")
	code, out, errs := runCLI(t, "process", "--input", repoRoot+"/examples/dicom", "--reports", repoRoot+"/examples/reports",
		"--archive", archive, "--model", tinyModel)
	if code != 0 {
		t.Fatalf("process: exit %d\n%s\n%s", code, out, errs)
	}
	var seg string
	filepath.Walk(archive, func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".dcm") && seg == "" {
			seg = p
		}
		return nil
	})
	png := filepath.Join(dir, "preview.png")
	code, out, errs = runCLI(t, "preview", seg, "--source", repoRoot+"/examples/dicom", "-o", png)
	if code != 0 {
		t.Fatalf("preview: exit %d\n%s\n%s", code, out, errs)
	}
	b, err := os.ReadFile(png)
	if err != nil || len(b) < 8 || string(b[1:4]) != "PNG" {
		t.Fatalf("preview is not a PNG: %v", err)
	}
	code, _, errs = runCLI(t, "preview", seg, "--source", t.TempDir(), "-o", png)
	if code != 1 || !strings.Contains(errs, "none of the") {
		t.Fatalf("preview without the source: exit %d, %s", code, errs)
	}
}

// A series whose headers read but whose pixel data does not decode (found
// while the model already runs on the frames decoded so far) fails alone,
// with its reason; the series batched beside it are still segmented.
func TestProcessUndecodableSeriesFailsAlone(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "examples")
	copyTree(t, repoRoot+"/examples", in)
	b, err := os.ReadFile(repoRoot + "/dicomio/testdata/ts/jpeg_baseline.dcm")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), "\xff\xd8\xff")
	if i < 0 {
		t.Fatal("no JPEG start of image in the fixture")
	}
	b[i], b[i+1] = 0, 0 // the header pass accepts it; decoding does not
	// An original image, so that the selection rules keep it (same length).
	b = []byte(strings.Replace(string(b), `DERIVED\PRIMARY\AXIAL`, `ORIGINAL\PRIMARY     `, 1))
	if err := os.WriteFile(filepath.Join(in, "dicom", "broken-cr.dcm"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in, "reports", "ACC0001.txt"), []byte("Opacity in the right lower lung.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "archive")
	code, out, errs := runCLI(t, "process", "--input", filepath.Join(in, "dicom"), "--reports", filepath.Join(in, "reports"),
		"--archive", archive, "--model", tinyModel, "--batch-size", "4")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "6 series segmented, 0 without a target in their report, 1 failed") || !strings.Contains(out, "missing SOI marker") {
		t.Fatalf("summary:\n%s", out)
	}
	if got := countFiles(t, archive, ".dcm"); got != 6 {
		t.Fatalf("%d SEGs in the archive, want 6\n%s", got, out)
	}
	if !strings.Contains(errs, "broken-cr.dcm") {
		t.Errorf("the broken file is not named in the log:\n%s", errs)
	}
}

// A report that describes no target gives, by default, an empty SEG that
// passes dciodvfy and no model run; with reports.no_target = "run" the
// model reads the report's text anyway.
func TestProcessNoTargetOutcomes(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "examples")
	copyTree(t, repoRoot+"/examples", in)
	// A0000001643 is a CR study of the examples.
	normal := "FINDINGS: The lungs are clear. No pleural effusion.\nIMPRESSION: No acute cardiopulmonary process.\n"
	if err := os.WriteFile(filepath.Join(in, "reports", "A0000001643.txt"), []byte(normal), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"record", "run"} {
		cfg := filepath.Join(dir, mode+".toml")
		if err := os.WriteFile(cfg, []byte("[reports]\nno_target = \""+mode+"\"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		archive, masks := filepath.Join(dir, mode, "archive"), filepath.Join(dir, mode, "masks")
		code, out, errs := runCLI(t, "process", "--config", cfg, "--input", filepath.Join(in, "dicom"), "--reports", filepath.Join(in, "reports"),
			"--archive", archive, "--masks-png", masks, "--model", shippedModel, "--log-level", "warn")
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s\n%s", mode, code, out, errs)
		}
		var sum struct {
			Series []struct {
				Guide    string `json:"guide"`
				NoTarget bool   `json:"no_target"`
				Output   string `json:"output"`
				Masks    []any  `json:"masks"`
			} `json:"series"`
		}
		b, err := os.ReadFile(filepath.Join(masks, "summary.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &sum); err != nil {
			t.Fatal(err)
		}
		noTarget := 0
		for _, r := range sum.Series {
			if !strings.HasPrefix(r.Guide, "no_target") {
				continue
			}
			noTarget++
			if r.NoTarget != (mode == "record") || (mode == "record") == (len(r.Masks) > 0) {
				t.Errorf("%s: no_target %v with %d masks", mode, r.NoTarget, len(r.Masks))
			}
			if mode == "record" {
				if out, err := exec.Command("dciodvfy", r.Output).CombinedOutput(); err != nil || strings.Contains(string(out), "Error") {
					t.Errorf("empty SEG %s: dciodvfy: %v\n%s", r.Output, err, out)
				}
			}
		}
		if noTarget != 1 || countFiles(t, archive, ".dcm") != 6 {
			t.Errorf("%s: %d series without a target, %d SEGs\n%s", mode, noTarget, countFiles(t, archive, ".dcm"), out)
		}
	}
}
