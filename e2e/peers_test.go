package e2e

import (
	"context"
	"fmt"
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
	port := testpeers.FreePort(t)
	pg := testpeers.StartChild(t, command("postgres", "-D", data, "-k", sock, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=60"),
		filepath.Join(base, "postgres.log"))
	t.Cleanup(func() { pg.Stop(syscall.SIGINT, 20*time.Second) }) // fast shutdown
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
		if !pg.Running() {
			t.Fatalf("postgres exited (%v):\n%s", pg.Err, pg.LogTail())
		}
		if time.Now().After(deadline) {
			t.Fatalf("PostgreSQL not accepting connections after 30s (%v):\n%s", err, pg.LogTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
