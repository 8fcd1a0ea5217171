package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"

	"tmcad/reports"
	"tmcad/writer"
)

// agreeReport is one report file a report-choice case drops.
type agreeReport struct {
	// name identifies the report in the case (what the test expects to be
	// chosen); it is not the file name.
	name string
	// file is the file name in the reports folder, or, for a DICOM SR, the
	// path under the DICOM drop folder.
	file string
	// sr is true for a DICOM SR, which goes to the DICOM drop folder.
	sr bool
	// body is the file's content (for an SR, written by makeBasicTextSR).
	body []byte
	// age sets the file's modification time to this long before the
	// test's start: the newer content wins between equal statuses.
	age time.Duration
}

// studyIDs are the identifiers of an example series' study, read from its
// first DICOM file: what report matching compares.
type studyIDs struct {
	StudyUID, Accession, PatientID, PatientName, StudyDate string
}

// agreeCase is one report-choice situation on one example series.
type agreeCase struct {
	name string
	// modality and rank pick the example series: the rank-th (from 0) of
	// that modality in examples/cases.json.
	modality string
	rank     int
	// reports builds the case's report files for the series' study.
	reports func(t *testing.T, s exampleSeries, ids studyIDs, staging string) []agreeReport
	// want names the report both modes must use; "" when both must refuse
	// every candidate (the series gets no report and no SEG).
	want string
	// wantBy is how `tmcad process` says the report was matched ("matched
	// by …"), or a phrase of its reason for refusing.
	wantBy string
}

// outcome is what one mode did with one case's series.
type outcome struct {
	// decision is "segmented" (a SEG was stored) or "no report" (`tmcad
	// run` parked the series as awaiting_report, `tmcad process` failed it
	// with "no report").
	decision string
	// refusal is, for "no report", the choice rule's reason: from run's
	// parked log line, from process's summary error.
	refusal string
	// segSOPs are the SOP Instance UIDs of the SEGs that reference the
	// series in the mode's archive.
	segSOPs []string
	// used names the case's report the SEG's UID derives from: "(none)"
	// for a SEG made without a report, "" when there is no SEG.
	used string
	// guide is how the report became the model's guide text (the rule and
	// counts, never the text).
	guide string
}

// TestReportChoiceAgree: the same DICOM series and report files go through
// `tmcad run` (daemon, SQLite catalogue of hashed identifiers) and `tmcad
// process` (one-shot, in-memory catalogue); both choose reports with
// reports.Choose, so for every case both make the same decision, use the
// same report, and store SEGs with the same SOP Instance UIDs. The SEG
// UIDs derive from the source series, the model and the chosen report's
// text hash (writer.DeriveUID), so the UID names the report each mode
// used. The cases: an accession-number match whose report names another
// study (refused), two patient-and-date reports for one study (ambiguous,
// refused), a preliminary, a final and an amended version of one report in
// HL7 and JSON (the amended one wins though the preliminary is newest), a
// DICOM SR and a text report (the SR, matched by study UID, wins over the
// newer text matched by accession number), and a plain accession match.
// Neither mode's log holds PHI or report text.
func TestReportChoiceAgree(t *testing.T) {
	cases := []agreeCase{
		{
			name: "accession match naming another study", modality: "CR", rank: 0,
			reports: func(t *testing.T, s exampleSeries, ids studyIDs, _ string) []agreeReport {
				return []agreeReport{{name: "other-study", file: "order-7731.json",
					body: jsonReport(t, map[string]string{"study_uid": "2.25.424242424242424242424242424242424242",
						"accession": ids.Accession, "status": "F", "text": "FINDINGS: Dense consolidation in the right lower lobe."})}}
			},
			want: "", wantBy: "name another study UID",
		},
		{
			name: "two patient and date reports", modality: "CR", rank: 1,
			reports: func(t *testing.T, s exampleSeries, ids studyIDs, _ string) []agreeReport {
				return []agreeReport{
					{name: "pd-1", file: "ris-0001.hl7", body: hl7ORU(ids.PatientID, "", ids.StudyDate, "F",
						"FINDINGS: Patchy opacity in the right lower lobe.")},
					{name: "pd-2", file: "ris-0002.hl7", body: hl7ORU(ids.PatientID, "", ids.StudyDate, "F",
						"FINDINGS: Consolidation in the left upper lobe."), age: time.Hour},
				}
			},
			want: "", wantBy: "ambiguous",
		},
		{
			name: "preliminary, final and amended versions", modality: "CR", rank: 2,
			reports: func(t *testing.T, s exampleSeries, ids studyIDs, _ string) []agreeReport {
				return []agreeReport{
					{name: "preliminary", file: "ris-1001.hl7", body: hl7ORU(ids.PatientID, ids.Accession, ids.StudyDate, "P",
						"FINDINGS: Opacity in the right lower lobe.", "IMPRESSION: Preliminary read.")},
					{name: "final", file: "ris-1002.hl7", body: hl7ORU(ids.PatientID, ids.Accession, ids.StudyDate, "F",
						"FINDINGS: Consolidation in the right lower lobe.", "IMPRESSION: Right lower lobe pneumonia."), age: 2 * time.Hour},
					{name: "amended", file: "amended-1003.json", age: time.Hour,
						body: jsonReport(t, map[string]string{"accession": ids.Accession, "status": "amended",
							"text": "FINDINGS: Consolidation in the left lower lobe.\nIMPRESSION: Left lower lobe pneumonia."})},
				}
			},
			want: "amended", wantBy: "matched by accession",
		},
		{
			name: "SR and text report", modality: "CR", rank: 3,
			reports: func(t *testing.T, s exampleSeries, ids studyIDs, staging string) []agreeReport {
				return []agreeReport{
					{name: "sr", file: filepath.Join("sr", "report-sr.dcm"), sr: true, age: time.Hour,
						body: makeBasicTextSR(t, staging, ids, "Patchy opacity in the lingula.", "Lingular pneumonia.")},
					{name: "text", file: ids.Accession + ".txt", body: []byte(s.Report)},
				}
			},
			want: "sr", wantBy: "matched by study_uid",
		},
		{
			name: "plain accession match", modality: "CT", rank: 0,
			reports: func(t *testing.T, s exampleSeries, ids studyIDs, _ string) []agreeReport {
				return []agreeReport{{name: "text", file: ids.Accession + ".txt", body: []byte(s.Report)}}
			},
			want: "text", wantBy: "matched by accession",
		},
	}

	e := newEnv(t)
	e.cfg.ReportsWait = "3s"
	staging := filepath.Join(e.dir, "staging")
	if err := os.MkdirAll(staging, 0o755); err != nil {
		t.Fatal(err)
	}
	rd, err := reports.NewReader(reports.Options{})
	if err != nil {
		t.Fatal(err)
	}
	modelName := shippedModelName(t)
	start := time.Now()

	// Every case's reports go into the drop folders before the daemon
	// starts, each with its modification time; each report's text hash
	// gives the SEG SOP Instance UID it would lead to.
	series := make([]exampleSeries, len(cases))
	byUID := make([]map[string]string, len(cases)) // SEG SOP UID → report name
	var allHashes, texts []string
	for i, c := range cases {
		series[i] = pickExample(t, c.modality, c.rank)
		ids := readStudyIDs(t, series[i])
		byUID[i] = map[string]string{segSOPFor(t, series[i].SeriesUID, modelName, ""): "(none)"}
		for _, r := range c.reports(t, series[i], ids, staging) {
			dst := filepath.Join(e.cfg.ReportsDir, r.file)
			if r.sr {
				dst = filepath.Join(e.cfg.DICOMDir, r.file)
			}
			src := filepath.Join(staging, fmt.Sprintf("case%d-%s", i, filepath.Base(r.file)))
			placeFile(t, src, dst, r.body, start.Add(-r.age))
			reps, err := rd.ReadFile(dst)
			if err != nil || len(reps) != 1 {
				t.Fatalf("case %q: report %s: %d reports (%v), want 1", c.name, r.name, len(reps), err)
			}
			h := reps[0].Hash()
			allHashes = append(allHashes, h[:16])
			texts = append(texts, reps[0].Text)
			byUID[i][segSOPFor(t, series[i].SeriesUID, modelName, h)] = r.name
		}
	}

	// `tmcad run`: the reports are catalogued first, then every series
	// arrives; each ends stored or parked for want of a report.
	p := e.start()
	waitFor(t, 60*time.Second, "every report catalogued", func() bool {
		return len(p.matching(msgIs(msgReport))) >= len(allHashes)
	})
	var catalogued []string
	for _, l := range p.matching(msgIs(msgReport)) {
		catalogued = append(catalogued, l.str("report_hash"))
	}
	sort.Strings(catalogued)
	sort.Strings(allHashes)
	if !slices.Equal(catalogued, allHashes) {
		t.Fatalf("run catalogued reports with hashes %v, want %v", catalogued, allHashes)
	}
	for _, s := range series {
		e.dropSeries(s, 0, 0)
	}
	runOut := make([]outcome, len(cases))
	for i, c := range cases {
		uid := series[i].SeriesUID
		if c.want == "" {
			parked := p.waitLog(120*time.Second, "series "+uid+" parked", seriesMsg(msgParked, uid))
			runOut[i].refusal = parked.str("report_rule")
			continue
		}
		stored := p.waitLog(120*time.Second, "SEG of series "+uid+" stored", seriesMsg(msgStored, uid))
		made := p.matching(seriesMsg(msgSEGMade, uid))
		if len(made) != 1 || made[0].str("seg_sop_uid") != stored.str("seg_sop_uid") {
			t.Errorf("case %q: run: %d \"SEG made\" lines for the series, want one for the SEG stored (%s)", c.name, len(made), stored.str("seg_sop_uid"))
		} else {
			runOut[i].guide = made[0].str("guide")
		}
	}
	p.stop()
	st := e.status()
	runSEGs := archiveSEGs(t, e.cfg.ArchiveDir)
	for i := range cases {
		uid := series[i].SeriesUID
		runOut[i].segSOPs = segSOPsOf(runSEGs, uid)
		switch {
		case slices.ContainsFunc(st.AwaitingReport, func(b struct{ SeriesUID string }) bool { return b.SeriesUID == uid }):
			runOut[i].decision = "no report"
		case len(runOut[i].segSOPs) > 0:
			runOut[i].decision = "segmented"
		}
	}

	// `tmcad process` on the same folders and configuration, into its own
	// archive.
	archive := filepath.Join(e.dir, "process-archive")
	masks := filepath.Join(e.dir, "process-masks")
	cmd := exec.Command(tmcadBin, "process", "--config", e.cfgPath, "--input", e.cfg.DICOMDir, "--reports", e.cfg.ReportsDir,
		"--archive", archive, "--masks-png", masks, "--log-level", "info")
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	// The refused cases fail their series, so process exits 1.
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		t.Fatalf("tmcad process: %v\n%s", err, out)
	}
	// The process's output joins the daemon's in the harness's log checks
	// and in the log dump of a failed test.
	e.mu.Lock()
	e.procs = append(e.procs, &daemonProc{t: t, lines: strings.Split(string(out), "\n")})
	e.mu.Unlock()
	var sum struct {
		Series []struct {
			SeriesUID string `json:"series_uid"`
			Report    string `json:"report"`
			Guide     string `json:"guide"`
			Error     string `json:"error"`
			Objects   []struct {
				Kind string `json:"kind"`
				SOP  string `json:"sop_instance_uid"`
			} `json:"objects"`
		} `json:"series"`
	}
	b, err := os.ReadFile(filepath.Join(masks, "summary.json"))
	if err != nil {
		t.Fatalf("tmcad process wrote no summary: %v\n%s", err, out)
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	procSEGs := archiveSEGs(t, archive)
	procOut := make([]outcome, len(cases))
	procReport := make([]string, len(cases))
	for i := range cases {
		uid := series[i].SeriesUID
		procOut[i].segSOPs = segSOPsOf(procSEGs, uid)
		for _, r := range sum.Series {
			if r.SeriesUID != uid {
				continue
			}
			procReport[i], procOut[i].guide = r.Report, r.Guide
			switch {
			case strings.HasPrefix(r.Error, "no report: "):
				procOut[i].decision = "no report"
				procOut[i].refusal = strings.TrimPrefix(r.Error, "no report: ")
			case r.Error == "" && len(r.Objects) > 0 && r.Objects[0].Kind == "SEG":
				procOut[i].decision = "segmented"
				if !slices.Contains(procOut[i].segSOPs, r.Objects[0].SOP) {
					t.Errorf("series %s: the process summary names SEG %s, not in its archive (%v)", uid, r.Objects[0].SOP, procOut[i].segSOPs)
				}
			default:
				procOut[i].decision = "error: " + r.Error
			}
		}
	}

	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			run, proc := &runOut[i], &procOut[i]
			for _, o := range []*outcome{run, proc} {
				if len(o.segSOPs) == 1 {
					if o.used = byUID[i][o.segSOPs[0]]; o.used == "" {
						o.used = "a SEG UID derived from none of the case's reports"
					}
				}
			}
			wantDecision := "segmented"
			if c.want == "" {
				wantDecision = "no report"
			}
			t.Logf("run: %s, report %q, SEGs %v; process: %s, report %q (%s), SEGs %v",
				run.decision, run.used, run.segSOPs, proc.decision, proc.used, procReport[i], proc.segSOPs)
			if run.decision != proc.decision {
				t.Errorf("the modes decide differently: run %q, process %q", run.decision, proc.decision)
			}
			if run.refusal != proc.refusal {
				t.Errorf("the modes refused for different reasons: run %q, process %q", run.refusal, proc.refusal)
			}
			if !slices.Equal(run.segSOPs, proc.segSOPs) {
				t.Errorf("the modes stored different SEGs: run %v, process %v", run.segSOPs, proc.segSOPs)
			}
			if run.used != proc.used {
				t.Errorf("the modes used different reports: run %q, process %q", run.used, proc.used)
			}
			if run.guide != proc.guide {
				t.Errorf("the modes made different guide texts: run %q, process %q", run.guide, proc.guide)
			}
			if run.decision != wantDecision || proc.decision != wantDecision {
				t.Errorf("decision: run %q, process %q; want %q", run.decision, proc.decision, wantDecision)
			}
			if c.want != "" && (run.used != c.want || proc.used != c.want || len(run.segSOPs) != 1) {
				t.Errorf("report used: run %q, process %q; want %q, with one SEG each", run.used, proc.used, c.want)
			}
			if c.want == "" && (len(run.segSOPs) != 0 || len(proc.segSOPs) != 0) {
				t.Errorf("a refused case stored SEGs: run %v, process %v", run.segSOPs, proc.segSOPs)
			}
			if !strings.Contains(procReport[i], c.wantBy) {
				t.Errorf("process says %q about the report, want %q in it", procReport[i], c.wantBy)
			}
		})
	}

	e.checkNoPHI(series)
	logs := e.allLogs()
	for _, text := range texts {
		for _, line := range strings.Split(text, "\n") {
			if len(line) >= 20 && strings.Contains(logs, line) {
				t.Errorf("a log holds a line of report text (%d characters)", len(line))
			}
		}
	}
}

// pickExample returns the rank-th example series (from 0) of a modality.
func pickExample(t *testing.T, modality string, rank int) exampleSeries {
	t.Helper()
	n := 0
	for _, s := range examples {
		if s.Modality == modality {
			if n == rank {
				return s
			}
			n++
		}
	}
	t.Fatalf("examples/cases.json has %d %s series, the test needs %d", n, modality, rank+1)
	return exampleSeries{}
}

// readStudyIDs reads the study identifiers from the series' first file.
func readStudyIDs(t *testing.T, s exampleSeries) studyIDs {
	t.Helper()
	ds, err := dicom.ParseFile(s.paths()[0], nil, dicom.SkipPixelData())
	if err != nil {
		t.Fatal(err)
	}
	str := func(tg tag.Tag) string {
		el, err := ds.FindElementByTag(tg)
		if err != nil || el.Value == nil || el.Value.ValueType() != dicom.Strings {
			return ""
		}
		if v := el.Value.GetValue().([]string); len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	ids := studyIDs{StudyUID: str(tag.StudyInstanceUID), Accession: str(tag.AccessionNumber), PatientID: str(tag.PatientID),
		PatientName: str(tag.PatientName), StudyDate: str(tag.StudyDate)}
	if ids.StudyUID != s.StudyUID || ids.Accession == "" || ids.PatientID == "" || len(ids.StudyDate) != 8 {
		t.Fatalf("series %s: study UID %s, accession, patient ID or study date missing from its first file", s.SeriesUID, ids.StudyUID)
	}
	return ids
}

// placeFile writes body to src, sets its modification time, and renames
// it to dst, so that the drop folder only ever holds the whole file with
// that time.
func placeFile(t *testing.T, src, dst string, body []byte, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, body, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(src, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(src, dst); err != nil {
		t.Fatal(err)
	}
}

// jsonReport encodes a JSON sidecar report.
func jsonReport(t *testing.T, fields map[string]string) []byte {
	t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hl7ORU builds one HL7 v2 ORU^R01 message: the patient ID in PID-3, the
// accession number (when not empty) in OBR-3, the study date in OBR-7,
// the result status in OBR-25 and every OBX-11, one TX OBX per line.
// The lines must not hold HL7 delimiters.
func hl7ORU(patientID, accession, studyDate, status string, lines ...string) []byte {
	obr := make([]string, 26)
	obr[0], obr[1], obr[3], obr[4], obr[7], obr[25] = "OBR", "1", accession, "71046^XR CHEST 2 VIEWS^CPT4", studyDate+"093000", status
	segs := []string{
		"MSH|^~\\&|RIS|AGREE|TMCAD|AGREE|" + studyDate + "120000||ORU^R01^ORU_R01|AGREE" + status + "|P|2.5.1",
		"PID|1||" + patientID + "^^^AGREE^MR",
		strings.Join(obr, "|"),
	}
	for i, l := range lines {
		segs = append(segs, fmt.Sprintf("OBX|%d|TX|18782-3^Radiology Study observation^LN||%s||||||%s", i+1, l, status))
	}
	return []byte(strings.Join(segs, "\r") + "\r")
}

// makeBasicTextSR writes a Basic Text SR (COMPLETE, VERIFIED: a final
// report) of the study with pydicom and returns its bytes.
func makeBasicTextSR(t *testing.T, dir string, ids studyIDs, finding, impression string) []byte {
	t.Helper()
	path := filepath.Join(dir, "basic-text-sr.dcm")
	arg, err := json.Marshal(map[string]string{"study_uid": ids.StudyUID, "accession": ids.Accession, "patient_id": ids.PatientID,
		"patient_name": ids.PatientName, "study_date": ids.StudyDate, "finding": finding, "impression": impression})
	if err != nil {
		t.Fatal(err)
	}
	mk := exec.Command("/usr/bin/python3", "-c", `
import json, sys
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian
a = json.loads(sys.argv[1])
def code(value, meaning):
    c = Dataset()
    c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, "DCM", meaning
    return c
def item(vt, meaning, value):
    it = Dataset()
    it.RelationshipType = "CONTAINS"
    it.ValueType = vt
    it.ConceptNameCodeSequence = Sequence([code(value, meaning)])
    return it
def text(meaning, value, v):
    it = item("TEXT", meaning, value)
    it.TextValue = v
    return it
def container(meaning, value, children):
    it = item("CONTAINER", meaning, value)
    it.ContinuityOfContent = "SEPARATE"
    it.ContentSequence = Sequence(children)
    return it
meta = FileMetaDataset()
meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
meta.MediaStorageSOPInstanceUID = "2.25.777000000000000000000000000000000001"
meta.TransferSyntaxUID = ExplicitVRLittleEndian
meta.ImplementationClassUID = "2.25.777000000000000000000000000000000009"
ds = FileDataset(sys.argv[2], {}, file_meta=meta, preamble=b"\0" * 128)
ds.is_little_endian, ds.is_implicit_VR = True, False
ds.SOPClassUID = meta.MediaStorageSOPClassUID
ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
ds.Modality = "SR"
ds.StudyInstanceUID = a["study_uid"]
ds.SeriesInstanceUID = "2.25.777000000000000000000000000000000002"
ds.AccessionNumber = a["accession"]
ds.PatientID = a["patient_id"]
ds.PatientName = a["patient_name"]
ds.StudyDate = a["study_date"]
ds.ValueType = "CONTAINER"
ds.ConceptNameCodeSequence = Sequence([Dataset()])
ds.ConceptNameCodeSequence[0].CodeValue = "18748-4"
ds.ConceptNameCodeSequence[0].CodingSchemeDesignator = "LN"
ds.ConceptNameCodeSequence[0].CodeMeaning = "Diagnostic Imaging Report"
ds.ContinuityOfContent = "SEPARATE"
ds.CompletionFlag, ds.VerificationFlag = "COMPLETE", "VERIFIED"
ds.ContentSequence = Sequence([
    container("Findings", "121070", [text("Finding", "121071", a["finding"])]),
    container("Impressions", "121072", [text("Impression", "121073", a["impression"])]),
])
ds.save_as(sys.argv[2], write_like_original=False)
`, string(arg), path)
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("making the DICOM SR: %v\n%s", err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	return b
}

// shippedModelName is the shipped model's name (its manifest's), one of
// the inputs of a SEG's UIDs.
func shippedModelName(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "models", "tmca-cxr-compact", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(b, &m); err != nil || m.Name == "" {
		t.Fatalf("models/tmca-cxr-compact/manifest.json: no name (%v)", err)
	}
	return m.Name
}

// segSOPFor is the SOP Instance UID of the BINARY SEG the shipped model
// makes for a series guided by the report of this text hash ("" for no
// report), under the default UID root: the derivation of
// writer.deriveSEGUIDs (source series, model name and version, report
// hash, segmentation type).
func segSOPFor(t *testing.T, seriesUID, modelName, reportHash string) string {
	t.Helper()
	uid, err := writer.DeriveUID("", "sop", seriesUID, modelName, shippedVersion, reportHash, string(writer.Binary))
	if err != nil {
		t.Fatal(err)
	}
	return uid
}

// segSOPsOf lists, sorted, the SOP Instance UIDs of the SEGs that
// reference the series.
func segSOPsOf(segs []archivedSEG, seriesUID string) []string {
	var out []string
	for _, s := range segs {
		if slices.Contains(s.ReferencedSeries, seriesUID) {
			out = append(out, s.SOP)
		}
	}
	sort.Strings(out)
	return out
}
