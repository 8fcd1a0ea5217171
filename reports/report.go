package reports

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"golang.org/x/text/unicode/norm"
)

// Status is a report's result status (HL7 v2 table 0123 / DICOM SR
// completion and verification flags).
type Status int

// Report statuses, in the order in which one report replaces another:
// a corrected report replaces a final one, which replaces a preliminary
// one. A report that states no status (a plain text file, say) counts as
// final.
const (
	StatusUnknown     Status = iota // the source gave no status; ranked as final
	StatusPreliminary               // HL7 P (or R, A), SR PARTIAL or UNVERIFIED
	StatusFinal                     // HL7 F, SR COMPLETE and VERIFIED
	StatusCorrected                 // HL7 C, SR final with predecessor documents
)

// String returns the status as a lower-case word.
func (s Status) String() string {
	switch s {
	case StatusPreliminary:
		return "preliminary"
	case StatusFinal:
		return "final"
	case StatusCorrected:
		return "corrected"
	}
	return "unknown"
}

// rank orders statuses for replacement; unknown ranks as final.
func (s Status) rank() int {
	switch s {
	case StatusPreliminary:
		return 1
	case StatusCorrected:
		return 3
	}
	return 2
}

// ParseStatus reads a status written as an HL7 code (P, F, C, and R or A
// for preliminary) or a word (preliminary, final, corrected, amended),
// case-insensitively. An empty string is StatusUnknown.
func ParseStatus(s string) (Status, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return StatusUnknown, nil
	case "p", "r", "a", "preliminary", "prelim", "draft", "unverified", "partial":
		return StatusPreliminary, nil
	case "f", "final", "verified", "signed":
		return StatusFinal, nil
	case "c", "corrected", "correction", "amended", "addendum":
		return StatusCorrected, nil
	}
	return StatusUnknown, fmt.Errorf("unknown report status %q (want P, F, C or preliminary, final, corrected)", truncateForError(s))
}

// Report is one radiology report as read from a source. AccessionNumber,
// PatientID, StudyDate and Text are PHI: never log them or put them in an
// error; refer to a report by StudyInstanceUID, Source and Hash.
type Report struct {
	// StudyInstanceUID of the study the report describes, when the source
	// says (DICOM SR, JSON, HL7 with a study UID, a text file named by UID).
	StudyInstanceUID string
	// AccessionNumber of the order, when the source says. PHI.
	AccessionNumber string
	// PatientID, for the last-resort match with StudyDate. PHI.
	PatientID string
	// StudyDate as YYYYMMDD, for the last-resort match with PatientID. PHI.
	StudyDate string
	// Text is the whole report, decoded to UTF-8 and normalised (NFC,
	// "\n" line ends, no trailing spaces). PHI.
	Text string
	// Status is the report's result status.
	Status Status
	// Format names the source format: "text", "json", "hl7" or "sr".
	Format string
	// Source is the path of the file the report came from.
	Source string
	// ModTime is the file's modification time.
	ModTime time.Time
}

// Hash returns the hex SHA-256 of the report's normalised text: safe to
// log, and equal for two reports with the same text.
func (r *Report) Hash() string {
	sum := sha256.Sum256([]byte(NormalizeText(r.Text)))
	return hex.EncodeToString(sum[:])
}

// GuideText returns the text that guides the model: the wanted sections
// (DefaultSections when nil) joined with a space when the report has
// section headings, else the whole text with its white space collapsed.
func (r *Report) GuideText(sections []string) string {
	return ExtractSections(r.Text, sections)
}

// NormalizeText returns text in NFC with "\n" line ends, trailing spaces
// removed from every line, and no blank lines at the start or end.
func NormalizeText(text string) string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t\f\v")
	}
	text = strings.Trim(strings.Join(lines, "\n"), "\n")
	return norm.NFC.String(text)
}

// truncateForError shortens a value that is not PHI (a status code, a
// message type) before it goes into an error.
func truncateForError(s string) string {
	const max = 16
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
