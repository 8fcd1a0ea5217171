package reports

import (
	"fmt"
	"strings"
)

// TextSource reads plain-text reports named <AccessionNumber>.txt or
// <StudyInstanceUID>.txt: the file stem is the key, taken as a study UID
// when it looks like one (digits and dots) and as an accession number
// otherwise. Plain text carries no status (StatusUnknown, ranked as final).
type TextSource struct {
	// Options carries the charset for files that are not UTF-8.
	Options Options
}

// Format returns "text".
func (s *TextSource) Format() string { return "text" }

// Detect accepts files ending in .txt.
func (s *TextSource) Detect(name string, head []byte) bool { return hasExt(name, ".txt") }

// Parse decodes the file and keys it by its stem.
func (s *TextSource) Parse(name string, data []byte) ([]Report, error) {
	text, err := decodeText(name, data, s.Options.Charset)
	if err != nil {
		return nil, err
	}
	text = NormalizeText(text)
	if strings.TrimSpace(text) == "" {
		return nil, fmt.Errorf("text report %s: empty", name)
	}
	key := strings.TrimSpace(stem(name))
	if key == "" {
		return nil, fmt.Errorf("text report %s: the file name must be <AccessionNumber>.txt or <StudyInstanceUID>.txt", name)
	}
	r := Report{Text: text, Format: s.Format()}
	if IsUID(key) {
		r.StudyInstanceUID = key
	} else {
		r.AccessionNumber = key
	}
	return []Report{r}, nil
}

// IsUID reports whether s is a well-formed DICOM UID: at most 64
// characters, at least two components of digits separated by dots, no
// leading zero in a component of more than one digit.
func IsUID(s string) bool {
	if len(s) == 0 || len(s) > 64 || !strings.Contains(s, ".") {
		return false
	}
	for _, c := range strings.Split(s, ".") {
		if c == "" || (len(c) > 1 && c[0] == '0') {
			return false
		}
		for i := 0; i < len(c); i++ {
			if c[i] < '0' || c[i] > '9' {
				return false
			}
		}
	}
	return true
}
