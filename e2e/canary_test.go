package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Canary values: the PHI of a made-up patient, distinctive enough that any
// occurrence anywhere is a leak.
const (
	canaryFamily    = "QUOKKAFAMILY"
	canaryGiven     = "WOMBATGIVEN"
	canaryPatientID = "PIDCANARY7731"
	canaryBirthDate = "19070615"
	canaryAccession = "ACCCANARY5521"
	canaryPhrase    = "zebracanary sighting"
)

// canaries are the strings no log, metric, status output or state file may
// hold (compared case-insensitively), with the birth date also as an ISO
// date.
var canaries = []string{canaryFamily, canaryGiven, canaryPatientID, canaryBirthDate, "1907-06-15", canaryAccession, canaryPhrase}

// findCanaries returns the canaries in b.
func findCanaries(b []byte) []string {
	low := bytes.ToLower(b)
	var out []string
	for _, c := range canaries {
		if bytes.Contains(low, []byte(strings.ToLower(c))) {
			out = append(out, c)
		}
	}
	return out
}

// writeCanaryInputs writes the first example radiograph with the canary
// patient (pydicom rewrites its PHI attributes) into dicomDir, a copy of it
// with other pixels (a conflict: quarantined with a reason file), and its
// report, named after the accession number as sites do, holding the canary
// phrase, into reportsDir. It returns the paths of the inputs.
func writeCanaryInputs(t *testing.T, s exampleSeries, dicomDir, reportsDir string) []string {
	t.Helper()
	src := s.paths()[0]
	dst := filepath.Join(dicomDir, "canary", "0001.dcm")
	conflict := filepath.Join(dicomDir, "canary-again", "0001.dcm")
	for _, d := range []string{filepath.Dir(dst), filepath.Dir(conflict), reportsDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := `
import sys, pydicom
src, dst, conflict = sys.argv[1:4]
ds = pydicom.dcmread(src)
ds.PatientName = "` + canaryFamily + `^` + canaryGiven + `"
ds.PatientID = "` + canaryPatientID + `"
ds.PatientBirthDate = "` + canaryBirthDate + `"
ds.AccessionNumber = "` + canaryAccession + `"
ds.save_as(dst)
px = bytearray(ds.PixelData)
px[len(px) // 2] ^= 0xFF
ds.PixelData = bytes(px)
ds.save_as(conflict)
`
	tmp := filepath.Join(t.TempDir(), "stage")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	// Written outside the drop folder first, then moved in: the daemon
	// sees whole files only.
	stDst, stConflict := filepath.Join(tmp, "a.dcm"), filepath.Join(tmp, "b.dcm")
	cmd := exec.Command("/usr/bin/python3", "-c", script, src, stDst, stConflict)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("writing the canary DICOM files with pydicom: %v\n%s", err, out)
	}
	text, err := os.ReadFile(s.reportPath())
	if err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(reportsDir, canaryAccession+".txt")
	body := string(text) + "\nCOMMENT: " + canaryPhrase + " noted by the referring team.\n"
	if err := os.WriteFile(report, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(stDst, dst); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := os.Rename(stConflict, conflict); err != nil {
		t.Fatal(err)
	}
	// The canaries must be there to be found.
	for _, c := range []struct {
		path string
		want int
	}{{dst, 5}, {conflict, 5}, {report, 1}} {
		b, err := os.ReadFile(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if found := findCanaries(b); len(found) != c.want {
			t.Fatalf("%s holds canaries %q, want %d of them", c.path, found, c.want)
		}
	}
	return []string{dst, conflict, report}
}

// checkNoCanaries fails for every canary in what (named by where).
func checkNoCanaries(t *testing.T, where string, what []byte) {
	t.Helper()
	if found := findCanaries(what); len(found) > 0 {
		t.Errorf("PHI canaries %q in %s", found, where)
	}
}

// checkStateDir looks at every file under dir for canaries, leaving out
// the quarantine's copies of the inputs (byte for byte one of them).
func checkStateDir(t *testing.T, dir string, inputs []string) {
	t.Helper()
	copies := map[string]bool{}
	for _, p := range inputs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		copies[hex.EncodeToString(sum[:])] = true
	}
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		if copies[hex.EncodeToString(sum[:])] {
			return nil
		}
		n++
		checkNoCanaries(t, p, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Errorf("no file under %s was looked at", dir)
	}
}

// TestNoPHICanaries runs `tmcad run` and `tmcad process` on a study whose
// patient name, ID, birth date, accession number and a report phrase are
// canaries, including a conflicting copy of its file (quarantined), and
// looks for the canaries in every log line, /metrics, `tmcad status` (text
// and JSON), and every file under state_dir (the SQLite database and its
// WAL included) but the quarantine's copies of the inputs.
func TestNoPHICanaries(t *testing.T) {
	s := examples[0]
	e := newEnv(t)
	e.cfg.LogLevel = "debug"
	p := e.start()
	inputs := writeCanaryInputs(t, s, e.cfg.DICOMDir, e.cfg.ReportsDir)
	p.waitLog(120*time.Second, "SEG stored", msgIs("SEG stored"))
	p.waitLog(30*time.Second, "conflict quarantined", func(l logLine) bool {
		return l.str("message") == "file quarantined" && l.str("reason") == "conflict"
	})

	resp, err := http.Get("http://" + e.cfg.HTTPListen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	checkNoCanaries(t, "/metrics", metrics)
	for _, args := range [][]string{{"status"}, {"status", "--json"}} {
		cmd := exec.Command(tmcadBin, append(args, "--config", e.cfgPath, "-n", "50")...)
		cmd.Dir = repoRoot
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("tmcad %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		checkNoCanaries(t, "tmcad "+strings.Join(args, " "), out)
	}
	// While the daemon runs (the WAL holds the latest writes) and after.
	checkStateDir(t, e.cfg.StateDir, inputs)
	p.stop()
	checkStateDir(t, e.cfg.StateDir, inputs)
	checkNoCanaries(t, "the daemon's log", []byte(e.allLogs()))

	// The same inputs through `tmcad process`, with its state_dir.
	archive := filepath.Join(e.dir, "process-archive")
	masks := filepath.Join(e.dir, "process-masks")
	if err := os.MkdirAll(archive, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tmcadBin, "process", "--config", e.cfgPath, "--input", filepath.Dir(inputs[0]), "--reports", e.cfg.ReportsDir,
		"--archive", archive, "--masks-png", masks, "--log-level", "debug")
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tmcad process: %v\n%s", err, out)
	}
	checkNoCanaries(t, "tmcad process output", out)
	if os.Getenv("TMCAD_E2E_LOGS") != "" {
		t.Logf("tmcad process:\n%s", out)
	}
	if b, err := os.ReadFile(filepath.Join(masks, "summary.json")); err != nil {
		t.Errorf("tmcad process wrote no summary.json: %v", err)
	} else {
		checkNoCanaries(t, "summary.json of tmcad process", b)
	}
	checkStateDir(t, e.cfg.StateDir, inputs)
}
