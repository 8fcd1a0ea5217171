package reports

import (
	"strings"
	"testing"
	"time"
)

func rep(src, uid, acc, pid, date string, st Status, mod int) Report {
	return Report{StudyInstanceUID: uid, AccessionNumber: acc, PatientID: pid, StudyDate: date,
		Text: "Findings: text of " + src, Status: st, Source: src, Format: "text",
		ModTime: time.Date(2024, 3, 15, 10, mod, 0, 0, time.UTC)}
}

func TestMatchOrderAndReplacement(t *testing.T) {
	c := NewCatalog(MatchOptions{})
	c.Put("a/P.hl7", []Report{rep("a/P.hl7", "", "ACC1", "PAT1", "20240315", StatusPreliminary, 5)})
	res := c.Match(Study{StudyInstanceUID: "1.2.3", AccessionNumber: "ACC1"})
	if !res.Matched() || res.By != MatchAccession || res.Report.Status != StatusPreliminary {
		t.Fatalf("prelim: %+v", res)
	}
	// The final report replaces the preliminary one even though it is older on disk.
	c.Put("a/F.hl7", []Report{rep("a/F.hl7", "", "ACC1", "PAT1", "20240315", StatusFinal, 1)})
	res = c.Match(Study{StudyInstanceUID: "1.2.3", AccessionNumber: "ACC1"})
	if !res.Matched() || res.Report.Source != "a/F.hl7" || res.Candidates != 2 || !strings.Contains(res.Reason, "superseding 1") {
		t.Fatalf("P→F: %+v", res)
	}
	// A corrected report replaces the final one.
	c.Put("a/C.hl7", []Report{rep("a/C.hl7", "", "ACC1", "", "", StatusCorrected, 0)})
	if res = c.Match(Study{AccessionNumber: "ACC1"}); res.Report == nil || res.Report.Source != "a/C.hl7" {
		t.Fatalf("F→C: %+v", res)
	}
	// Among equals the newer file wins, then the later name.
	c2 := NewCatalog(MatchOptions{})
	c2.Put("x/1.txt", []Report{rep("x/1.txt", "1.2.9", "", "", "", StatusFinal, 3)})
	c2.Put("x/2.txt", []Report{rep("x/2.txt", "1.2.9", "", "", "", StatusUnknown, 4)})
	if res = c2.Match(Study{StudyInstanceUID: "1.2.9"}); res.Report == nil || res.Report.Source != "x/2.txt" || res.By != MatchStudyUID {
		t.Fatalf("newer: %+v", res)
	}
	// Equal status and time: the content hash decides, whatever the file
	// names, and the conflict is reported with both hashes.
	c2.Put("x/3.txt", []Report{rep("x/3.txt", "1.2.9", "", "", "", StatusFinal, 4)})
	res = c2.Match(Study{StudyInstanceUID: "1.2.9"})
	r2, r3 := rep("x/2.txt", "", "", "", "", 0, 0), rep("x/3.txt", "", "", "", "", 0, 0)
	want := "x/2.txt"
	if r3.Hash() > r2.Hash() {
		want = "x/3.txt"
	}
	if res.Report.Source != want || !strings.Contains(res.Conflict, res.Report.Hash()[:12]) {
		t.Fatalf("tie: %+v, want %s", res, want)
	}
	// The same reports under swapped names give the same text chosen.
	c3 := NewCatalog(MatchOptions{})
	a, b := rep("x/2.txt", "1.2.9", "", "", "", StatusUnknown, 4), rep("x/3.txt", "1.2.9", "", "", "", StatusFinal, 4)
	a.Source, b.Source = "y/b.txt", "y/a.txt"
	c3.Put(a.Source, []Report{a})
	c3.Put(b.Source, []Report{b})
	if got := c3.Match(Study{StudyInstanceUID: "1.2.9"}); got.Report.Hash() != res.Report.Hash() {
		t.Fatalf("the choice depends on file names: %+v", got)
	}
	// Study UID wins over accession.
	c.Put("b/uid.json", []Report{rep("b/uid.json", "1.2.3", "", "", "", StatusFinal, 0)})
	if res = c.Match(Study{StudyInstanceUID: "1.2.3", AccessionNumber: "ACC1"}); res.By != MatchStudyUID || res.Report.Source != "b/uid.json" {
		t.Fatalf("uid first: %+v", res)
	}
	c.Remove("b/uid.json")
	if c.Len() != 3 {
		t.Errorf("Len = %d", c.Len())
	}
}

func TestMatchAmbiguousAndConflicts(t *testing.T) {
	phi := []string{"ACC1", "PAT1", "20240315", "text of"}
	check := func(res MatchResult, want string) {
		t.Helper()
		if res.Matched() || !strings.Contains(res.Reason, want) {
			t.Errorf("want no match with %q, got %+v", want, res)
		}
		for _, p := range phi {
			if strings.Contains(res.Reason, p) {
				t.Errorf("reason %q contains PHI %q", res.Reason, p)
			}
		}
	}
	// Two reports share the accession number but are for different patients.
	c := NewCatalog(MatchOptions{})
	c.Put("r1.json", []Report{rep("r1.json", "", "ACC1", "PAT1", "20240315", StatusFinal, 0)})
	c.Put("r2.json", []Report{rep("r2.json", "", "ACC1", "PAT2", "20240315", StatusFinal, 1)})
	check(c.Match(Study{AccessionNumber: "ACC1"}), "ambiguous: 2 reports share the study's accession number but disagree on patient and date")

	// The only report with the accession names another study UID.
	c = NewCatalog(MatchOptions{})
	c.Put("r.json", []Report{rep("r.json", "1.2.99", "ACC1", "", "", StatusFinal, 0)})
	check(c.Match(Study{StudyInstanceUID: "1.2.3", AccessionNumber: "ACC1"}), "report study UID differs from study's")

	// Matched by UID, but the report's accession differs from the study's.
	c = NewCatalog(MatchOptions{})
	c.Put("r.json", []Report{rep("r.json", "1.2.3", "ACC2", "", "", StatusFinal, 0)})
	check(c.Match(Study{StudyInstanceUID: "1.2.3", AccessionNumber: "ACC1"}), "another accession number")

	// Patient + date: unambiguous is a match, two different studies are not.
	c = NewCatalog(MatchOptions{})
	c.Put("p1.txt", []Report{rep("p1.txt", "", "ACCX", "PAT1", "20240315", StatusFinal, 0)})
	res := c.Match(Study{StudyInstanceUID: "1.2.3", PatientID: "PAT1", StudyDate: "20240315"})
	if !res.Matched() || res.By != MatchPatientDate {
		t.Errorf("patient+date: %+v", res)
	}
	c.Put("p2.txt", []Report{rep("p2.txt", "", "ACCY", "PAT1", "20240315", StatusFinal, 0)})
	check(c.Match(Study{StudyInstanceUID: "1.2.3", PatientID: "PAT1", StudyDate: "20240315"}), "ambiguous")
	// Without identifiers, two reports for one patient and day are ambiguous.
	c = NewCatalog(MatchOptions{})
	c.Put("n1.hl7", []Report{rep("n1.hl7", "", "", "PAT1", "20240315", StatusFinal, 0)})
	c.Put("n2.hl7", []Report{rep("n2.hl7", "", "", "PAT1", "20240315", StatusPreliminary, 0)})
	check(c.Match(Study{PatientID: "PAT1", StudyDate: "20240315"}), "none with a study UID or accession number")
	// Disabled last resort.
	c = NewCatalog(MatchOptions{NoPatientDate: true})
	c.Put("p1.txt", []Report{rep("p1.txt", "", "", "PAT1", "20240315", StatusFinal, 0)})
	check(c.Match(Study{PatientID: "PAT1", StudyDate: "20240315"}), "no report")
}

func TestMatchWithParsedReports(t *testing.T) {
	// The preliminary HL7 and the final HL7 of the same accession: the final wins
	// and carries the study UID, so matching by UID finds it too.
	r := mustReader(t, Options{})
	c := NewCatalog(MatchOptions{})
	for _, p := range []string{"testdata/oru_prelim.hl7", "testdata/oru_final.hl7"} {
		reps, err := r.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		c.Put(p, reps)
	}
	res := c.Match(Study{AccessionNumber: "ACC7781"})
	if !res.Matched() || res.Report.Status != StatusFinal {
		t.Fatalf("%+v", res)
	}
	res = c.Match(Study{StudyInstanceUID: "1.2.826.0.1.3680043.8.498.77", AccessionNumber: "ACC7781"})
	if !res.Matched() || res.By != MatchStudyUID || res.Report.Source != "testdata/oru_final.hl7" {
		t.Fatalf("%+v", res)
	}
}
