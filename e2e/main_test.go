package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

var (
	// repoRoot is the module root: the daemon runs there, so that ONNX
	// Runtime is found in third_party/onnxruntime/ and the model in models/.
	repoRoot string
	// tmcadBin is the tmcad binary built once for the whole package.
	tmcadBin string
	// examples are the example series of examples/cases.json.
	examples []exampleSeries
	// shippedVersion is the shipped model's version (its manifest's).
	shippedVersion string
)

// exampleSeries is one series of examples/cases.json.
type exampleSeries struct {
	StudyUID  string   `json:"study_instance_uid"`
	SeriesUID string   `json:"series_instance_uid"`
	Accession string   `json:"accession"`
	PatientID string   `json:"patient_id"`
	Modality  string   `json:"modality"`
	Report    string   `json:"report"`
	SOPUIDs   []string `json:"sop_instance_uids"`
	Files     []string `json:"files"`
}

// reportPath is the example report of the series' study.
func (s exampleSeries) reportPath() string {
	return filepath.Join(repoRoot, "examples", "reports", s.Accession+".txt")
}

// paths are the example files of the series, absolute.
func (s exampleSeries) paths() []string {
	out := make([]string, len(s.Files))
	for i, f := range s.Files {
		out[i] = filepath.Join(repoRoot, "examples", f)
	}
	return out
}

// envPrebuiltBin names a tmcad binary TestMain uses instead of building one.
const envPrebuiltBin = "TMCAD_E2E_BIN"

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if repoRoot, err = findRepoRoot(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if examples, err = loadExamples(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if shippedVersion, err = loadShippedVersion(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	// A test re-run in another namespace (TestStateDirFull without root)
	// is given the binary already built.
	if bin := os.Getenv(envPrebuiltBin); bin != "" {
		tmcadBin = bin
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "tmcad-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	tmcadBin = filepath.Join(dir, "tmcad")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if p, err := exec.LookPath("go"); err == nil {
		gobin = p
	}
	build := exec.Command(gobin, "build", "-o", tmcadBin, "./cmd/tmcad")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/tmcad: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// findRepoRoot walks up from the working directory to go.mod.
func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// loadExamples reads examples/cases.json.
// loadShippedVersion reads the shipped model's version from its manifest.
func loadShippedVersion() (string, error) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "models", "tmca-cxr-compact", "manifest.json"))
	if err != nil {
		return "", fmt.Errorf("reading the shipped model's manifest: %w", err)
	}
	var m struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &m); err != nil || m.Version == "" {
		return "", fmt.Errorf("models/tmca-cxr-compact/manifest.json: no version (%v)", err)
	}
	return m.Version, nil
}

func loadExamples() ([]exampleSeries, error) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "examples", "cases.json"))
	if err != nil {
		return nil, fmt.Errorf("reading the example cases: %w", err)
	}
	var c struct {
		Series []exampleSeries `json:"series"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("examples/cases.json: %w", err)
	}
	if len(c.Series) == 0 {
		return nil, fmt.Errorf("examples/cases.json lists no series")
	}
	return c.Series, nil
}

// seriesByUID indexes the examples by Series Instance UID.
func seriesByUID() map[string]exampleSeries {
	out := map[string]exampleSeries{}
	for _, s := range examples {
		out[s.SeriesUID] = s
	}
	return out
}
