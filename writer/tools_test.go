package writer

import (
	"os/exec"
	"testing"
)

// requireTool fails (never skips) the test when an external tool is missing.
func requireTool(t *testing.T, path string) string {
	t.Helper()
	p, err := exec.LookPath(path)
	if err != nil {
		t.Fatalf("%s not found (%v): run `make deps` to install the test tools (dicom3tools, dcmtk, python3-pydicom, orthanc, orthanc-dicomweb)", path, err)
	}
	return p
}
