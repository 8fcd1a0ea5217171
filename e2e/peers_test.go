package e2e

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
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// requireTool returns the path of a tool the tests need; a missing one
// fails the test (never skips it).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is required by this test and was not found (%v): run make deps", name, err)
	}
	return p
}

// child is a peer process the test started; it is killed when the test
// ends if it still runs.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  string
}

// startChild starts cmd with stdout and stderr going to logPath.
func startChild(t *testing.T, cmd *exec.Cmd, logPath string) *child {
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
	c := &child{cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		c.err = cmd.Wait()
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

// stop sends sig and waits up to within for the child to exit, then kills it.
func (c *child) stop(sig syscall.Signal, within time.Duration) {
	_ = c.cmd.Process.Signal(sig)
	select {
	case <-c.done:
	case <-time.After(within):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// running reports whether the child has not exited.
func (c *child) running() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// logTail returns the end of the child's log.
func (c *child) logTail() string {
	b, _ := os.ReadFile(c.log)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// waitTCP waits until something accepts connections on addr, failing the
// test if c exits first.
func waitTCP(t *testing.T, c *child, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return
		}
		if !c.running() {
			t.Fatalf("%s exited (%v) before listening on %s:\n%s", filepath.Base(c.cmd.Path), c.err, addr, c.logTail())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening on %s after %v:\n%s", filepath.Base(c.cmd.Path), addr, within, c.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startStoreSCP starts dcmtk's storescp as AE TMCAD on a free loopback
// port, writing every received instance into outDir, and returns the port.
func startStoreSCP(t *testing.T, outDir string) int {
	t.Helper()
	bin := requireTool(t, "storescp")
	port := freePort(t)
	cmd := exec.Command(bin, "--output-directory", outDir, "--filename-extension", ".dcm", "-aet", "TMCAD", strconv.Itoa(port))
	c := startChild(t, cmd, filepath.Join(t.TempDir(), "storescp.log"))
	waitTCP(t, c, fmt.Sprintf("127.0.0.1:%d", port), 20*time.Second)
	return port
}

// storeSCU sends files to the storescp on port with dcmtk's storescu.
func storeSCU(t *testing.T, port int, files ...string) {
	t.Helper()
	bin := requireTool(t, "storescu")
	args := append([]string{"-aet", "PACS", "-aec", "TMCAD", "127.0.0.1", strconv.Itoa(port)}, files...)
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("storescu: %v\n%s", err, out)
	}
}

// orthancDICOMwebPlugin is the Debian orthanc-dicomweb plugin.
const orthancDICOMwebPlugin = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"

// orthanc is an Orthanc server on loopback with the DICOMweb plugin, on a
// temporary storage that survives stop and start.
type orthanc struct {
	t          *testing.T
	bin        string
	cfgPath    string
	logPath    string
	base       string // http://127.0.0.1:PORT
	user, pass string
	proc       *child
}

// startOrthanc writes an Orthanc configuration (free ports, temporary
// storage, authentication on, remote access off) and starts it.
func startOrthanc(t *testing.T) *orthanc {
	t.Helper()
	bin := requireTool(t, "/usr/sbin/Orthanc")
	if _, err := os.Stat(orthancDICOMwebPlugin); err != nil {
		t.Fatalf("the Orthanc DICOMweb plugin is missing (%v): run make deps", err)
	}
	dir := t.TempDir()
	httpPort, dicomPort := freePort(t), freePort(t)
	o := &orthanc{t: t, bin: bin, cfgPath: filepath.Join(dir, "orthanc.json"), logPath: filepath.Join(dir, "orthanc.log"),
		base: fmt.Sprintf("http://127.0.0.1:%d", httpPort), user: "tmcad", pass: "e2e-test-only"}
	cfg := map[string]any{
		"Name":                  "tmcad-e2e",
		"HttpPort":              httpPort,
		"DicomPort":             dicomPort,
		"StorageDirectory":      filepath.Join(dir, "storage"),
		"IndexDirectory":        filepath.Join(dir, "index"),
		"RemoteAccessAllowed":   false,
		"AuthenticationEnabled": true,
		"RegisteredUsers":       map[string]string{o.user: o.pass},
		"Plugins":               []string{orthancDICOMwebPlugin},
		"DicomWeb":              map[string]any{"Enable": true, "Root": "/dicom-web/"},
		"HttpTimeout":           30,
		"StableAge":             1,
		"OverwriteInstances":    false,
		"HttpDescribeErrors":    true,
		"SaveJobs":              false,
		"ConcurrentJobs":        1,
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	if err := os.WriteFile(o.cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	o.start()
	return o
}

// start starts Orthanc on its configuration and waits until DICOMweb answers.
func (o *orthanc) start() {
	o.t.Helper()
	o.proc = startChild(o.t, exec.Command(o.bin, o.cfgPath), o.logPath)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code := o.get("/dicom-web/studies", nil); code == http.StatusOK || code == http.StatusNoContent {
			return
		}
		if !o.proc.running() {
			o.t.Fatalf("Orthanc exited during start-up (%v):\n%s", o.proc.err, o.proc.logTail())
		}
		if time.Now().After(deadline) {
			o.t.Fatalf("Orthanc not ready after 30s:\n%s", o.proc.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop stops Orthanc (SIGTERM, its normal shutdown).
func (o *orthanc) stop() { o.proc.stop(syscall.SIGTERM, 30*time.Second) }

// get GETs path with the test user; it decodes a 200 JSON body into out
// and returns the status code (0 when Orthanc cannot be reached).
func (o *orthanc) get(path string, out any) int {
	req, err := http.NewRequest(http.MethodGet, o.base+path, nil)
	if err != nil {
		o.t.Fatal(err)
	}
	req.SetBasicAuth(o.user, o.pass)
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
func (o *orthanc) segSeries(study string) map[string][]string {
	o.t.Helper()
	var series []dicomJSON
	if code := o.get("/dicom-web/studies/"+study+"/series?Modality=SEG", &series); code != http.StatusOK && code != http.StatusNoContent && code != http.StatusNotFound {
		o.t.Fatalf("QIDO-RS series of study %s: HTTP %d", study, code)
	}
	out := map[string][]string{}
	for _, s := range series {
		if s.str("00080060") != "SEG" {
			continue
		}
		uid := s.str("0020000E")
		var inst []dicomJSON
		o.get("/dicom-web/studies/"+study+"/series/"+uid+"/instances", &inst)
		for _, i := range inst {
			out[uid] = append(out[uid], i.str("00080018"))
		}
	}
	return out
}

// startPostgres starts a throwaway PostgreSQL server on a free loopback
// port, with trust authentication and a temporary data folder, and
// returns its URL. Run as root, the server runs as the postgres user
// (it refuses to run as root).
func startPostgres(t *testing.T) string {
	t.Helper()
	bindir := "/usr/lib/postgresql/15/bin"
	for _, b := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(bindir, b)); err != nil {
			t.Fatalf("PostgreSQL 15 (%s) is required by this test (%v): run make deps", b, err)
		}
	}
	base, err := os.MkdirTemp("", "tmcad-e2e-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	data, sock := filepath.Join(base, "data"), filepath.Join(base, "sock")
	for _, d := range []string{data, sock} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running PostgreSQL as root needs the postgres user (%v): run make deps", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, d := range []string{data, sock} {
			if err := os.Chown(d, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	command := func(name string, args ...string) *exec.Cmd {
		c := exec.Command(filepath.Join(bindir, name), args...)
		c.Dir = base
		c.Env = []string{"PATH=/usr/bin:/bin", "LANG=C", "LC_ALL=C", "HOME=" + base}
		if cred != nil {
			c.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		return c
	}
	if out, err := command("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port := freePort(t)
	pg := startChild(t, command("postgres", "-D", data, "-k", sock, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=60"),
		filepath.Join(base, "postgres.log"))
	t.Cleanup(func() { pg.stop(syscall.SIGINT, 20*time.Second) }) // fast shutdown
	url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, url)
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx)
		}
		cancel()
		if err == nil {
			return url
		}
		if !pg.running() {
			t.Fatalf("postgres exited (%v):\n%s", pg.err, pg.logTail())
		}
		if time.Now().After(deadline) {
			t.Fatalf("PostgreSQL not accepting connections after 30s (%v):\n%s", err, pg.logTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
