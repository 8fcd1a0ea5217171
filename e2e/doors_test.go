package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"tmcad/internal/testpeers"
)

// oruFor builds an ORU^R01 (v2.5.1) carrying a series' example report:
// its accession number in OBR-3, its study's UID in an OBX 110180, each
// line of the report in an OBX of type TX, segments ending in "\r".
func oruFor(t *testing.T, s exampleSeries) []byte {
	t.Helper()
	text, err := os.ReadFile(s.reportPath())
	if err != nil {
		t.Fatal(err)
	}
	esc := strings.NewReplacer(`\`, `\E\`, `|`, `\F\`, `^`, `\S\`, `&`, `\T\`, `~`, `\R\`)
	var b strings.Builder
	b.WriteString("MSH|^~\\&|RIS|GENHOSP|TMCAD|GENHOSP|20240315101500||ORU^R01^ORU_R01|E2E" + s.Accession[len(s.Accession)-4:] + "|P|2.5.1\r")
	b.WriteString("PID|1||" + esc.Replace(s.PatientID) + "^^^GENHOSP^MR\r")
	b.WriteString("OBR|1|PLC1|" + esc.Replace(s.Accession) + "|71046^XR CHEST^CPT4|||20240315093000||||||||||||||||||F\r")
	n := 1
	for _, line := range strings.Split(strings.ReplaceAll(string(text), "\r\n", "\n"), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		fmt.Fprintf(&b, "OBX|%d|TX|18782-3^Radiology Study observation^LN||%s||||||F\r", n, esc.Replace(line))
		n++
	}
	fmt.Fprintf(&b, "OBX|%d|ST|110180^Study Instance UID^DCM||%s||||||F\r", n, s.StudyUID)
	return []byte(b.String())
}

// TestHL7ReportGuidesSEG: a report sent over MLLP with python3-hl7's
// mllp_send is acknowledged AA; the daemon is killed (SIGKILL) right after
// the acknowledgement, and the restarted daemon still has the report: the
// series dropped as files afterwards is segmented with its guide text and
// its SEG archived. No accession number, patient ID or report text
// reaches the log.
func TestHL7ReportGuidesSEG(t *testing.T) {
	e := newEnv(t)
	e.cfg.Modalities = []string{"CR"}
	var s exampleSeries
	for _, x := range examples {
		if x.Modality == "CR" {
			s = x
			break
		}
	}
	addr := "127.0.0.1:" + strconv.Itoa(testpeers.FreePort(t))
	e.cfg.Extra = fmt.Sprintf("\n[hl7]\nlisten = %q\nallow = [\"127.0.0.1/32\"]\n", addr)
	p := e.start()
	p.waitLog(10*time.Second, "HL7 listener up", msgIs("receiving HL7 v2 ORU^R01 over MLLP"))

	msg := filepath.Join(t.TempDir(), "report.hl7")
	if err := os.WriteFile(msg, oruFor(t, s), 0o644); err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(addr, ":")
	out, err := exec.Command(testpeers.RequireTool(t, "mllp_send"), "--loose", "-f", msg, "-p", port, "127.0.0.1").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "MSA|AA|E2E") {
		t.Fatalf("mllp_send: %v, answer %q; want MSA|AA", err, out)
	}
	p.kill() // at once: the acknowledged report must already be on disk

	p2 := e.start()
	// Killed within watch.size_stable_for of the store, the first daemon
	// has usually not read the file yet; either daemon may catalogue it.
	waitFor(t, 30*time.Second, "the report catalogued", func() bool {
		return len(p.matching(msgIs("report catalogued")))+len(p2.matching(msgIs("report catalogued"))) > 0
	})
	e.dropSeries(s, 0, 0)
	e.waitArchive(120*time.Second, 1)
	made := p2.matching(func(l logLine) bool {
		return l.str("message") == "SEG made; waiting in the outbox for export" && l.str("series_uid") == s.SeriesUID
	})
	if len(made) != 1 || made[0].str("guide") == "" {
		t.Fatalf("series %s: SEG made lines %v, want one guided by the HL7 report", s.SeriesUID, made)
	}
	segs := archiveSEGs(t, e.cfg.ArchiveDir)
	if len(segs) != 1 || segs[0].StudyUID != s.StudyUID {
		t.Fatalf("archive holds %d SEGs, want one of study %s", len(segs), s.StudyUID)
	}
	p2.stop()
	e.checkNoPHI([]exampleSeries{s})
	if strings.Contains(e.allLogs(), s.Accession) {
		t.Errorf("accession number %s in the log", s.Accession)
	}
}

// TestDIMSEArchive: with archive.kind = "dimse" the daemon's outbox sends
// the SEG to dcmtk's storescp with C-STORE (through dcmsend), and the
// series is done once storescp has it.
func TestDIMSEArchive(t *testing.T) {
	e := newEnv(t)
	e.cfg.Modalities = []string{"CR"}
	var s exampleSeries
	for _, x := range examples {
		if x.Modality == "CR" {
			s = x
			break
		}
	}
	scpDir := t.TempDir()
	bin := testpeers.RequireTool(t, "storescp")
	port := testpeers.FreePort(t)
	c := testpeers.StartChild(t, exec.Command(bin, "--output-directory", scpDir, "--filename-extension", ".dcm", "-aet", "PACS", strconv.Itoa(port)),
		filepath.Join(t.TempDir(), "storescp.log"))
	testpeers.WaitTCP(t, c, fmt.Sprintf("127.0.0.1:%d", port), 20*time.Second)
	e.cfg.ArchiveKind = "dimse"
	e.cfg.ArchiveExtra = fmt.Sprintf("called_ae = \"PACS\"\ncalling_ae = \"TMCAD\"\nhost = \"127.0.0.1\"\nport = %d\ntimeout = \"10s\"\n", port)
	p := e.start()
	e.dropReport(s)
	e.dropSeries(s, 0, 0)
	p.waitLog(120*time.Second, "SEG stored", func(l logLine) bool {
		return l.str("message") == "SEG stored" && strings.HasPrefix(l.str("archive"), fmt.Sprintf("dimse:PACS@127.0.0.1:%d", port))
	})
	segs := archiveSEGs(t, scpDir)
	if len(segs) != 1 || segs[0].StudyUID != s.StudyUID || segs[0].Modality != "SEG" {
		t.Fatalf("storescp received %d SEGs, want one of study %s", len(segs), s.StudyUID)
	}
	waitFor(t, 10*time.Second, "the outbox emptied once storescp confirmed the store", func() bool { return e.outboxSEGs() == 0 })
	p.stop()
}
