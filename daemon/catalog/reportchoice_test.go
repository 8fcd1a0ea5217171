package catalog

import (
	"context"
	"fmt"
	"testing"
	"time"

	"tmcad/reports"
)

// `tmcad run` (the catalogue, which keeps only hashes of accession numbers
// and patient IDs) and `tmcad process` (reports.Catalog, in memory) choose
// a study's report with one rule, reports.Choose: the same reports give the
// same choice, or no choice in both.
func TestReportChoiceRunAndProcessAgree(t *testing.T) {
	at := func(min int) time.Time { return time.Date(2024, 3, 15, 10, min, 0, 0, time.UTC) }
	rep := func(src, uid, acc, pid, date string, st reports.Status, min int, text string) reports.Report {
		return reports.Report{Source: src, StudyInstanceUID: uid, AccessionNumber: acc, PatientID: pid, StudyDate: date,
			Status: st, ModTime: at(min), Text: text, Format: "text"}
	}
	study := reports.Study{StudyInstanceUID: "1.2.3", AccessionNumber: "ACC1", PatientID: "PAT1", StudyDate: "20240315"}
	cases := []struct {
		name  string
		study reports.Study
		reps  []reports.Report
		want  string // text of the chosen report, "" for none
	}{
		{"accession names another study UID", study,
			[]reports.Report{rep("a.json", "9.9.9", "ACC1", "", "", reports.StatusFinal, 0, "other study")}, ""},
		{"two patient+date candidates of different studies", reports.Study{StudyInstanceUID: "1.2.3", PatientID: "PAT1", StudyDate: "20240315"},
			[]reports.Report{rep("p1.txt", "", "ACCX", "PAT1", "20240315", reports.StatusFinal, 0, "x"),
				rep("p2.txt", "", "ACCY", "PAT1", "20240315", reports.StatusFinal, 1, "y")}, ""},
		{"one patient+date candidate", reports.Study{StudyInstanceUID: "1.2.3", PatientID: "PAT1", StudyDate: "20240315"},
			[]reports.Report{rep("p1.txt", "", "ACCX", "PAT1", "20240315", reports.StatusFinal, 0, "x")}, "x"},
		{"preliminary, final and corrected", study,
			[]reports.Report{rep("P.hl7", "", "ACC1", "PAT1", "20240315", reports.StatusPreliminary, 9, "prelim"),
				rep("F.hl7", "", "ACC1", "PAT1", "20240315", reports.StatusFinal, 1, "final"),
				rep("C.hl7", "", "ACC1", "", "", reports.StatusCorrected, 0, "corrected")}, "corrected"},
		{"two final reports at the same time", study,
			[]reports.Report{rep("ACC1.txt", "", "ACC1", "", "", reports.StatusFinal, 3, "first words"),
				rep("b.json", "", "ACC1", "", "", reports.StatusFinal, 3, "second words")}, "?"},
		{"SR by study UID and text by accession", study,
			[]reports.Report{rep("sr.dcm", "1.2.3", "ACC1", "PAT1", "20240315", reports.StatusFinal, 0, "sr"),
				rep("ACC1.txt", "", "ACC1", "", "", reports.StatusFinal, 5, "text")}, "sr"},
		{"report matched by UID has another accession", study,
			[]reports.Report{rep("u.json", "1.2.3", "ACC2", "", "", reports.StatusFinal, 0, "u")}, ""},
	}
	ctx := context.Background()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := testStore(t)
			cat := New(st, time.Now)
			mem := reports.NewCatalog(reports.MatchOptions{})
			for k := range c.reps {
				r := c.reps[k]
				if err := cat.AddReport(ctx, &r, 0); err != nil {
					t.Fatal(err)
				}
				mem.Put(r.Source, []reports.Report{r})
			}
			process := mem.Match(c.study)
			ref, err := cat.MatchReport(ctx, Series{StudyUID: c.study.StudyInstanceUID,
				AccHash: MatchHash(c.study.AccessionNumber), PDHash: MatchHash(c.study.PatientID, c.study.StudyDate)})
			if err != nil {
				t.Fatal(err)
			}
			runHash, processHash := "", ""
			if ref != nil {
				runHash = ref.Hash
			}
			if process.Report != nil {
				processHash = process.Report.Hash()
			}
			if runHash != processHash {
				t.Fatalf("case %d: run chose %q, process %q (%s)", i, runHash, processHash, process.Reason)
			}
			switch c.want {
			case "":
				if process.Report != nil {
					t.Fatalf("chose %q, want none", process.Report.Text)
				}
			case "?": // either, by content hash, with the conflict named
				if process.Report == nil || process.Conflict == "" || ref.Conflict != process.Conflict {
					t.Fatalf("tie: %+v / run conflict %q", process, ref.Conflict)
				}
			default:
				if process.Report == nil || process.Report.Text != c.want {
					t.Fatalf("chose %v, want %q (%s)", fmt.Sprint(process.Report), c.want, process.Reason)
				}
			}
		})
	}
}
