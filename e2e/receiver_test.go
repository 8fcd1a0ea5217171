package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"tmcad/dicomio"
	"tmcad/internal/testpeers"
)

// receiverScript is the shipped receiver the unit runs.
const receiverScript = "tmcad-receiver"

// receiverAET is the receiver's default AE title (the unit's TMCAD_AET).
const receiverAET = "TMCAD"

// receiver is a running tmcad-receiver.
type receiver struct {
	port    int
	staging string
	child   *testpeers.Child
}

// startReceiver starts the shipped receiver (scripts/tmcad-receiver, what
// systemd/tmcad-receiver.service's ExecStart runs) on a free loopback port,
// with a staging folder beside drop (the same filesystem), through the
// same environment settings the unit passes, and env added. It runs in a
// process group of its own, killed whole when the test ends (the gate,
// storescp and storescp's per-association processes).
func startReceiver(t *testing.T, drop string, env ...string) *receiver {
	t.Helper()
	unit, err := os.ReadFile(filepath.Join(repoRoot, "systemd", "tmcad-receiver.service"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ExecStart=(.*)$`).FindStringSubmatch(string(unit))
	if m == nil || strings.Fields(m[1])[len(strings.Fields(m[1]))-1] != receiverScript {
		t.Fatalf("systemd/tmcad-receiver.service: ExecStart does not run %s: %q", receiverScript, m)
	}
	testpeers.RequireTool(t, "storescp")
	testpeers.RequireTool(t, "dcmdump")
	staging := filepath.Join(filepath.Dir(drop), "incoming")
	if err := os.MkdirAll(staging, 0o755); err != nil {
		t.Fatal(err)
	}
	port := testpeers.FreePort(t)
	cmd := exec.Command(filepath.Join(repoRoot, "scripts", receiverScript))
	cmd.Env = append(os.Environ(), "TMCAD_AET="+receiverAET, "TMCAD_PORT="+strconv.Itoa(port),
		"TMCAD_DROP_DIR="+drop, "TMCAD_STAGING_DIR="+staging)
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c := testpeers.StartChild(t, cmd, filepath.Join(t.TempDir(), "receiver.log"))
	t.Cleanup(func() { _ = syscall.Kill(-c.Cmd.Process.Pid, syscall.SIGKILL) }) // the group this test started
	testpeers.WaitTCP(t, c, fmt.Sprintf("127.0.0.1:%d", port), 20*time.Second)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("receiver log:\n%s", c.LogTail())
		}
	})
	return &receiver{port: port, staging: staging, child: c}
}

// dcmSend sends files to the receiver with dcmtk's dcmsend.
func dcmSend(t *testing.T, port int, files ...string) {
	t.Helper()
	bin := testpeers.RequireTool(t, "dcmsend")
	args := append([]string{"-aet", "PACS", "-aec", receiverAET, "127.0.0.1", strconv.Itoa(port)}, files...)
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("dcmsend: %v\n%s", err, out)
	}
}

// dropSampler lists the drop folder every few milliseconds and records
// each file's size when first seen: a file renamed in complete never
// changes size afterwards, one written in place would grow.
type dropSampler struct {
	dir   string
	mu    sync.Mutex
	first map[string]int64
	stop  chan struct{}
	done  chan struct{}
}

func startDropSampler(dir string) *dropSampler {
	s := &dropSampler{dir: dir, first: map[string]int64{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			s.sample()
			select {
			case <-s.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return s
}

func (s *dropSampler) sample() {
	ents, _ := os.ReadDir(s.dir)
	for _, e := range ents {
		s.mu.Lock()
		_, seen := s.first[e.Name()]
		s.mu.Unlock()
		if seen || !e.Type().IsRegular() {
			continue
		}
		if fi, err := e.Info(); err == nil {
			s.mu.Lock()
			s.first[e.Name()] = fi.Size()
			s.mu.Unlock()
		}
	}
}

// check stops the sampler and fails the test for any file in the drop
// folder that changed size after it was first seen or that dcmdump cannot
// parse in full; it returns how many files were sampled.
func (s *dropSampler) check(t *testing.T) int {
	t.Helper()
	close(s.stop)
	<-s.done
	for name, size := range s.first {
		p := filepath.Join(s.dir, name)
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: seen in the drop folder, then gone: %v", name, err)
			continue
		}
		if fi.Size() != size {
			t.Errorf("%s: %d bytes when first seen in the drop folder, %d now: it was not complete when it appeared", name, size, fi.Size())
		}
		if out, err := exec.Command("dcmdump", "-q", p).CombinedOutput(); err != nil {
			t.Errorf("%s: dcmdump cannot parse it in full: %v\n%s", name, err, out)
		}
	}
	return len(s.first)
}

// checkStagingEmpty: every received file was delivered.
func (r *receiver) checkStagingEmpty(t *testing.T) {
	t.Helper()
	if n := countFiles(r.staging, ""); n != 0 {
		t.Errorf("%d file(s) left in the staging folder %s", n, r.staging)
	}
}

// checkAllDelivered checks that every example file appeared in the drop
// folder, each complete, and that nothing is left in staging; it returns
// the number of files.
func (r *receiver) checkAllDelivered(t *testing.T, sampler *dropSampler) int {
	t.Helper()
	files := 0
	for _, s := range examples {
		files += len(s.Files)
	}
	if got := sampler.check(t); got != files {
		t.Errorf("%d files appeared in the drop folder, want the %d sent", got, files)
	}
	r.checkStagingEmpty(t)
	return files
}

// TestReceiver: the shipped receiver answers C-ECHO, takes the example
// series from storescu and dcmsend (alternately), and delivers each file
// complete into the drop folder, where tmcad makes one SEG per series.
func TestReceiver(t *testing.T) {
	start := time.Now()
	e := newEnv(t)
	p := e.start()
	r := startReceiver(t, e.cfg.DICOMDir)
	if out, err := exec.Command(testpeers.RequireTool(t, "echoscu"), "-aet", "PACS", "-aec", receiverAET, "127.0.0.1", strconv.Itoa(r.port)).CombinedOutput(); err != nil {
		t.Fatalf("echoscu (C-ECHO): %v\n%s", err, out)
	}
	sampler := startDropSampler(e.cfg.DICOMDir)
	i := 0
	dropAllWithReports(e, p, func(s exampleSeries) {
		if i%2 == 0 {
			storeSCU(t, r.port, s.paths()...)
		} else {
			dcmSend(t, r.port, s.paths()...)
		}
		i++
	})
	e.waitArchive(90*time.Second, len(examples))
	time.Sleep(2500 * time.Millisecond)
	checkOneSEGPerSeries(t, archiveSEGs(t, e.cfg.ArchiveDir), examples)
	files := r.checkAllDelivered(t, sampler)
	e.checkMetrics(map[string]float64{
		`tmcad_files_seen_total{kind="dicom"}`:      float64(files),
		`tmcad_files_seen_total{kind="unreadable"}`: 0,
		`tmcad_segs_stored_total`:                   float64(len(examples)),
	})
	p.stop()
	t.Logf("receiver flow done in %.1fs", time.Since(start).Seconds())
}

// TestReceiverAbort: storescu is killed in the middle of an association
// after a few instances were acknowledged; every acknowledged instance is
// in the drop folder, no file there is partial, and the receiver goes on
// taking associations.
func TestReceiverAbort(t *testing.T) {
	dir := t.TempDir()
	drop := filepath.Join(dir, "drop", "dicom")
	if err := os.MkdirAll(drop, 0o755); err != nil {
		t.Fatal(err)
	}
	r := startReceiver(t, drop)
	sampler := startDropSampler(drop)

	files := multiFileSeries()
	const ackBeforeKill = 5
	acked := storeUntilAcked(t, r.port, files, ackBeforeKill, func(storescu *exec.Cmd) {
		_ = storescu.Process.Signal(syscall.SIGKILL) // our own child, by its process
	})
	waitDelivered(t, drop, ackedSOPs(t, acked), 10*time.Second, "the acknowledged instances in the drop folder")
	delivered := func() map[string]bool { return sopsIn(drop) }
	// The receiver is still up: a new association stores the rest.
	if !r.child.Running() {
		t.Fatalf("the receiver exited after the abort: %v\n%s", r.child.Err, r.child.LogTail())
	}
	storeSCU(t, r.port, files...)
	waitFor(t, 10*time.Second, "every instance in the drop folder", func() bool { return len(delivered()) == len(files) })
	time.Sleep(200 * time.Millisecond)
	n := sampler.check(t)
	r.checkStagingEmpty(t)
	t.Logf("%d acknowledged before the kill, all delivered; %d files in the drop folder after the resend", len(acked), n)
}

// TestReceiverStagingSweep: at start the receiver delivers what a crash
// left complete in staging and leaves a file cut short there.
func TestReceiverStagingSweep(t *testing.T) {
	dir := t.TempDir()
	drop, staging := filepath.Join(dir, "drop", "dicom"), filepath.Join(dir, "drop", "incoming")
	for _, d := range []string{drop, staging} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(examples[0].paths()[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(staging, "complete.dcm"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(staging, "cut.dcm"), b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	startReceiver(t, drop)
	if _, err := os.Stat(filepath.Join(drop, "complete.dcm")); err != nil {
		t.Errorf("the complete file left in staging was not delivered: %v", err)
	}
	if _, err := os.Stat(filepath.Join(drop, "cut.dcm")); err == nil {
		t.Error("the file cut short was delivered into the drop folder")
	}
	if _, err := os.Stat(filepath.Join(staging, "cut.dcm")); err != nil {
		t.Errorf("the file cut short is gone from staging: %v", err)
	}
}

// TestReceiverGate: with TMCAD_ALLOW_AETS set, the receiver puts tmcad
// dicom-gate in front of storescp. A calling AE title not in the list is
// rejected (storescu reports "Association Rejected" and fails), and
// nothing reaches the staging or drop folder; C-ECHO from an allowed one
// is answered; every example series, sent by allowed senders in
// concurrent associations, lands complete and gets its SEG.
func TestReceiverGate(t *testing.T) {
	e := newEnv(t)
	for _, s := range examples {
		e.dropReport(s)
	}
	p := e.start()
	r := startReceiver(t, e.cfg.DICOMDir, "TMCAD_ALLOW_AETS=PACS,MODALITY", "TMCAD_BIN="+tmcadBin,
		"TMCAD_UPSTREAM_PORT="+strconv.Itoa(testpeers.FreePort(t)))
	scu := func(tool, aet string, files ...string) (string, error) {
		args := append([]string{"-aet", aet, "-aec", receiverAET, "127.0.0.1", strconv.Itoa(r.port)}, files...)
		out, err := exec.Command(testpeers.RequireTool(t, tool), args...).CombinedOutput()
		return string(out), err
	}
	if out, err := scu("echoscu", "PACS"); err != nil {
		t.Fatalf("echoscu (C-ECHO) from an allowed calling AE: %v\n%s", err, out)
	}
	var ct exampleSeries
	for _, s := range examples {
		if len(s.Files) > len(ct.Files) {
			ct = s
		}
	}
	out, err := scu("storescu", "INTRUDER", ct.paths()...)
	if err == nil || !strings.Contains(out, "Association Rejected") || !strings.Contains(out, "Calling AE Title Not Recognized") {
		t.Fatalf("storescu from calling AE INTRUDER: %v, want it rejected (Calling AE Title Not Recognized):\n%s", err, out)
	}
	if n := countFiles(e.cfg.DICOMDir, "") + countFiles(r.staging, ""); n != 0 {
		t.Fatalf("%d file(s) in the drop and staging folders after the rejected association", n)
	}
	if !strings.Contains(r.child.LogTail(), `"calling_aet":"INTRUDER"`) {
		t.Errorf("the receiver's log does not name the refused calling AE title:\n%s", r.child.LogTail())
	}

	sampler := startDropSampler(e.cfg.DICOMDir)
	var wg sync.WaitGroup
	errs := make([]string, len(examples))
	for i, s := range examples {
		wg.Add(1)
		go func() {
			defer wg.Done()
			aet := "PACS"
			if i%2 == 1 {
				aet = "MODALITY"
			}
			if out, err := scu("storescu", aet, s.paths()...); err != nil {
				errs[i] = fmt.Sprintf("storescu of series %s: %v\n%s", s.SeriesUID, err, out)
			}
		}()
	}
	wg.Wait()
	for _, msg := range errs {
		if msg != "" {
			t.Error(msg)
		}
	}
	e.waitArchive(120*time.Second, len(examples))
	checkOneSEGPerSeries(t, archiveSEGs(t, e.cfg.ArchiveDir), examples)
	r.checkAllDelivered(t, sampler)
	p.stop()
}

// TestReceiverGateAddress: with TMCAD_ALLOW_NETS set to a network the
// sender is not in, storescu (an allowed calling AE title) is refused and
// nothing reaches the staging or drop folder.
func TestReceiverGateAddress(t *testing.T) {
	drop := filepath.Join(t.TempDir(), "drop", "dicom")
	if err := os.MkdirAll(drop, 0o755); err != nil {
		t.Fatal(err)
	}
	r := startReceiver(t, drop, "TMCAD_ALLOW_NETS=10.0.0.0/8", "TMCAD_ALLOW_AETS=PACS", "TMCAD_BIN="+tmcadBin,
		"TMCAD_UPSTREAM_PORT="+strconv.Itoa(testpeers.FreePort(t)))
	args := append([]string{"-aet", "PACS", "-aec", receiverAET, "127.0.0.1", strconv.Itoa(r.port)}, examples[0].paths()...)
	if out, err := exec.Command(testpeers.RequireTool(t, "storescu"), args...).CombinedOutput(); err == nil {
		t.Fatalf("storescu from 127.0.0.1 with only 10.0.0.0/8 allowed exited 0:\n%s", out)
	}
	if n := countFiles(drop, "") + countFiles(r.staging, ""); n != 0 {
		t.Errorf("%d file(s) in the drop and staging folders from a refused address", n)
	}
	waitFor(t, 10*time.Second, "the refusal logged with the peer address", func() bool {
		return strings.Contains(r.child.LogTail(), `"remote":"127.0.0.1","reason":"address"`)
	})
	if !r.child.Running() {
		t.Errorf("the receiver exited after refusing a sender: %v", r.child.Err)
	}
}

// TestReceiverTLS: with TMCAD_TLS_CERT, TMCAD_TLS_KEY and
// TMCAD_TLS_CLIENT_CA set (no allow-list), the receiver puts the gate in
// front of storescp as the TLS end. storescu over mutual TLS delivers a CR
// series, which gets its SEG; a plaintext storescu is rejected, and one
// over TLS without a client certificate is refused, both storing nothing.
func TestReceiverTLS(t *testing.T) {
	e := newEnv(t)
	var cr exampleSeries
	for _, s := range examples {
		if s.Modality == "CR" {
			cr = s
			break
		}
	}
	if cr.SeriesUID == "" {
		t.Fatal("no CR series among the examples")
	}
	e.dropReport(cr)
	p := e.start()
	pki := testpeers.NewPKI(t, "tmcad test CA", "tmcad receiver", "PACS")
	r := startReceiver(t, e.cfg.DICOMDir, "TMCAD_BIN="+tmcadBin, "TMCAD_UPSTREAM_PORT="+strconv.Itoa(testpeers.FreePort(t)),
		"TMCAD_TLS_CERT="+pki.ServerCert, "TMCAD_TLS_KEY="+pki.ServerKey, "TMCAD_TLS_CLIENT_CA="+pki.CA)
	scu := func(opts []string, files ...string) (string, error) {
		args := append(append(append([]string{}, opts...), "-aet", "PACS", "-aec", receiverAET, "127.0.0.1", strconv.Itoa(r.port)), files...)
		out, err := exec.Command(testpeers.RequireTool(t, "storescu"), args...).CombinedOutput()
		return string(out), err
	}
	out, err := scu(nil, cr.paths()...)
	if err == nil || !strings.Contains(out, "Association Rejected") {
		t.Fatalf("plaintext storescu on the TLS receiver: %v, want the association rejected:\n%s", err, out)
	}
	if out, err := scu([]string{"+tla", "+cf", pki.CA}, cr.paths()...); err == nil {
		t.Fatalf("storescu over TLS without a client certificate exited 0:\n%s", out)
	}
	if n := countFiles(e.cfg.DICOMDir, "") + countFiles(r.staging, ""); n != 0 {
		t.Fatalf("%d file(s) in the drop and staging folders after the refused associations", n)
	}

	if out, err := scu([]string{"+tls", pki.ClientKey, pki.ClientCert, "+cf", pki.CA}, cr.paths()...); err != nil {
		t.Fatalf("storescu over mutual TLS: %v\n%s", err, out)
	}
	e.waitArchive(90*time.Second, 1)
	checkOneSEGPerSeries(t, archiveSEGs(t, e.cfg.ArchiveDir), []exampleSeries{cr})
	if n := countFiles(e.cfg.DICOMDir, ".dcm"); n < len(cr.Files) {
		t.Errorf("%d file(s) in the drop folder, want the %d sent", n, len(cr.Files))
	}
	r.checkStagingEmpty(t)
	logTail := r.child.LogTail()
	for _, want := range []string{`"reason":"tls"`, "plaintext connection on the TLS port", `"client_cert":"CN=PACS"`} {
		if !strings.Contains(logTail, want) {
			t.Errorf("the receiver's log does not show %s:\n%s", want, logTail)
		}
	}
	p.stop()
}

// storeUntilAcked sends files with storescu to the receiver on port and,
// as soon as storescu has logged the n-th "Received Store Response
// (Success)" (while it sends the next instance), calls kill; it returns
// the files acknowledged. The test fails when storescu ends before n
// acknowledgements or sends every file before kill stopped it.
func storeUntilAcked(t *testing.T, port int, files []string, n int, kill func(storescu *exec.Cmd)) []string {
	t.Helper()
	cmd := exec.Command(testpeers.RequireTool(t, "storescu"),
		append([]string{"-v", "-aet", "PACS", "-aec", receiverAET, "127.0.0.1", strconv.Itoa(port)}, files...)...)
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	current := ""
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if f, ok := strings.CutPrefix(line, "I: Sending file: "); ok {
			current = f
		}
		if strings.Contains(line, "Received Store Response (Success)") && current != "" {
			acked = append(acked, current)
			if len(acked) == n {
				kill(cmd)
				break
			}
		}
	}
	_, _ = io.Copy(io.Discard, out)
	_ = cmd.Wait()
	if len(acked) < n {
		t.Fatalf("storescu acknowledged %d instance(s) before it ended, want %d", len(acked), n)
	}
	if len(acked) == len(files) {
		t.Fatalf("storescu sent all %d files before the kill: no abort", len(files))
	}
	return acked
}

// ackedSOPs are the SOP Instance UIDs of files.
func ackedSOPs(t *testing.T, files []string) map[string]bool {
	t.Helper()
	want := map[string]bool{}
	for _, f := range files {
		h, err := dicomio.ReadHeader(f)
		if err != nil {
			t.Fatal(err)
		}
		want[h.SOPInstanceUID] = true
	}
	return want
}

// waitDelivered waits until every SOP Instance UID of want is in a file of
// drop that parses.
func waitDelivered(t *testing.T, drop string, want map[string]bool, within time.Duration, what string) {
	t.Helper()
	waitFor(t, within, what, func() bool {
		got := sopsIn(drop)
		for uid := range want {
			if !got[uid] {
				return false
			}
		}
		return true
	})
}

// sopsIn are the SOP Instance UIDs of the DICOM files in dir that parse.
func sopsIn(dir string) map[string]bool {
	got := map[string]bool{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if h, err := dicomio.ReadHeader(filepath.Join(dir, e.Name())); err == nil {
			got[h.SOPInstanceUID] = true
		}
	}
	return got
}

// multiFileSeries are the files of the example series with more than one
// instance, the ones an association can be cut in the middle of.
func multiFileSeries() []string {
	var files []string
	for _, s := range examples {
		if len(s.Files) > 1 {
			files = append(files, s.paths()...)
		}
	}
	return files
}

// TestReceiverKilled: the receiver itself (storescp, its per-association
// process and the delivery step, the whole process group) is killed with
// SIGKILL in the middle of an association, after a few instances were
// acknowledged. Restarted on the same folders, it delivers every
// acknowledged instance into the drop folder (what the kill left in
// staging), none partial, and then takes new associations.
func TestReceiverKilled(t *testing.T) {
	dir := t.TempDir()
	drop := filepath.Join(dir, "drop", "dicom")
	if err := os.MkdirAll(drop, 0o755); err != nil {
		t.Fatal(err)
	}
	r := startReceiver(t, drop)
	sampler := startDropSampler(drop)
	files := multiFileSeries()
	const ackBeforeKill = 5
	acked := storeUntilAcked(t, r.port, files, ackBeforeKill, func(*exec.Cmd) {
		_ = syscall.Kill(-r.child.Cmd.Process.Pid, syscall.SIGKILL) // the receiver's own process group
	})
	want := ackedSOPs(t, acked)
	waitFor(t, 10*time.Second, "the killed receiver's processes gone", func() bool { return !r.child.Running() })

	r2 := startReceiver(t, drop)
	waitDelivered(t, drop, want, 20*time.Second, "the acknowledged instances in the drop folder after the restart")
	storeSCU(t, r2.port, files...)
	waitFor(t, 20*time.Second, "every instance in the drop folder", func() bool { return len(sopsIn(drop)) == len(files) })
	time.Sleep(200 * time.Millisecond)
	n := sampler.check(t)
	t.Logf("%d acknowledged before the receiver was killed, all delivered after its restart; %d files in the drop folder after the resend", len(acked), n)
}
