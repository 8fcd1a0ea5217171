package reports

import (
	"fmt"
	"time"
)

// Candidate is what choosing a report needs to know of one report. The
// identifiers are compared for equality only, so they may be the values
// themselves (`tmcad process`) or keyed hashes of them (the daemon's
// catalogue, which keeps no accession number or patient ID): both modes
// decide with Choose.
type Candidate struct {
	// StudyUID is the report's Study Instance UID ("" when it names none).
	StudyUID string
	// Accession is the accession number, or its hash; "" when none.
	Accession string
	// PatientDate is the patient ID with the study date, or their hash;
	// "" unless the report states both.
	PatientDate string
	// Status is the report's result status.
	Status Status
	// ModTime is when its content was written (the file's modification time).
	ModTime time.Time
	// ContentHash is Report.Hash(): the last tie-break, so that the same
	// reports give the same choice whatever their file names or order.
	ContentHash string
}

// StudyKeys are a study's identifiers in the same form as the candidates'.
type StudyKeys struct {
	StudyUID, Accession, PatientDate string
}

// Choice is the outcome of Choose.
type Choice struct {
	// Index of the chosen candidate; -1 when none.
	Index int
	// By is the identifier that matched.
	By MatchKey
	// Reason says why this report, or why none, without PHI.
	Reason string
	// Candidates is the number of reports found by the identifier used.
	Candidates int
	// Conflict is set when two different reports of the same status and
	// time competed (two final reports, say): it names both content
	// hashes, for a warning. The choice is still made, by content hash.
	Conflict string
}

// Choose picks the report for a study among candidates: by study UID, else
// by accession number, else (unless noPatientDate) by patient and date.
// The reports found by an identifier must be versions of one report (no
// two disagree on study UID, accession, or patient and date); the best
// version wins: the higher status (corrected, final or unstated,
// preliminary), then the newer content, then the greater content hash.
// Reports naming another study UID are never matched by accession or
// patient and date. An ambiguous or conflicting match is no match, with
// the reason.
func Choose(s StudyKeys, cands []Candidate, noPatientDate bool) Choice {
	idx := func(keep func(c *Candidate) bool) []int {
		var out []int
		for i := range cands {
			if keep(&cands[i]) {
				out = append(out, i)
			}
		}
		return out
	}
	uidConflict := func(c *Candidate) bool {
		return s.StudyUID != "" && c.StudyUID != "" && c.StudyUID != s.StudyUID
	}
	if s.StudyUID != "" {
		if ix := idx(func(c *Candidate) bool { return c.StudyUID == s.StudyUID }); len(ix) > 0 {
			return choose(s, MatchStudyUID, cands, ix)
		}
	}
	if s.Accession != "" {
		same := idx(func(c *Candidate) bool { return c.Accession == s.Accession })
		ix := idx(func(c *Candidate) bool { return c.Accession == s.Accession && !uidConflict(c) })
		if len(ix) == 0 && len(same) > 0 {
			return Choice{Index: -1, Candidates: len(same),
				Reason: fmt.Sprintf("%s with the study's accession number name another study UID (report study UID differs from study's)", countReports(len(same)))}
		}
		if len(ix) > 0 {
			return choose(s, MatchAccession, cands, ix)
		}
	}
	if !noPatientDate && s.PatientDate != "" {
		ix := idx(func(c *Candidate) bool {
			return c.PatientDate == s.PatientDate && !uidConflict(c) &&
				(c.Accession == "" || s.Accession == "" || c.Accession == s.Accession)
		})
		if len(ix) > 0 {
			return choose(s, MatchPatientDate, cands, ix)
		}
	}
	return Choice{Index: -1, Reason: "no report with the study's UID, accession number, or patient and date"}
}

// choose picks the best of the candidates ix found by key, or explains why
// none can be used.
func choose(s StudyKeys, key MatchKey, cands []Candidate, ix []int) Choice {
	res := Choice{Index: -1, By: key, Candidates: len(ix)}
	first := &cands[ix[0]]
	for _, i := range ix[1:] {
		if what := disagree(first, &cands[i]); what != "" {
			res.By = MatchNone
			res.Reason = fmt.Sprintf("ambiguous: %s share the study's %s but disagree on %s", countReports(len(ix)), keyWords(key), what)
			return res
		}
	}
	if key == MatchPatientDate && len(ix) > 1 && first.StudyUID == "" && first.Accession == "" {
		res.By = MatchNone
		res.Reason = fmt.Sprintf("ambiguous: %s for the study's patient and date, none with a study UID or accession number", countReports(len(ix)))
		return res
	}
	best := ix[0]
	for _, i := range ix[1:] {
		if supersedes(&cands[i], &cands[best]) {
			best = i
		}
	}
	b := &cands[best]
	if s.Accession != "" && b.Accession != "" && b.Accession != s.Accession {
		res.By = MatchNone
		res.Reason = fmt.Sprintf("conflict: the report matched by %s has another accession number than the study's", keyWords(key))
		return res
	}
	if s.StudyUID != "" && b.StudyUID != "" && b.StudyUID != s.StudyUID {
		res.By = MatchNone
		res.Reason = "conflict: report study UID differs from study's"
		return res
	}
	for _, i := range ix {
		c := &cands[i]
		if i != best && c.Status.rank() == b.Status.rank() && c.ContentHash != b.ContentHash && b.Status != StatusPreliminary {
			res.Conflict = fmt.Sprintf("two %s reports differ: sha256 %s chosen over %s", b.Status, short(b.ContentHash), short(c.ContentHash))
			break
		}
	}
	res.Index = best
	res.Reason = fmt.Sprintf("matched by %s: %s report, text sha256 %s", keyWords(key), b.Status, short(b.ContentHash))
	if len(ix) > 1 {
		res.Reason += fmt.Sprintf(", superseding %d other version(s)", len(ix)-1)
	}
	return res
}

// supersedes reports whether candidate a replaces b: a higher status, then
// newer content, then the greater content hash.
func supersedes(a, b *Candidate) bool {
	if ra, rb := a.Status.rank(), b.Status.rank(); ra != rb {
		return ra > rb
	}
	if !a.ModTime.Equal(b.ModTime) {
		return a.ModTime.After(b.ModTime)
	}
	return a.ContentHash > b.ContentHash
}

// disagree names the identifier on which two candidates that should be
// versions of one report differ, or "".
func disagree(a, b *Candidate) string {
	differ := func(x, y string) bool { return x != "" && y != "" && x != y }
	switch {
	case differ(a.StudyUID, b.StudyUID):
		return "study UID"
	case differ(a.Accession, b.Accession):
		return "accession number"
	case differ(a.PatientDate, b.PatientDate):
		return "patient and date"
	}
	return ""
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
