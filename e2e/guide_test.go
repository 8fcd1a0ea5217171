package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReportWithoutTarget: a report that describes no target (a normal
// report) and one in a radiologist's own words, through `tmcad run` and
// then `tmcad process` on the same files with the same configuration. Both
// modes decide alike: the normal report's series is done without a model
// run and without a SEG (seg.write_when_empty = false); the other gets its
// SEG, with the same SOP Instance UID in both modes; both say which rule
// made the guide text, and neither logs the report's words.
func TestReportWithoutTarget(t *testing.T) {
	var crs []exampleSeries
	for _, s := range examples {
		if s.Modality == "CR" {
			crs = append(crs, s)
		}
	}
	if len(crs) < 2 {
		t.Fatalf("need two CR example series, have %d", len(crs))
	}
	normal, located := crs[0], crs[1]
	texts := map[string]string{
		normal.Accession: "EXAMINATION: Chest PA\nFINDINGS: The lungs are clear. No focal consolidation, effusion or pneumothorax.\n" +
			"IMPRESSION: No acute cardiopulmonary process.\n",
		located.Accession: "FINDINGS: Heart size normal. Airspace opacity in the RUL; the left lung is clear.\n",
	}
	e := newEnv(t)
	e.cfg.NoEmptySEG = true
	p := e.start()
	for _, s := range []exampleSeries{normal, located} {
		if err := os.WriteFile(filepath.Join(e.cfg.ReportsDir, s.Accession+".txt"), []byte(texts[s.Accession]), 0o644); err != nil {
			t.Fatal(err)
		}
		e.dropSeries(s, 0, 0)
	}
	e.waitArchive(90*time.Second, 1)
	p.waitLog(90*time.Second, "no-target line", func(l logLine) bool {
		return l.str("message") == "the report describes no target; the model did not run" && l.str("series_uid") == normal.SeriesUID
	})
	waitFor(t, 30*time.Second, "both series done", func() bool { return e.status().Series["done"] == 2 })
	p.stop()
	reasons := map[string]string{}
	for _, s := range e.status().LastDone {
		reasons[s.SeriesUID] = s.Reason
	}
	if !strings.HasPrefix(reasons[normal.SeriesUID], "no target described") || !strings.HasPrefix(reasons[located.SeriesUID], "guide: zones (1 zones)") {
		t.Errorf("tmcad status reasons: %q", reasons)
	}

	logs := e.allLogs()
	for _, w := range []string{"airspace", "Airspace", "acute", "RUL"} {
		if strings.Contains(logs, w) {
			t.Errorf("the daemon's log holds the report's word %q", w)
		}
	}
	if !strings.Contains(logs, `"guide":"zones (1 zones)`) {
		t.Errorf("the log does not say which rule made the guide text")
	}
	segs := archiveSEGs(t, e.cfg.ArchiveDir)
	if len(segs) != 1 || segs[0].ReferencedSeries[0] != located.SeriesUID {
		t.Fatalf("archive holds %d SEGs, want one for the located report's series", len(segs))
	}
	runSOP := segs[0].SOP

	// The same inputs through `tmcad process`.
	archive := filepath.Join(e.dir, "process-archive")
	masks := filepath.Join(e.dir, "process-masks")
	cmd := exec.Command(tmcadBin, "process", "--config", e.cfgPath, "--input", e.cfg.DICOMDir, "--reports", e.cfg.ReportsDir,
		"--archive", archive, "--masks-png", masks, "--log-level", "warn")
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tmcad process: %v\n%s", err, out)
	}
	var sum struct {
		Series []struct {
			SeriesUID string `json:"series_uid"`
			Guide     string `json:"guide"`
			NoTarget  bool   `json:"no_target"`
			Output    string `json:"output"`
		} `json:"series"`
	}
	b, err := os.ReadFile(filepath.Join(masks, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	for _, r := range sum.Series {
		switch r.SeriesUID {
		case normal.SeriesUID:
			if !r.NoTarget || !strings.HasPrefix(r.Guide, "no_target") {
				t.Errorf("process: normal report's series: no_target %v, guide %q", r.NoTarget, r.Guide)
			}
		case located.SeriesUID:
			if r.NoTarget || !strings.HasPrefix(r.Guide, "zones (1 zones)") {
				t.Errorf("process: located report's series: no_target %v, guide %q", r.NoTarget, r.Guide)
			}
		}
	}
	psegs := archiveSEGs(t, archive)
	if len(psegs) != 1 || psegs[0].SOP != runSOP {
		t.Errorf("process wrote %d SEGs; want one, SOP %s as run made", len(psegs), runSOP)
	}
	if !strings.Contains(string(out), "1 series segmented, 1 without a target in their report") {
		t.Errorf("process summary:\n%s", out)
	}
}
