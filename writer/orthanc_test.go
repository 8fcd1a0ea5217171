package writer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const orthancDicomWebPlugin = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"

// freePort asks the kernel for a free loopback port.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// orthanc is an Orthanc server the test started on loopback.
type orthanc struct {
	base       string // http://127.0.0.1:PORT
	user, pass string
}

func (o *orthanc) get(t *testing.T, path string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, o.base+path, nil)
	req.SetBasicAuth(o.user, o.pass)
	req.Header.Set("Accept", "application/dicom+json, application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK && len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, b)
		}
	}
	return resp.StatusCode
}

// startOrthanc starts /usr/sbin/Orthanc with the DICOMweb plugin on free
// loopback ports and a temporary storage, waits until it answers, and stops
// it when the test ends.
func startOrthanc(t *testing.T) *orthanc {
	t.Helper()
	bin := requireTool(t, "/usr/sbin/Orthanc")
	if _, err := os.Stat(orthancDicomWebPlugin); err != nil {
		t.Fatalf("Orthanc DICOMweb plugin missing (%v): run `make deps` (package orthanc-dicomweb)", err)
	}
	dir := t.TempDir()
	httpPort, dicomPort := freePort(t), freePort(t)
	o := &orthanc{base: fmt.Sprintf("http://127.0.0.1:%d", httpPort), user: "tmcad", pass: "test-only-pw"}
	cfg := map[string]any{
		"Name":                  "tmcad-test",
		"HttpPort":              httpPort,
		"DicomPort":             dicomPort,
		"StorageDirectory":      filepath.Join(dir, "storage"),
		"IndexDirectory":        filepath.Join(dir, "index"),
		"RemoteAccessAllowed":   false,
		"AuthenticationEnabled": true,
		"RegisteredUsers":       map[string]string{o.user: o.pass},
		"Plugins":               []string{orthancDicomWebPlugin},
		"DicomWeb":              map[string]any{"Enable": true, "Root": "/dicom-web/"},
		"HttpTimeout":           30,
		"StableAge":             1,
		"OverwriteInstances":    false,
		"DicomServerEnabled":    true,
		"HttpDescribeErrors":    true,
		"SaveJobs":              false,
		"ConcurrentJobs":        1,
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	cfgPath := filepath.Join(dir, "orthanc.json")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "orthanc.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting Orthanc: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // our own child, by its process
		<-exited
		logf.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			log, _ := os.ReadFile(logPath)
			t.Fatalf("Orthanc exited during start-up (%v):\n%s", err, tail(log, 3000))
		default:
		}
		req, _ := http.NewRequest(http.MethodGet, o.base+"/dicom-web/studies", nil)
		req.SetBasicAuth(o.user, o.pass)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNoContent {
				return o
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("Orthanc not ready after 30 s:\n%s", tail(log, 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// TestOrthancSTOW: Orthanc accepts the SEG through the DICOMweb sink, QIDO-RS
// lists the SEG series with Modality SEG, and storing twice leaves one
// instance.
func TestOrthancSTOW(t *testing.T) {
	o := startOrthanc(t)
	sink, err := NewDICOMwebSink(DICOMwebConfig{
		BaseURL: o.base + "/dicom-web", Username: o.user, Password: o.pass,
		Timeout: 20 * time.Second, MaxAttempts: 2, InitialBackoff: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []segCase{conformanceCases(t)[0], conformanceCases(t)[2]} {
		seg, err := EncodeSEG(c.src, c.input(), c.desc)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if err := PutSEG(ctx, sink, seg); err != nil {
				t.Fatalf("%s: STOW #%d: %v", c.name, i+1, err)
			}
		}
		var series []map[string]struct {
			VR    string `json:"vr"`
			Value []any  `json:"Value"`
		}
		if code := o.get(t, "/dicom-web/studies/"+seg.StudyInstanceUID+"/series", &series); code != http.StatusOK {
			t.Fatalf("%s: QIDO-RS series: HTTP %d", c.name, code)
		}
		found := false
		for _, s := range series {
			uid, mod := s["0020000E"], s["00080060"]
			if len(uid.Value) == 1 && uid.Value[0] == seg.SeriesInstanceUID {
				found = true
				if len(mod.Value) != 1 || mod.Value[0] != "SEG" {
					t.Errorf("%s: series Modality = %v, want SEG", c.name, mod.Value)
				}
			}
		}
		if !found {
			t.Fatalf("%s: QIDO-RS does not list the SEG series %s (%d series)", c.name, seg.SeriesInstanceUID, len(series))
		}
		var instances []map[string]any
		o.get(t, "/dicom-web/studies/"+seg.StudyInstanceUID+"/series/"+seg.SeriesInstanceUID+"/instances", &instances)
		if len(instances) != 1 {
			t.Errorf("%s: %d instances after storing twice, want 1", c.name, len(instances))
		}
		// Orthanc parsed the frames too.
		var all []string
		o.get(t, "/instances", &all)
		if len(all) == 0 || strings.Contains(fmt.Sprint(all), "error") {
			t.Errorf("%s: Orthanc /instances = %v", c.name, all)
		}
	}
}
