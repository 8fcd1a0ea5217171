package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGPUScriptDryRun runs bench/gpu.sh — the GPU check a GPU host runs —
// with DRY_RUN=1: every step (building, exporting the paper preset with its
// reference, parity and speed of both presets, `tmcad process` with the
// paper preset, the report) on the CPU provider, the section written into a
// copy of bench/RESULTS.md, so that the script is known to work before a GPU
// host runs it.
func TestGPUScriptDryRun(t *testing.T) {
	out := t.TempDir()
	cmd := exec.Command("bash", "bench/gpu.sh")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "DRY_RUN=1", "OUT="+out)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bench/gpu.sh dry run: %v\n%s", err, b)
	}
	sec, err := os.ReadFile(filepath.Join(out, "RESULTS.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"`tmca-cxr-compact@", "`tmca-paper-random@0.0.0`: parity with PyTorch on cpu",
		"| 2 |", "6 series segmented, 0 without a target in their report, 0 failed", "<!-- gpu:end -->"} {
		if !strings.Contains(string(sec), want) {
			t.Errorf("the dry run's section lacks %q:\n%s", want, b)
		}
	}
	orig, err := os.ReadFile(filepath.Join(repoRoot, "bench", "RESULTS.md"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(orig), "dry run (no GPU)") {
		t.Error("the dry run wrote into bench/RESULTS.md")
	}
}
