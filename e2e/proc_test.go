package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"

	"tmcad/internal/testpeers"
	"tmcad/writer"
)

// conf is the daemon configuration a test runs with; render writes it as
// TOML. Timings are short so that a series is ready a second after its
// last file.
type conf struct {
	StateDir, DICOMDir, ReportsDir string
	ArchiveKind, ArchiveDir        string
	ArchiveURL, ArchiveUser        string
	ArchivePassword                string
	HTTPListen                     string
	StableAfter, SizeStableFor     string
	RescanEvery, ReportsWait       string
	Workers                        int
	Export, ExportWindow           string
	Reprocess                      string
	DatabaseURL                    string
	// LogLevel is log.level ("info" when empty).
	LogLevel string
	// ModelDir is model.dir (the shipped model when empty).
	ModelDir string
	// Modalities is select.modalities (the manifest's when empty).
	Modalities []string
	// Retention is retention.inputs ("keep" when empty), DoneDir its
	// done_dir.
	Retention, DoneDir string
	// MaxFrames is limits.max_frames (the default when 0).
	MaxFrames int
	// NoTarget is reports.no_target (the default when empty);
	// NoEmptySEG sets seg.write_when_empty = false.
	NoTarget   string
	NoEmptySEG bool
	// ArchiveExtra is more keys of [archive] (TOML lines); Extra is more
	// tables, appended at the end.
	ArchiveExtra, Extra string
	// Node is node (the host name when empty).
	Node string
}

// render returns the configuration as TOML.
func (c conf) render() string {
	var b strings.Builder
	q := strconv.Quote
	level, model := c.LogLevel, c.ModelDir
	if level == "" {
		level = "info"
	}
	if model == "" {
		model = filepath.Join(repoRoot, "models", "tmca-cxr-compact")
	}
	fmt.Fprintf(&b, "state_dir = %s\n", q(c.StateDir))
	if c.Node != "" {
		fmt.Fprintf(&b, "node = %s\n", q(c.Node))
	}
	fmt.Fprintf(&b, "\n[log]\nlevel = %s\nformat = \"json\"\n\n", q(level))
	fmt.Fprintf(&b, "[model]\ndir = %s\nbatch_size = 8\nintra_op_threads = 1\n\n", q(model))
	if len(c.Modalities) > 0 {
		mods := make([]string, len(c.Modalities))
		for i, m := range c.Modalities {
			mods[i] = q(m)
		}
		fmt.Fprintf(&b, "[select]\nmodalities = [%s]\n\n", strings.Join(mods, ", "))
	}
	if c.MaxFrames > 0 {
		fmt.Fprintf(&b, "[limits]\nmax_frames = %d\n\n", c.MaxFrames)
	}
	fmt.Fprintf(&b, "[watch]\ndicom_dir = %s\nreports_dir = %s\nstable_after = %s\nsize_stable_for = %s\nrescan_every = %s\n\n",
		q(c.DICOMDir), q(c.ReportsDir), q(c.StableAfter), q(c.SizeStableFor), q(c.RescanEvery))
	fmt.Fprintf(&b, "[reports]\nwait = %s\n", q(c.ReportsWait))
	if c.NoTarget != "" {
		fmt.Fprintf(&b, "no_target = %s\n", q(c.NoTarget))
	}
	if c.NoEmptySEG {
		fmt.Fprintf(&b, "\n[seg]\nwrite_when_empty = false\n")
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "[archive]\nkind = %s\n", q(c.ArchiveKind))
	if c.ArchiveKind == "dicomweb" {
		fmt.Fprintf(&b, "url = %s\nusername = %s\npassword = %s\ntimeout = \"5s\"\nmax_retries = 0\n\n", q(c.ArchiveURL), q(c.ArchiveUser), q(c.ArchivePassword))
	} else {
		fmt.Fprintf(&b, "dir = %s\n%s\n", q(c.ArchiveDir), c.ArchiveExtra)
	}
	fmt.Fprintf(&b, "[queue]\nworkers = %d\nmax_attempts = 3\ndrain_timeout = \"10s\"\n", c.Workers)
	if c.DatabaseURL != "" {
		fmt.Fprintf(&b, "database_url = %s\n", q(c.DatabaseURL))
	}
	fmt.Fprintf(&b, "\n[schedule]\nexport = %s\nexport_window = %s\nreprocess = %s\n\n", q(c.Export), q(c.ExportWindow), q(c.Reprocess))
	retention := c.Retention
	if retention == "" {
		retention = "keep"
	}
	fmt.Fprintf(&b, "[retention]\ninputs = %s\n", q(retention))
	if c.DoneDir != "" {
		fmt.Fprintf(&b, "done_dir = %s\n", q(c.DoneDir))
	}
	fmt.Fprintf(&b, "\n[http]\nlisten = %s\n", q(c.HTTPListen))
	b.WriteString(c.Extra)
	return b.String()
}

// env is one test's folders, configuration and daemon processes.
type env struct {
	t       *testing.T
	dir     string
	cfg     conf
	cfgPath string

	mu    sync.Mutex
	procs []*daemonProc
}

// newEnv makes the drop, reports, archive and state folders under a
// temporary folder and a configuration with short timings; change e.cfg
// before start.
func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, cfgPath: filepath.Join(dir, "tmcad.toml")}
	e.cfg = conf{
		StateDir:      filepath.Join(dir, "state"),
		DICOMDir:      filepath.Join(dir, "drop", "dicom"),
		ReportsDir:    filepath.Join(dir, "drop", "reports"),
		ArchiveKind:   "filesystem",
		ArchiveDir:    filepath.Join(dir, "archive"),
		HTTPListen:    fmt.Sprintf("127.0.0.1:%d", testpeers.FreePort(t)),
		StableAfter:   "1s",
		SizeStableFor: "200ms",
		RescanEvery:   "1s",
		ReportsWait:   "60s",
		Workers:       1,
		Export:        "immediate",
		ExportWindow:  "6h",
		Reprocess:     "",
	}
	for _, d := range []string{e.cfg.DICOMDir, e.cfg.ReportsDir, e.cfg.ArchiveDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("TMCAD_E2E_LOGS") != "" {
			e.dumpLogs()
		}
	})
	return e
}

// writeConfig writes e.cfg to e.cfgPath.
func (e *env) writeConfig() {
	e.t.Helper()
	if err := os.WriteFile(e.cfgPath, []byte(e.cfg.render()), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// dumpLogs logs the tail of every daemon's log (a failed test, or every
// test with TMCAD_E2E_LOGS set).
func (e *env) dumpLogs() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, p := range e.procs {
		lines := p.snapshot()
		if len(lines) > 400 {
			lines = lines[len(lines)-400:]
		}
		e.t.Logf("--- daemon #%d log (last %d lines) ---\n%s", i+1, len(lines), strings.Join(lines, "\n"))
	}
}

// allLogs returns every line every daemon of the test wrote.
func (e *env) allLogs() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b strings.Builder
	for _, p := range e.procs {
		for _, l := range p.snapshot() {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// daemonProc is one `tmcad run` process and its log lines (stderr).
type daemonProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	done   chan struct{}
	err    error // Wait's error, valid once done is closed
	mu     sync.Mutex
	lines  []string
	notify chan struct{} // closed and replaced at each new line
}

// startProc starts `tmcad run --config e.cfgPath` in the repository root
// without waiting for it.
func (e *env) startProc(args ...string) *daemonProc {
	e.t.Helper()
	e.writeConfig()
	cmd := exec.Command(tmcadBin, append([]string{"run", "--config", e.cfgPath}, args...)...)
	cmd.Dir = repoRoot
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NOTIFY_SOCKET=") && !strings.HasPrefix(kv, "WATCHDOG_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	p := &daemonProc{t: e.t, cmd: cmd, done: make(chan struct{}), notify: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("starting tmcad run: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.notify)
			p.notify = make(chan struct{})
			p.mu.Unlock()
		}
		p.err = cmd.Wait()
		close(p.done)
		p.mu.Lock()
		close(p.notify)
		p.notify = make(chan struct{})
		p.mu.Unlock()
	}()
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	e.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill() // our own child, by its process
			<-p.done
		}
	})
	return p
}

// start starts the daemon and waits until it says it is ready.
func (e *env) start() *daemonProc {
	e.t.Helper()
	p := e.startProc()
	p.waitLog(90*time.Second, "daemon ready", msgIs("tmcad ready"))
	return p
}

// snapshot returns the lines so far.
func (p *daemonProc) snapshot() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// logLine is one JSON log line.
type logLine map[string]any

// str returns a string field.
func (l logLine) str(k string) string {
	s, _ := l[k].(string)
	return s
}

// msgIs matches lines with this message.
func msgIs(msg string) func(logLine) bool {
	return func(l logLine) bool { return l.str("message") == msg }
}

// matching returns the parsed lines that match.
func (p *daemonProc) matching(match func(logLine) bool) []logLine {
	var out []logLine
	for _, s := range p.snapshot() {
		var l logLine
		if json.Unmarshal([]byte(s), &l) == nil && match(l) {
			out = append(out, l)
		}
	}
	return out
}

// mark returns the number of lines so far, for waitLogAfter.
func (p *daemonProc) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lines)
}

// waitLog waits for the first line that matches (looking at every line
// since the start) and returns it; it fails the test when the process
// exits or the deadline passes first.
func (p *daemonProc) waitLog(within time.Duration, what string, match func(logLine) bool) logLine {
	p.t.Helper()
	return p.waitLogAfter(0, within, what, match)
}

// waitLogAfter is waitLog looking only at lines after the first from.
func (p *daemonProc) waitLogAfter(from int, within time.Duration, what string, match func(logLine) bool) logLine {
	p.t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	seen := from
	for {
		p.mu.Lock()
		lines, wake := p.lines[seen:], p.notify
		seen = len(p.lines)
		p.mu.Unlock()
		for _, s := range lines {
			var l logLine
			if json.Unmarshal([]byte(s), &l) == nil && match(l) {
				return l
			}
		}
		select {
		case <-p.done:
			// Read what was written before the exit.
			p.mu.Lock()
			rest := p.lines[seen:]
			p.mu.Unlock()
			for _, s := range rest {
				var l logLine
				if json.Unmarshal([]byte(s), &l) == nil && match(l) {
					return l
				}
			}
			p.t.Fatalf("tmcad exited (%v) before: %s", p.err, what)
		case <-deadline.C:
			p.t.Fatalf("no log line within %v: %s", within, what)
		case <-wake:
		}
	}
}

// signal sends sig to the daemon.
func (p *daemonProc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// stop sends SIGTERM and checks that the daemon drains and exits 0.
func (p *daemonProc) stop() {
	p.t.Helper()
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.t.Fatal("tmcad did not exit within 60s of SIGTERM")
	}
	if p.err != nil {
		p.t.Fatalf("tmcad exited with %v after SIGTERM", p.err)
	}
	if len(p.matching(msgIs("tmcad stopped"))) != 1 {
		p.t.Error("no \"tmcad stopped\" line after SIGTERM")
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *daemonProc) kill() {
	p.t.Helper()
	p.signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Fatal("tmcad did not die within 30s of SIGKILL")
	}
}

// exited waits for the process to exit by itself and returns its
// combined log.
func (p *daemonProc) exited(within time.Duration) (string, error) {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		p.t.Fatalf("tmcad still running after %v", within)
	}
	return strings.Join(p.snapshot(), "\n"), p.err
}

// waitFor polls cond every 100ms until it holds; it fails the test after
// within (a bound on a hang, not a performance assertion).
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// copySlowly copies src to dst the way a slow writer would: the first
// half, a pause shorter than watch.size_stable_for, then the rest, so that
// the daemon sees a growing file and must not read it early.
func copySlowly(t *testing.T, src, dst string, pause time.Duration) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	half := len(b) / 2
	if _, err := f.Write(b[:half]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(pause)
	if _, err := f.Write(b[half:]); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// copyFile copies src to dst at once (through a temporary name, as a
// careful sender would).
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".part"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// dropSeries copies a series' files into the DICOM drop folder
// (drop/<study-dir>/<series-dir>/NNNN.dcm), one by one with pauses.
func (e *env) dropSeries(s exampleSeries, between, within time.Duration) {
	e.t.Helper()
	for i, src := range s.paths() {
		dst := filepath.Join(e.cfg.DICOMDir, s.Files[i][len("dicom/"):])
		if within > 0 {
			copySlowly(e.t, src, dst, within)
		} else {
			copyFile(e.t, src, dst)
		}
		time.Sleep(between)
	}
}

// dropReport copies a series' report into the reports drop folder.
func (e *env) dropReport(s exampleSeries) {
	e.t.Helper()
	copyFile(e.t, s.reportPath(), filepath.Join(e.cfg.ReportsDir, filepath.Base(s.reportPath())))
}

// archivedSEG is one SEG found in a filesystem archive.
type archivedSEG struct {
	Path                       string
	StudyUID, SeriesUID, SOP   string
	ReferencedSeries           []string
	ReferencedSOPs, FrameSOPs  []string
	Modality, SOPClassUID      string
	PathStudy, PathSeries, Rel string
}

// readSEG reads the UIDs of a SEG file: its own, the series it references
// (ReferencedSeriesSequence) and, through writer.ReadSEG, the source
// images its frames derive from.
func readSEG(t *testing.T, path string) archivedSEG {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := dicom.Parse(bytes.NewReader(b), int64(len(b)), nil, dicom.SkipPixelData())
	if err != nil {
		t.Fatalf("%s: not a readable DICOM file: %v", path, err)
	}
	str := func(elems []*dicom.Element, tg tag.Tag) string {
		for _, el := range elems {
			if el.Tag == tg && el.Value != nil && el.Value.ValueType() == dicom.Strings {
				if v := el.Value.GetValue().([]string); len(v) > 0 {
					return strings.TrimRight(v[0], " \x00")
				}
			}
		}
		return ""
	}
	items := func(elems []*dicom.Element, tg tag.Tag) [][]*dicom.Element {
		var out [][]*dicom.Element
		for _, el := range elems {
			if el.Tag == tg && el.Value != nil && el.Value.ValueType() == dicom.Sequences {
				for _, it := range el.Value.GetValue().([]*dicom.SequenceItemValue) {
					out = append(out, it.GetValue().([]*dicom.Element))
				}
			}
		}
		return out
	}
	s := archivedSEG{
		Path:        path,
		StudyUID:    str(ds.Elements, tag.StudyInstanceUID),
		SeriesUID:   str(ds.Elements, tag.SeriesInstanceUID),
		SOP:         str(ds.Elements, tag.SOPInstanceUID),
		Modality:    str(ds.Elements, tag.Modality),
		SOPClassUID: str(ds.Elements, tag.SOPClassUID),
	}
	for _, it := range items(ds.Elements, tag.ReferencedSeriesSequence) {
		s.ReferencedSeries = append(s.ReferencedSeries, str(it, tag.SeriesInstanceUID))
		for _, inst := range items(it, tag.ReferencedInstanceSequence) {
			s.ReferencedSOPs = append(s.ReferencedSOPs, str(inst, tag.ReferencedSOPInstanceUID))
		}
	}
	dec, err := writer.ReadSEG(b)
	if err != nil {
		t.Fatalf("%s: writer.ReadSEG: %v", path, err)
	}
	for _, f := range dec.Frames {
		s.FrameSOPs = append(s.FrameSOPs, f.SourceSOP)
	}
	return s
}

// archiveSEGs walks a filesystem archive and reads every .dcm file in it;
// any other file (a temporary one left behind) fails the test.
func archiveSEGs(t *testing.T, root string) []archivedSEG {
	t.Helper()
	var out []archivedSEG
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if filepath.Ext(p) != ".dcm" {
			return fmt.Errorf("unexpected file in the archive: %s", p)
		}
		s := readSEG(t, p)
		rel, _ := filepath.Rel(root, p)
		s.Rel = rel
		parts := strings.Split(rel, string(filepath.Separator))
		if len(parts) == 3 {
			s.PathStudy, s.PathSeries = parts[0], parts[1]
		}
		out = append(out, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// countFiles counts the regular files under root with extension ext
// ("" for all); a missing folder counts 0.
func countFiles(root, ext string) int {
	n := 0
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && (ext == "" || filepath.Ext(p) == ext) {
			n++
		}
		return nil
	})
	return n
}

// outboxSEGs counts the SEGs waiting in state_dir/outbox.
func (e *env) outboxSEGs() int {
	n := 0
	ents, _ := os.ReadDir(filepath.Join(e.cfg.StateDir, "outbox"))
	for _, d := range ents {
		if d.Type().IsRegular() && filepath.Ext(d.Name()) == ".dcm" {
			n++
		}
	}
	return n
}

// checkOneSEGPerSeries checks the archive against the wanted series:
// exactly one SEG per series, stored under <study>/<its own series>/<sop>.dcm,
// referencing exactly that series and only its instances, and no other SEG.
func checkOneSEGPerSeries(t *testing.T, segs []archivedSEG, want []exampleSeries) {
	t.Helper()
	bySeries := map[string][]archivedSEG{}
	for _, s := range segs {
		if s.Modality != "SEG" || s.SOPClassUID != "1.2.840.10008.5.1.4.1.1.66.4" {
			t.Errorf("%s: Modality %q, SOP Class %s: not a Segmentation", s.Rel, s.Modality, s.SOPClassUID)
		}
		if len(s.ReferencedSeries) != 1 {
			t.Errorf("%s: references %d series, want 1", s.Rel, len(s.ReferencedSeries))
			continue
		}
		if s.PathStudy != s.StudyUID || s.PathSeries != s.SeriesUID || s.Rel != filepath.Join(s.StudyUID, s.SeriesUID, s.SOP+".dcm") {
			t.Errorf("%s: not stored as <study>/<series>/<sop>.dcm of its own UIDs", s.Rel)
		}
		bySeries[s.ReferencedSeries[0]] = append(bySeries[s.ReferencedSeries[0]], s)
	}
	wanted := map[string]bool{}
	for _, w := range want {
		wanted[w.SeriesUID] = true
		got := bySeries[w.SeriesUID]
		if len(got) != 1 {
			t.Errorf("series %s (%s, %d files): %d SEGs in the archive, want exactly 1", w.SeriesUID, w.Modality, len(w.Files), len(got))
			continue
		}
		s := got[0]
		if s.StudyUID != w.StudyUID {
			t.Errorf("SEG of series %s is in study %s, want %s", w.SeriesUID, s.StudyUID, w.StudyUID)
		}
		sops := map[string]bool{}
		for _, u := range w.SOPUIDs {
			sops[u] = true
		}
		if len(s.ReferencedSOPs) != len(w.SOPUIDs) {
			t.Errorf("SEG of series %s references %d instances, want %d", w.SeriesUID, len(s.ReferencedSOPs), len(w.SOPUIDs))
		}
		for _, u := range append(append([]string(nil), s.ReferencedSOPs...), s.FrameSOPs...) {
			if !sops[u] {
				t.Errorf("SEG of series %s references instance %s of another series", w.SeriesUID, u)
			}
		}
	}
	for uid, got := range bySeries {
		if !wanted[uid] {
			t.Errorf("%d SEG(s) for series %s, which was not dropped", len(got), uid)
		}
	}
}

// waitArchive waits until the filesystem archive holds n SEG files.
func (e *env) waitArchive(within time.Duration, n int) {
	e.t.Helper()
	waitFor(e.t, within, fmt.Sprintf("%d SEGs in the filesystem archive", n), func() bool {
		return countFiles(e.cfg.ArchiveDir, ".dcm") >= n
	})
}

// fileDigests hashes every regular file under root (relative path → sha256).
func fileDigests(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		rel, _ := filepath.Rel(root, p)
		out[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkInputsKept checks that every example file dropped is still in the
// drop folder with its original content (retention.inputs = "keep").
func (e *env) checkInputsKept(series []exampleSeries) {
	e.t.Helper()
	got := fileDigests(e.t, e.cfg.DICOMDir)
	for _, s := range series {
		for i, src := range s.paths() {
			b, err := os.ReadFile(src)
			if err != nil {
				e.t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			rel := s.Files[i][len("dicom/"):]
			if got[rel] != hex.EncodeToString(sum[:]) {
				e.t.Errorf("input %s is gone or changed in the drop folder", rel)
			}
		}
	}
}

// metricLine matches one sample of the Prometheus text format.
var metricLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$`)

// scrape fetches /metrics and returns every sample by its name with
// labels, as exposed (e.g. `tmcad_files_seen_total{kind="dicom"}`).
func (e *env) scrape() map[string]float64 {
	e.t.Helper()
	resp, err := http.Get("http://" + e.cfg.HTTPListen + "/metrics")
	if err != nil {
		e.t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET /metrics: HTTP %d", resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		m := metricLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			continue
		}
		out[m[1]] = v
	}
	return out
}

// httpStatus returns the status code of GET path on the daemon's HTTP server.
func (e *env) httpStatus(path string) int {
	resp, err := http.Get("http://" + e.cfg.HTTPListen + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// checkNoPHI checks the daemons' logs for the examples' patient names and
// IDs, birth dates, report text and accession numbers. Report file paths
// are left out first: their names are the site's choice (here the
// accession number), not something the daemon adds.
func (e *env) checkNoPHI(series []exampleSeries) {
	e.t.Helper()
	logs := strings.ReplaceAll(e.allLogs(), e.cfg.ReportsDir+string(filepath.Separator), "<reports>/")
	logs = regexp.MustCompile(`<reports>/[^"]*`).ReplaceAllString(logs, "<reports>/…")
	var bad []string
	has := func(v string) bool {
		re := regexp.MustCompile(`(^|[^0-9A-Za-z])` + regexp.QuoteMeta(v) + `([^0-9A-Za-z]|$)`)
		return re.MatchString(logs)
	}
	for _, s := range series {
		ds, err := dicom.ParseFile(s.paths()[0], nil, dicom.SkipPixelData())
		if err != nil {
			e.t.Fatal(err)
		}
		for _, tg := range []tag.Tag{tag.PatientName, tag.PatientID, tag.PatientBirthDate, tag.AccessionNumber} {
			el, err := ds.FindElementByTag(tg)
			if err != nil || el.Value == nil || el.Value.ValueType() != dicom.Strings {
				continue
			}
			for _, v := range el.Value.GetValue().([]string) {
				v = strings.TrimSpace(v)
				if len(v) >= 4 && has(v) {
					bad = append(bad, fmt.Sprintf("%s %q", tg, v))
				}
				// Names also as "Given Family".
				if tg == tag.PatientName {
					for _, part := range strings.Split(v, "^") {
						if len(part) >= 4 && has(part) {
							bad = append(bad, fmt.Sprintf("patient name part %q", part))
						}
					}
				}
			}
		}
		if strings.Contains(logs, s.Report) {
			bad = append(bad, "report text of "+s.Accession)
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		e.t.Errorf("PHI in the daemon's log: %s", strings.Join(bad, "; "))
	}
}
