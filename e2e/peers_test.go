package e2e

import (
	"tmcad/internal/pgtemp"

	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"tmcad/internal/testpeers"
)

// startStoreSCP starts dcmtk's storescp as AE TMCAD on a free loopback
// port, writing every received instance into outDir, and returns the port.
func startStoreSCP(t *testing.T, outDir string) int {
	t.Helper()
	bin := testpeers.RequireTool(t, "storescp")
	port := testpeers.FreePort(t)
	cmd := exec.Command(bin, "--output-directory", outDir, "--filename-extension", ".dcm", "-aet", "TMCAD", strconv.Itoa(port))
	c := testpeers.StartChild(t, cmd, filepath.Join(t.TempDir(), "storescp.log"))
	testpeers.WaitTCP(t, c, fmt.Sprintf("127.0.0.1:%d", port), 20*time.Second)
	return port
}

// storeSCU sends files to the storescp on port with dcmtk's storescu.
func storeSCU(t *testing.T, port int, files ...string) {
	t.Helper()
	bin := testpeers.RequireTool(t, "storescu")
	args := append([]string{"-aet", "PACS", "-aec", "TMCAD", "127.0.0.1", strconv.Itoa(port)}, files...)
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("storescu: %v\n%s", err, out)
	}
}

// dicomJSON is a DICOM JSON dataset (QIDO-RS answer item).
type dicomJSON map[string]struct {
	VR    string `json:"vr"`
	Value []any  `json:"Value"`
}

// str returns the first value of a tag ("0020000E") as a string.
func (d dicomJSON) str(tag string) string {
	if v := d[tag].Value; len(v) > 0 {
		if s, ok := v[0].(string); ok {
			return s
		}
	}
	return ""
}

// segSeries lists, through QIDO-RS, the SEG series of a study and their
// instances' SOP Instance UIDs.
func segSeries(t *testing.T, o *testpeers.Orthanc, study string) map[string][]string {
	t.Helper()
	var series []dicomJSON
	if code := o.Get("/dicom-web/studies/"+study+"/series?Modality=SEG", &series); code != http.StatusOK && code != http.StatusNoContent && code != http.StatusNotFound {
		t.Fatalf("QIDO-RS series of study %s: HTTP %d", study, code)
	}
	out := map[string][]string{}
	for _, s := range series {
		if s.str("00080060") != "SEG" {
			continue
		}
		uid := s.str("0020000E")
		var inst []dicomJSON
		o.Get("/dicom-web/studies/"+study+"/series/"+uid+"/instances", &inst)
		for _, i := range inst {
			out[uid] = append(out[uid], i.str("00080018"))
		}
	}
	return out
}

// startPostgres starts a throwaway PostgreSQL server (internal/pgtemp) for
// the test and returns its URL; it is stopped when the test ends.
func startPostgres(t *testing.T) string {
	t.Helper()
	return startPostgresServer(t).URL
}

// startPostgresServer is startPostgres returning the server itself (to
// restart it).
func startPostgresServer(t *testing.T) *pgtemp.Server {
	t.Helper()
	srv, err := pgtemp.Start("tmcad-e2e-pg-")
	if err != nil {
		t.Fatalf("PostgreSQL for the test: %v", err)
	}
	t.Cleanup(srv.Stop)
	return srv
}
