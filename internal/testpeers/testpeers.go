// Package testpeers starts the real peers that tests run against (Orthanc
// with DICOMweb, any child process) on loopback, and fails a test — never
// skips it — when a tool is missing. It is imported by test files only.
package testpeers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// RequireTool returns the path of a tool a test needs; a missing one fails
// the test with the hint to run `make deps`.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is required by this test and was not found (%v): run `make deps` to install the test tools", name, err)
	}
	return p
}

// FreePort asks the kernel for a free loopback port.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Child is a peer process a test started; it is killed when the test ends
// if it still runs.
type Child struct {
	Cmd  *exec.Cmd
	done chan struct{}
	// Err is the process's exit error, valid once it has exited.
	Err error
	log string
}

// StartChild starts cmd with stdout and stderr appended to logPath.
func StartChild(t testing.TB, cmd *exec.Cmd, logPath string) *Child {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("starting %s: %v", filepath.Base(cmd.Path), err)
	}
	c := &Child{Cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		c.Err = cmd.Wait()
		f.Close()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			_ = cmd.Process.Kill() // our own child, by its process
			<-c.done
		}
	})
	return c
}

// Stop sends sig and waits up to within for the child to exit, then kills it.
func (c *Child) Stop(sig syscall.Signal, within time.Duration) {
	_ = c.Cmd.Process.Signal(sig)
	select {
	case <-c.done:
	case <-time.After(within):
		_ = c.Cmd.Process.Kill()
		<-c.done
	}
}

// Running reports whether the child has not exited.
func (c *Child) Running() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// LogTail returns the end of the child's log.
func (c *Child) LogTail() string {
	b, _ := os.ReadFile(c.log)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// WaitTCP waits until something accepts connections on addr, failing the
// test if c exits first or within passes.
func WaitTCP(t testing.TB, c *Child, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return
		}
		if !c.Running() {
			t.Fatalf("%s exited (%v) before listening on %s:\n%s", filepath.Base(c.Cmd.Path), c.Err, addr, c.LogTail())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening on %s after %v:\n%s", filepath.Base(c.Cmd.Path), addr, within, c.LogTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// OrthancDICOMwebPlugin is the Debian orthanc-dicomweb plugin.
const OrthancDICOMwebPlugin = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"

// Orthanc is an Orthanc server on loopback with the DICOMweb plugin, basic
// authentication and a temporary storage that survives Stop and Start.
type Orthanc struct {
	// Base is http://127.0.0.1:PORT; DICOMweb is under Base + "/dicom-web".
	Base string
	// User and Pass are the test user's credentials.
	User, Pass string
	// DICOMPort is Orthanc's DICOM (C-STORE SCP) port on 127.0.0.1 and AET
	// its AE title; it stores from any calling AE title.
	DICOMPort int
	AET       string
	t         testing.TB
	bin       string
	cfgPath   string
	logPath   string
	proc      *Child
}

// StartOrthanc writes an Orthanc configuration (free ports, temporary
// storage, authentication on, remote access off), starts it and waits
// until DICOMweb answers. It is killed when the test ends.
func StartOrthanc(t testing.TB) *Orthanc {
	t.Helper()
	bin := RequireTool(t, "/usr/sbin/Orthanc")
	if _, err := os.Stat(OrthancDICOMwebPlugin); err != nil {
		t.Fatalf("the Orthanc DICOMweb plugin is missing (%v): run `make deps` (package orthanc-dicomweb)", err)
	}
	dir := t.TempDir()
	httpPort, dicomPort := FreePort(t), FreePort(t)
	o := &Orthanc{t: t, bin: bin, cfgPath: filepath.Join(dir, "orthanc.json"), logPath: filepath.Join(dir, "orthanc.log"),
		Base: fmt.Sprintf("http://127.0.0.1:%d", httpPort), User: "tmcad", Pass: "test-only-pw",
		DICOMPort: dicomPort, AET: "ORTHANC"}
	cfg := map[string]any{
		"Name":                  "tmcad-test",
		"HttpPort":              httpPort,
		"DicomPort":             dicomPort,
		"StorageDirectory":      filepath.Join(dir, "storage"),
		"IndexDirectory":        filepath.Join(dir, "index"),
		"RemoteAccessAllowed":   false,
		"AuthenticationEnabled": true,
		"RegisteredUsers":       map[string]string{o.User: o.Pass},
		"Plugins":               []string{OrthancDICOMwebPlugin},
		"DicomWeb":              map[string]any{"Enable": true, "Root": "/dicom-web/"},
		"HttpTimeout":           30,
		"StableAge":             1,
		"OverwriteInstances":    false,
		"DicomServerEnabled":    true,
		"DicomAet":              "ORTHANC",
		"DicomCheckCalledAet":   true,
		"DicomAlwaysAllowStore": true,
		"HttpDescribeErrors":    true,
		"SaveJobs":              false,
		"ConcurrentJobs":        1,
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	if err := os.WriteFile(o.cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	o.Start()
	return o
}

// Start starts Orthanc on its configuration and waits until DICOMweb answers.
func (o *Orthanc) Start() {
	o.t.Helper()
	o.proc = StartChild(o.t, exec.Command(o.bin, o.cfgPath), o.logPath)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code := o.Get("/dicom-web/studies", nil); code == http.StatusOK || code == http.StatusNoContent {
			return
		}
		if !o.proc.Running() {
			o.t.Fatalf("Orthanc exited during start-up (%v):\n%s", o.proc.Err, o.proc.LogTail())
		}
		if time.Now().After(deadline) {
			o.t.Fatalf("Orthanc not ready after 30s:\n%s", o.proc.LogTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop stops Orthanc (SIGTERM, its normal shutdown).
func (o *Orthanc) Stop() { o.proc.Stop(syscall.SIGTERM, 30*time.Second) }

// Upload stores one DICOM file in Orthanc through its REST API (POST
// /instances), as a modality sending to the PACS would; what is uploaded
// is named by what in failures.
func (o *Orthanc) Upload(what string, data []byte) {
	o.t.Helper()
	req, err := http.NewRequest(http.MethodPost, o.Base+"/instances", bytes.NewReader(data))
	if err != nil {
		o.t.Fatal(err)
	}
	req.SetBasicAuth(o.User, o.Pass)
	req.Header.Set("Content-Type", "application/dicom")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		o.t.Fatalf("uploading %s to Orthanc: %v", what, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		o.t.Fatalf("uploading %s to Orthanc: HTTP %s", what, resp.Status)
	}
}

// Get GETs path with the test user; it decodes a 200 JSON body into out
// and returns the status code (0 when Orthanc cannot be reached).
func (o *Orthanc) Get(path string, out any) int {
	req, err := http.NewRequest(http.MethodGet, o.Base+path, nil)
	if err != nil {
		o.t.Fatal(err)
	}
	req.SetBasicAuth(o.User, o.Pass)
	req.Header.Set("Accept", "application/dicom+json, application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK && len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			o.t.Fatalf("GET %s: %v\n%s", path, err, b)
		}
	}
	return resp.StatusCode
}
