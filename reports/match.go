package reports

import (
	"fmt"
	"path/filepath"
	"sort"
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

// Match finds the report for a study: by StudyInstanceUID, else by
// AccessionNumber, else (unless disabled) by PatientID and StudyDate. The
// reports found by an identifier must be versions of one report (no two
// disagree on study UID, accession, patient or date); the best version
// wins (see Supersedes). Reports whose study UID differs from the study's
// are never matched by accession or patient and date. An ambiguous or
// conflicting match is no match, with the reason.
func (c *Catalog) Match(s Study) MatchResult {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var all []*Report
	for _, reps := range c.reports {
		for i := range reps {
			all = append(all, &reps[i])
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Source < all[j].Source })

	if s.StudyInstanceUID != "" {
		cands := filter(all, func(r *Report) bool { return r.StudyInstanceUID == s.StudyInstanceUID })
		if len(cands) > 0 {
			return decide(s, MatchStudyUID, cands)
		}
	}
	if s.AccessionNumber != "" {
		same := filter(all, func(r *Report) bool { return r.AccessionNumber == s.AccessionNumber })
		cands := filter(same, func(r *Report) bool { return !uidConflict(s, r) })
		if len(cands) == 0 && len(same) > 0 {
			return MatchResult{By: MatchNone, Candidates: len(same),
				Reason: fmt.Sprintf("%s with the study's accession number name another study UID (report study UID differs from study's)", countReports(len(same)))}
		}
		if len(cands) > 0 {
			return decide(s, MatchAccession, cands)
		}
	}
	if !c.opts.NoPatientDate && s.PatientID != "" && s.StudyDate != "" {
		cands := filter(all, func(r *Report) bool {
			return r.PatientID == s.PatientID && r.StudyDate == s.StudyDate && !uidConflict(s, r) &&
				(r.AccessionNumber == "" || s.AccessionNumber == "" || r.AccessionNumber == s.AccessionNumber)
		})
		if len(cands) > 0 {
			return decide(s, MatchPatientDate, cands)
		}
	}
	return MatchResult{Reason: "no report with the study's UID, accession number, or patient and date"}
}

// decide picks the best of the candidates found by key, or explains why
// none can be used.
func decide(s Study, key MatchKey, cands []*Report) MatchResult {
	res := MatchResult{By: key, Candidates: len(cands)}
	first := cands[0]
	for _, r := range cands[1:] {
		if what := disagree(first, r); what != "" {
			res.By = MatchNone
			res.Reason = fmt.Sprintf("ambiguous: %s share the study's %s but disagree on %s", countReports(len(cands)), keyWords(key), what)
			return res
		}
	}
	if key == MatchPatientDate && len(cands) > 1 && first.StudyInstanceUID == "" && first.AccessionNumber == "" {
		res.By = MatchNone
		res.Reason = fmt.Sprintf("ambiguous: %s for the study's patient and date, none with a study UID or accession number", countReports(len(cands)))
		return res
	}
	best := cands[0]
	for _, r := range cands[1:] {
		if Supersedes(r, best) {
			best = r
		}
	}
	if s.AccessionNumber != "" && best.AccessionNumber != "" && best.AccessionNumber != s.AccessionNumber {
		res.By = MatchNone
		res.Reason = fmt.Sprintf("conflict: the report matched by %s has another accession number than the study's", keyWords(key))
		return res
	}
	if s.StudyInstanceUID != "" && best.StudyInstanceUID != "" && best.StudyInstanceUID != s.StudyInstanceUID {
		res.By = MatchNone
		res.Reason = "conflict: report study UID differs from study's"
		return res
	}
	res.Report = best
	// The file name is left out: text reports are named by accession number.
	res.Reason = fmt.Sprintf("matched by %s: %s %s report, text sha256 %s",
		keyWords(key), best.Status, best.Format, best.Hash()[:12])
	if len(cands) > 1 {
		res.Reason += fmt.Sprintf(", superseding %d other version(s)", len(cands)-1)
	}
	return res
}

// Supersedes reports whether report a replaces report b: a higher status
// (corrected over final over preliminary; no status counts as final), then
// the newer ModTime, then the later file name.
func Supersedes(a, b *Report) bool {
	if ra, rb := a.Status.rank(), b.Status.rank(); ra != rb {
		return ra > rb
	}
	if !a.ModTime.Equal(b.ModTime) {
		return a.ModTime.After(b.ModTime)
	}
	return filepath.Base(a.Source) > filepath.Base(b.Source)
}

// disagree names the identifier on which two reports that should be
// versions of one report differ, or "".
func disagree(a, b *Report) string {
	differ := func(x, y string) bool { return x != "" && y != "" && x != y }
	switch {
	case differ(a.StudyInstanceUID, b.StudyInstanceUID):
		return "study UID"
	case differ(a.AccessionNumber, b.AccessionNumber):
		return "accession number"
	case differ(a.PatientID, b.PatientID):
		return "patient"
	case differ(a.StudyDate, b.StudyDate):
		return "study date"
	}
	return ""
}

// uidConflict reports whether the report names a study UID other than the
// study's.
func uidConflict(s Study, r *Report) bool {
	return s.StudyInstanceUID != "" && r.StudyInstanceUID != "" && r.StudyInstanceUID != s.StudyInstanceUID
}

func filter(rs []*Report, keep func(*Report) bool) []*Report {
	var out []*Report
	for _, r := range rs {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

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
