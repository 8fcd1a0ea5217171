package reports

import (
	"fmt"
	"strings"
	"sync"
)

// Study identifies the study a report is wanted for. AccessionNumber,
// PatientID and StudyDate are PHI and never appear in a MatchResult.
type Study struct {
	StudyInstanceUID string
	AccessionNumber  string
	PatientID        string
	StudyDate        string // YYYYMMDD
}

// MatchKey says which identifier matched a report to a study.
type MatchKey string

// The identifiers, in the order they are tried.
const (
	MatchNone        MatchKey = ""
	MatchStudyUID    MatchKey = "study_uid"
	MatchAccession   MatchKey = "accession"
	MatchPatientDate MatchKey = "patient_date"
)

// MatchResult is the outcome of matching a study to the catalog's
// reports. Reason explains it in words without PHI, for logs and status.
type MatchResult struct {
	// Report is the chosen report, nil when there is no match.
	Report *Report
	// By is the identifier that matched.
	By MatchKey
	// Reason says why this report, or why none.
	Reason string
	// Candidates is the number of reports found by the identifier used.
	Candidates int
	// Conflict names two different reports of equal status that competed
	// (see Choice.Conflict), for a warning; "" when none did.
	Conflict string
}

// Matched reports whether a report was chosen.
func (m MatchResult) Matched() bool { return m.Report != nil }

// MatchOptions configures matching.
type MatchOptions struct {
	// NoPatientDate disables the last-resort match on PatientID and
	// StudyDate.
	NoPatientDate bool
}

// Catalog holds the known reports, one per source file, and matches
// studies to them. It is safe for concurrent use.
type Catalog struct {
	opts    MatchOptions
	mu      sync.RWMutex
	reports map[string][]Report // by Source (an HL7 batch file may hold several)
}

// NewCatalog returns an empty catalog.
func NewCatalog(opts MatchOptions) *Catalog {
	return &Catalog{opts: opts, reports: make(map[string][]Report)}
}

// Put records the reports read from one file, replacing whatever that file
// held before (a file rewritten in place).
func (c *Catalog) Put(source string, reps []Report) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp := make([]Report, len(reps))
	copy(cp, reps)
	for i := range cp {
		if cp[i].Source == "" {
			cp[i].Source = source
		}
	}
	if len(cp) == 0 {
		delete(c.reports, source)
		return
	}
	c.reports[source] = cp
}

// Remove forgets the reports of a file.
func (c *Catalog) Remove(source string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.reports, source)
}

// Len returns the number of reports held.
func (c *Catalog) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := 0
	for _, r := range c.reports {
		n += len(r)
	}
	return n
}

// Match finds the report for a study with Choose (the rule `tmcad run`
// uses too): by StudyInstanceUID, else by AccessionNumber, else (unless
// disabled) by PatientID and StudyDate; the best version of the report
// wins (see Choose).
func (c *Catalog) Match(s Study) MatchResult {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var all []*Report
	for _, reps := range c.reports {
		for i := range reps {
			all = append(all, &reps[i])
		}
	}
	cands := make([]Candidate, len(all))
	for i, r := range all {
		cands[i] = r.Candidate()
	}
	ch := Choose(StudyKeys{StudyUID: s.StudyInstanceUID, Accession: s.AccessionNumber, PatientDate: patientDate(s.PatientID, s.StudyDate)},
		cands, c.opts.NoPatientDate)
	res := MatchResult{By: ch.By, Reason: ch.Reason, Candidates: ch.Candidates, Conflict: ch.Conflict}
	if ch.Index >= 0 {
		res.Report = all[ch.Index]
	}
	return res
}

// Candidate returns what Choose needs to know of the report, with its
// identifiers as they are.
func (r *Report) Candidate() Candidate {
	return Candidate{StudyUID: r.StudyInstanceUID, Accession: r.AccessionNumber, PatientDate: patientDate(r.PatientID, r.StudyDate),
		Status: r.Status, ModTime: r.ModTime, ContentHash: r.Hash()}
}

// patientDate is the patient-and-date key: "" unless both are known.
func patientDate(patientID, studyDate string) string {
	if strings.TrimSpace(patientID) == "" || strings.TrimSpace(studyDate) == "" {
		return ""
	}
	return patientID + "\x00" + studyDate
}

// Rank orders statuses for replacement: 1 preliminary, 2 final or
// unstated, 3 corrected.
func (s Status) Rank() int { return s.rank() }

func countReports(n int) string {
	if n == 1 {
		return "1 report"
	}
	return fmt.Sprintf("%d reports", n)
}

func keyWords(k MatchKey) string {
	switch k {
	case MatchStudyUID:
		return "study UID"
	case MatchAccession:
		return "accession number"
	case MatchPatientDate:
		return "patient and date"
	}
	return "nothing"
}
