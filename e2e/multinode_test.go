package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"tmcad/internal/pgtemp"
	"tmcad/internal/testpeers"
)

// TestMultiNodePostgres: three `tmcad run` nodes (each with its own state
// folder and HTTP port) share one PostgreSQL queue, one drop folder, one
// reports folder, one outbox folder and one archive, as nodes on an NFS
// mount would. 60 CR series are dropped at once; while they are
// processed one node is SIGKILLed right after a SEG it made, another is
// stopped and started again, PostgreSQL itself is restarted, and the
// killed node is started again. In the end every series has exactly one
// SEG in the archive, made once; every input is still there; no job is
// left waiting or running; every series is done; and the reprocessing
// schedule (every 10 s) fired once per instant across the nodes.
func TestMultiNodePostgres(t *testing.T) {
	start := time.Now()
	pg := startPostgresServer(t)
	base := newEnv(t)
	outbox := filepath.Join(base.dir, "shared", "outbox")
	series := deriveCRSeries(t, filepath.Join(base.dir, "corpus"), 60)

	names := []string{"n1", "n2", "n3"}
	nodes := make([]*env, len(names))
	for i, name := range names {
		n := &env{t: t, dir: base.dir, cfgPath: filepath.Join(base.dir, name+".toml"), cfg: base.cfg}
		n.cfg.Node = name
		n.cfg.StateDir = filepath.Join(base.dir, "state-"+name)
		n.cfg.HTTPListen = fmt.Sprintf("127.0.0.1:%d", testpeers.FreePort(t))
		n.cfg.DatabaseURL = pg.URL
		n.cfg.ArchiveExtra = fmt.Sprintf("outbox_dir = %q\n", outbox)
		n.cfg.Reprocess = "@every 10s"
		n.cfg.Workers = 1
		nodes[i] = n
		t.Cleanup(func() {
			if t.Failed() || os.Getenv("TMCAD_E2E_LOGS") != "" {
				t.Logf("=== node %s ===", name)
				n.dumpLogs()
			}
		})
	}
	t.Cleanup(func() {
		if t.Failed() {
			logQueueState(t, pg)
		}
	})
	// Started one after the other: the first creates the schema.
	for _, n := range nodes {
		n.start()
	}
	// The series arrive over about 12 s, so that the crashes and the
	// database restart below fall while series arrive and jobs run.
	dropped := dropOverTime(t, series, base.cfg.DICOMDir, base.cfg.ReportsDir)

	// Node 1 is killed right after a SEG it made: with 60 series queued
	// it is working its next one.
	n1 := nodes[0].procs[0]
	n1.waitLog(180*time.Second, "a SEG made by n1", msgIs(msgSEGMade))
	n1.kill()
	t.Logf("n1 killed at %.0fs: %d SEG(s) stored", time.Since(start).Seconds(), countFiles(base.cfg.ArchiveDir, ".dcm"))

	// Node 2 is stopped (SIGTERM: its running job finishes or is handed
	// back) after its next SEG, and started again.
	n2 := nodes[1].procs[0]
	n2.waitLogAfter(0, 120*time.Second, "a SEG made by n2", msgIs(msgSEGMade))
	n2.stop()
	nodes[1].start()
	t.Logf("n2 restarted at %.0fs: %d SEG(s) stored", time.Since(start).Seconds(), countFiles(base.cfg.ArchiveDir, ".dcm"))

	// PostgreSQL is restarted while the nodes work.
	waitFor(t, 180*time.Second, "a third of the SEGs stored", func() bool {
		return countFiles(base.cfg.ArchiveDir, ".dcm") >= len(series)/3
	})
	if err := pg.Restart(0); err != nil {
		t.Fatal(err)
	}
	t.Logf("PostgreSQL restarted at %.0fs: %d SEG(s) stored", time.Since(start).Seconds(), countFiles(base.cfg.ArchiveDir, ".dcm"))

	// The killed node comes back and hands back the job it was running.
	nodes[0].start()

	<-dropped
	base.waitArchive(240*time.Second, len(series))
	waitFor(t, 120*time.Second, "every process and export job completed", func() bool {
		return pendingJobs(t, pg) == 0
	})
	waitFor(t, 30*time.Second, "the shared outbox empty", func() bool { return countFiles(outbox, ".dcm") == 0 })
	t.Logf("all %d SEGs stored at %.0fs", len(series), time.Since(start).Seconds())

	want := make([]exampleSeries, len(series))
	for i, s := range series {
		want[i] = s.exampleSeries
	}
	checkOneSEGPerSeries(t, archiveSEGs(t, base.cfg.ArchiveDir), want)
	checkDerivedInputsKept(t, base.cfg.DICOMDir, series)

	// Each series' SEG was made once, whichever node made it.
	made := map[string]int{}
	byNode := map[string]int{}
	for _, n := range nodes {
		for _, p := range n.procs {
			for _, l := range p.matching(msgIs(msgSEGMade)) {
				made[l.str("series_uid")]++
				byNode[l.str("node")]++
			}
		}
	}
	for _, s := range series {
		if made[s.SeriesUID] != 1 {
			t.Errorf("series %s: %d \"SEG made\" lines across the nodes, want 1", s.SeriesUID, made[s.SeriesUID])
		}
	}
	t.Logf("SEGs made by node: %v", byNode)

	// The schedule fires every 10 s: wait for a firing after the last
	// restart, so that one fell while the nodes came and went.
	waitFor(t, 60*time.Second, "the reprocessing schedule fired after the restarts", func() bool {
		for _, n := range nodes {
			if len(n.procs[len(n.procs)-1].matching(msgIs("scheduled reprocessing done"))) > 0 {
				return true
			}
		}
		return false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.URL)
	if err != nil {
		t.Fatalf("connecting to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	var notDone int
	if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM tmcad_series WHERE state <> 'done'`).Scan(&notDone); err != nil {
		t.Fatal(err)
	}
	if notDone != 0 {
		t.Errorf("%d series not done", notDone)
	}
	// The schedule fired once per instant, whichever node led.
	rows, err := conn.Query(ctx, `SELECT scheduled_at, COUNT(*), MIN(state::text) FROM river_job WHERE kind = 'tmcad_reprocess' GROUP BY scheduled_at ORDER BY scheduled_at`)
	if err != nil {
		t.Fatal(err)
	}
	fired := 0
	for rows.Next() {
		var at time.Time
		var n int
		var state string
		if err := rows.Scan(&at, &n, &state); err != nil {
			t.Fatal(err)
		}
		fired++
		if n != 1 {
			t.Errorf("the reprocessing schedule fired %d times for %s, want once", n, at.UTC().Format(time.RFC3339))
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if fired == 0 {
		t.Error("the reprocessing schedule (every 10s) never fired")
	}
	t.Logf("the reprocessing schedule fired at %d instants", fired)

	for _, n := range nodes {
		if q := countFiles(filepath.Join(n.cfg.StateDir, "quarantine"), ""); q != 0 {
			t.Errorf("node %s: %d files in quarantine, want none", n.cfg.Node, q)
		}
		m := n.scrape()
		if m[fmt.Sprintf(`tmcad_node_info{node=%q,roles="ingest,process,export"}`, n.cfg.Node)] != 1 {
			t.Errorf("node %s: /metrics has no tmcad_node_info for it", n.cfg.Node)
		}
		if code := n.httpStatus("/readyz"); code != 200 {
			t.Errorf("node %s: /readyz answers %d after the run, want 200", n.cfg.Node, code)
		}
	}
	for _, n := range nodes {
		n.procs[len(n.procs)-1].stop()
	}
	t.Logf("multi-node run done in %.0fs", time.Since(start).Seconds())
}

// TestPostgresDownWhileWorking: one node on PostgreSQL; while 60 CR
// series arrive and are processed, PostgreSQL goes down for 8 s (longer
// than River retries recording a job's end) and comes back. Meanwhile
// /readyz says the queue database is unreachable; afterwards every
// series has exactly one SEG, every input is kept, every series is done
// and no job is left running or waiting: the jobs whose end could not be
// recorded are handed back by the node itself.
func TestPostgresDownWhileWorking(t *testing.T) {
	start := time.Now()
	pg := startPostgresServer(t)
	e := newEnv(t)
	e.cfg.DatabaseURL = pg.URL
	series := deriveCRSeries(t, filepath.Join(e.dir, "corpus"), 60)
	p := e.start()
	dropped := dropOverTime(t, series, e.cfg.DICOMDir, e.cfg.ReportsDir)
	waitFor(t, 120*time.Second, "ten SEGs stored", func() bool { return countFiles(e.cfg.ArchiveDir, ".dcm") >= 10 })

	restarted := make(chan error, 1)
	go func() { restarted <- pg.Restart(8 * time.Second) }()
	waitFor(t, 30*time.Second, "/readyz 503 while PostgreSQL is down", func() bool { return e.httpStatus("/readyz") == 503 })
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	t.Logf("PostgreSQL back at %.0fs: %d SEG(s) stored", time.Since(start).Seconds(), countFiles(e.cfg.ArchiveDir, ".dcm"))

	<-dropped
	e.waitArchive(240*time.Second, len(series))
	t.Cleanup(func() {
		if t.Failed() {
			logQueueState(t, pg)
		}
	})
	waitFor(t, 150*time.Second, "every process and export job completed", func() bool { return pendingJobs(t, pg) == 0 })
	waitFor(t, 30*time.Second, "/readyz 200", func() bool { return e.httpStatus("/readyz") == 200 })
	want := make([]exampleSeries, len(series))
	for i, s := range series {
		want[i] = s.exampleSeries
	}
	checkOneSEGPerSeries(t, archiveSEGs(t, e.cfg.ArchiveDir), want)
	checkDerivedInputsKept(t, e.cfg.DICOMDir, series)
	if n := e.outboxSEGs(); n != 0 {
		t.Errorf("%d SEG(s) left in the outbox", n)
	}
	if st := e.status(); st.Series["done"] != len(series) {
		t.Errorf("tmcad status: series by state %v, want all %d done", st.Series, len(series))
	}
	t.Logf("handed back by the node: %d line(s)", len(p.matching(msgIs("jobs whose end the queue did not record (database unreachable) are queued again"))))
	p.stop()
	t.Logf("PostgreSQL outage run done in %.0fs", time.Since(start).Seconds())
}

// logQueueState logs the series by state and the jobs not completed, for
// a failed test.
func logQueueState(t *testing.T, pg *pgtemp.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.URL)
	if err != nil {
		t.Logf("queue state: %v", err)
		return
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		`SELECT state || ' ' || COUNT(*) FROM tmcad_series GROUP BY state`,
		`SELECT kind || ' ' || state::text || ' attempt ' || attempt || ' ' || COALESCE(errors[array_length(errors, 1)]::text, '') FROM river_job WHERE state <> 'completed'`,
		`SELECT series_uid || ' ' || state || ' ' || reason || ' ' || error FROM tmcad_series WHERE state <> 'done'`,
	} {
		rows, err := conn.Query(ctx, q)
		if err != nil {
			t.Logf("queue state: %v", err)
			continue
		}
		for rows.Next() {
			var line string
			if rows.Scan(&line) == nil {
				t.Logf("queue state: %s", line)
			}
		}
		rows.Close()
	}
}

// pendingJobs counts the process and export jobs not completed.
func pendingJobs(t *testing.T, pg *pgtemp.Server) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.URL)
	if err != nil {
		return -1
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM river_job WHERE kind IN ('tmcad_process', 'tmcad_export') AND state <> 'completed'`).Scan(&n); err != nil {
		return -1
	}
	return n
}

// derivedSeries is a series made from an example CR series by giving it
// new UIDs, accession number and patient ID; its files live under dir.
type derivedSeries struct {
	exampleSeries
	// srcs are the derived files, report its report file.
	srcs   []string
	report string
}

// drop copies the series' report into reports and its files into dicom
// (<dicom>/<study UID>/NNNN.dcm).
func (s derivedSeries) drop(t *testing.T, dicom, reports string) {
	t.Helper()
	copyFile(t, s.report, filepath.Join(reports, filepath.Base(s.report)))
	for i, src := range s.srcs {
		copyFile(t, src, filepath.Join(dicom, s.Files[i]))
	}
}

// dropOverTime drops the series into the folders in the background, one
// every 200 ms, so that what a test does meanwhile falls while series
// arrive and jobs run. The channel it returns is closed after the last
// drop; the test waits for it when it ends in any case.
func dropOverTime(t *testing.T, series []derivedSeries, dicom, reports string) <-chan struct{} {
	dropped := make(chan struct{})
	go func() {
		defer close(dropped)
		for _, s := range series {
			s.drop(t, dicom, reports)
			time.Sleep(200 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { <-dropped })
	return dropped
}

// deriveCRSeries makes n distinct one-image series from the example CR
// series under dir: each file is an example's with its Study, Series and
// SOP Instance UIDs, accession number and patient ID replaced, byte for
// byte and at the same length, in the header (before Pixel Data), so
// that each derived series matches exactly one report.
func deriveCRSeries(t *testing.T, dir string, n int) []derivedSeries {
	t.Helper()
	var tpls []exampleSeries
	for _, s := range examples {
		if s.Modality == "CR" && len(s.Files) == 1 {
			tpls = append(tpls, s)
		}
	}
	if len(tpls) == 0 {
		t.Fatal("no one-image CR example series")
	}
	var out []derivedSeries
	for k := 0; k < n; k++ {
		tpl := tpls[k%len(tpls)]
		uid := func(old string, part int) string {
			tail := fmt.Sprintf("9%03d%d", k, part)
			if len(old) < 20 {
				t.Fatalf("example UID %q too short to derive from", old)
			}
			return old[:len(old)-len(tail)] + tail
		}
		ds := derivedSeries{exampleSeries: exampleSeries{
			StudyUID:  uid(tpl.StudyUID, 1),
			SeriesUID: uid(tpl.SeriesUID, 2),
			Modality:  "CR",
			Accession: fmt.Sprintf("M%0*d", len(tpl.Accession)-1, 7000+k),
			PatientID: fmt.Sprintf("Q%0*d", len(tpl.PatientID)-1, 7000+k),
		}}
		repl := []string{tpl.StudyUID, ds.StudyUID, tpl.SeriesUID, ds.SeriesUID, tpl.Accession, ds.Accession, tpl.PatientID, ds.PatientID}
		sdir := filepath.Join(dir, fmt.Sprintf("series-%03d", k))
		if err := os.MkdirAll(sdir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, src := range tpl.paths() {
			sop := uid(tpl.SOPUIDs[i], 3+i)
			dst := filepath.Join(sdir, fmt.Sprintf("%04d.dcm", i+1))
			patchHeader(t, src, dst, append(repl, tpl.SOPUIDs[i], sop))
			ds.SOPUIDs = append(ds.SOPUIDs, sop)
			ds.srcs = append(ds.srcs, dst)
			ds.Files = append(ds.Files, filepath.Join(ds.StudyUID, filepath.Base(dst)))
		}
		rep, err := os.ReadFile(tpl.reportPath())
		if err != nil {
			t.Fatal(err)
		}
		ds.Report = string(rep)
		ds.report = filepath.Join(sdir, ds.Accession+".txt")
		if err := os.WriteFile(ds.report, rep, 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, ds)
	}
	return out
}

// patchHeader copies src to dst with each old string of repl (pairs old,
// new of equal length) replaced everywhere in the header, the bytes
// before Pixel Data (7FE0,0010).
func patchHeader(t *testing.T, src, dst string, repl []string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	end := bytes.Index(b, []byte{0xE0, 0x7F, 0x10, 0x00})
	if end < 0 {
		t.Fatalf("%s: no Pixel Data element", src)
	}
	head := string(b[:end])
	for i := 0; i+1 < len(repl); i += 2 {
		if len(repl[i]) != len(repl[i+1]) {
			t.Fatalf("patching %s: %q and %q differ in length", src, repl[i], repl[i+1])
		}
		if !strings.Contains(head, repl[i]) {
			t.Fatalf("patching %s: %q is not in the header", src, repl[i])
		}
		head = strings.ReplaceAll(head, repl[i], repl[i+1])
	}
	copy(b, head)
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkDerivedInputsKept checks that every derived file dropped is still
// in the drop folder with its content.
func checkDerivedInputsKept(t *testing.T, dicom string, series []derivedSeries) {
	t.Helper()
	got := fileDigests(t, dicom)
	for _, s := range series {
		for i, src := range s.srcs {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			if got[s.Files[i]] != hex.EncodeToString(sum[:]) {
				t.Errorf("input %s is gone or changed in the drop folder", s.Files[i])
			}
		}
	}
}
