package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"tmcad/segment"
)

// TestPaperPresetFromPretrainedLayouts: the paper preset (ConvNeXt-Tiny
// image encoder, BERT-base-sized text encoder, 224²) initialised from
// checkpoints in the published layouts — torchvision's ConvNeXt-Tiny state
// dict and a Hugging Face BERT folder, random weights since none can be
// downloaded here — trains for two steps on phantoms, exports, matches
// PyTorch through the Go engine within 1e-4, and runs through
// `tmcad process` on the example studies unchanged.
func TestPaperPresetFromPretrainedLayouts(t *testing.T) {
	dir := t.TempDir()
	py := func(args ...string) {
		t.Helper()
		cmd := exec.Command("/usr/bin/python3", args...)
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("python3 %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	py("testdata/gen/paper/checkpoints.py", "--out", dir)
	py("-m", "tmca.train", "--preset", "paper", "--family", "cxr", "--n-train", "4", "--n-test", "2", "--steps", "2",
		"--batch-size", "2", "--init-image", filepath.Join(dir, "convnext_tiny.pth"), "--init-text", filepath.Join(dir, "bert"),
		"--no-eval", "--threads", "2", "--out", filepath.Join(dir, "run"))
	model := filepath.Join(dir, "model")
	py("-m", "tmca.export", "--checkpoint", filepath.Join(dir, "run", "checkpoint.pt"), "--out", model,
		"--name", "tmca-paper-check", "--version", "0.0.1", "--threads", "2")

	m, err := segment.LoadManifest(model)
	if err != nil {
		t.Fatal(err)
	}
	if m.Image.Height != 224 || m.Tokenizer.MaxLength != 24 {
		t.Fatalf("exported manifest: image %dx%d, %d tokens; want the paper preset's 224x224", m.Image.Height, m.Image.Width, m.Tokenizer.MaxLength)
	}
	ref, err := segment.LoadReference(m)
	if err != nil {
		t.Fatal(err)
	}
	lib, err := segment.ResolveLibrary("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := segment.InitRuntime(lib); err != nil {
		t.Fatal(err)
	}
	for _, bs := range []int{4, 1} {
		e, err := segment.NewEngine(m, segment.Options{BatchSize: bs})
		if err != nil {
			t.Fatal(err)
		}
		worst, err := ref.MaxAbsDifference(e, bs)
		e.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("paper preset, batch %d: max abs difference from PyTorch %.3g", bs, worst)
		if worst > 1e-4 {
			t.Errorf("batch %d: max abs difference %.3g > 1e-4", bs, worst)
		}
	}

	archive := filepath.Join(dir, "archive")
	code, out, errs := runCLI(t, "process", "--input", repoRoot+"/examples/dicom", "--reports", repoRoot+"/examples/reports",
		"--archive", archive, "--model", model, "--log-level", "warn")
	if code != 0 || !strings.Contains(out, "model tmca-paper-check@0.0.1") {
		t.Fatalf("tmcad process with the paper preset: exit %d\n%s\n%s", code, out, errs)
	}
	if n := countFiles(t, archive, ".dcm"); n != 6 {
		t.Errorf("%d SEGs, want one per example series (6)\n%s", n, out)
	}
}
