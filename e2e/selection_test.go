package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestLocalizerRunAndProcessAgree: a CT series that carries a localizer
// (a scout of another orientation, ImageType …\LOCALIZER) goes through
// `tmcad run` and `tmcad process` with one selection rule: both leave the
// localizer out and segment the 20 axial slices, with the same SEG UIDs.
func TestLocalizerRunAndProcessAgree(t *testing.T) {
	var ct exampleSeries
	for _, s := range examples {
		if s.Modality == "CT" {
			ct = s
			break
		}
	}
	e := newEnv(t)
	scout := filepath.Join(e.dir, "scout.dcm")
	mk := exec.Command("/usr/bin/python3", "-c", `
import sys, pydicom
from pydicom.uid import generate_uid
ds = pydicom.dcmread(sys.argv[1])
ds.SOPInstanceUID = "2.25.90000000000000000000000000000000001"
ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
ds.ImageOrientationPatient = ["0", "1", "0", "0", "0", "-1"]
ds.InstanceNumber = 99
ds.save_as(sys.argv[2], write_like_original=False)
`, ct.paths()[0], scout)
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("making the localizer: %v\n%s", err, out)
	}
	p := e.start()
	e.dropReport(ct)
	e.dropSeries(ct, 0, 0)
	copyFile(t, scout, filepath.Join(e.cfg.DICOMDir, "scout", "scout.dcm"))
	e.waitArchive(120*time.Second, 1)
	p.stop()
	runSEGs := archiveSEGs(t, e.cfg.ArchiveDir)
	if len(runSEGs) != 1 {
		t.Fatalf("run: %d SEGs, want 1", len(runSEGs))
	}
	if slices.Contains(runSEGs[0].ReferencedSOPs, "2.25.90000000000000000000000000000000001") || len(runSEGs[0].ReferencedSOPs) != len(ct.SOPUIDs) {
		t.Errorf("run: the SEG references %d instances (localizer included: %v), want the %d axial slices",
			len(runSEGs[0].ReferencedSOPs), slices.Contains(runSEGs[0].ReferencedSOPs, "2.25.90000000000000000000000000000000001"), len(ct.SOPUIDs))
	}

	archive := filepath.Join(e.dir, "process-archive")
	masks := filepath.Join(e.dir, "process-masks")
	cmd := exec.Command(tmcadBin, "process", "--config", e.cfgPath, "--input", e.cfg.DICOMDir, "--reports", e.cfg.ReportsDir,
		"--archive", archive, "--masks-png", masks, "--log-level", "warn")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tmcad process: %v\n%s", err, out)
	}
	procSEGs := archiveSEGs(t, archive)
	if len(procSEGs) != 1 || procSEGs[0].SOP != runSEGs[0].SOP {
		t.Fatalf("process: %d SEGs; want one with the SOP Instance UID run made (%s)", len(procSEGs), runSEGs[0].SOP)
	}
	var sum struct {
		Series []struct {
			Frames int `json:"frames"`
		} `json:"series"`
	}
	b, err := os.ReadFile(filepath.Join(masks, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sum); err != nil || len(sum.Series) != 1 || sum.Series[0].Frames != len(ct.SOPUIDs) {
		t.Errorf("process summary: %+v (%v), want one series of %d frames", sum, err, len(ct.SOPUIDs))
	}
}
