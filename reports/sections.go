package reports

import (
	"strings"
)

// DefaultSections are the sections that guide the model when a report has
// section headings.
var DefaultSections = []string{"FINDINGS", "IMPRESSION"}

// sectionAliases maps a recognised heading (upper case, single spaces) to
// its section name.
var sectionAliases = map[string]string{
	"FINDINGS":         "FINDINGS",
	"FINDING":          "FINDINGS",
	"IMPRESSION":       "IMPRESSION",
	"IMPRESSIONS":      "IMPRESSION",
	"CONCLUSION":       "CONCLUSION",
	"CONCLUSIONS":      "CONCLUSION",
	"HISTORY":          "HISTORY",
	"CLINICAL HISTORY": "HISTORY",
	"INDICATION":       "HISTORY",
	"INDICATIONS":      "HISTORY",
	"TECHNIQUE":        "TECHNIQUE",
	"COMPARISON":       "COMPARISON",
	"COMPARISONS":      "COMPARISON",
	// Headings of context, kept apart so that their words never guide
	// the model.
	"EXAMINATION":            "EXAMINATION",
	"EXAM":                   "EXAMINATION",
	"PROCEDURE":              "EXAMINATION",
	"CLINICAL INFORMATION":   "HISTORY",
	"CLINICAL DETAILS":       "HISTORY",
	"CLINICAL INDICATION":    "HISTORY",
	"REASON FOR EXAM":        "HISTORY",
	"REASON FOR EXAMINATION": "HISTORY",
	"REASON FOR STUDY":       "HISTORY",
	"RECOMMENDATION":         "RECOMMENDATION",
	"RECOMMENDATIONS":        "RECOMMENDATION",
	"OPINION":                "IMPRESSION",
	"SUMMARY":                "IMPRESSION",
	"REPORT":                 "FINDINGS",
}

// Section is one headed part of a report.
type Section struct {
	// Name is the canonical heading: FINDINGS, IMPRESSION, CONCLUSION,
	// HISTORY, TECHNIQUE, COMPARISON, EXAMINATION or RECOMMENDATION.
	Name string
	// Text is the section's text with white space collapsed.
	Text string
}

// SplitSections finds the section headings in text. A heading is one of
// FINDINGS, IMPRESSION, CONCLUSION, HISTORY (or CLINICAL HISTORY,
// INDICATION), TECHNIQUE, COMPARISON (singular or plural, any case) at the
// start of a line, either alone on its line (with or without a colon) or
// followed by a colon and the section's first words. It returns the
// sections in document order; text before the first heading is not in any
// section. ok is false when text has no heading.
func SplitSections(text string) (sections []Section, ok bool) {
	var cur *Section
	var buf []string
	flush := func() {
		if cur != nil {
			cur.Text = collapseSpace(strings.Join(buf, " "))
			sections = append(sections, *cur)
		}
		buf = buf[:0]
	}
	for _, line := range strings.Split(strings.ReplaceAll(text, "\r", "\n"), "\n") {
		name, rest, isHeading := parseHeading(line)
		if isHeading {
			flush()
			cur = &Section{Name: name}
			buf = append(buf, rest)
			continue
		}
		if cur != nil {
			buf = append(buf, line)
		}
	}
	flush()
	return sections, len(sections) > 0
}

// ParseHeading recognises a section heading at the start of line (see
// SplitSections) and returns the canonical section name and the text
// after the colon.
func ParseHeading(line string) (name, rest string, ok bool) {
	return parseHeading(line)
}

// parseHeading recognises a heading line and returns the section name and
// the text after the colon.
func parseHeading(line string) (name, rest string, ok bool) {
	s := strings.TrimSpace(line)
	head, after, colon := strings.Cut(s, ":")
	if !colon {
		head = strings.TrimRight(s, " .-")
	}
	key := strings.ToUpper(strings.Join(strings.Fields(head), " "))
	name, ok = sectionAliases[key]
	if !ok {
		return "", "", false
	}
	return name, strings.TrimSpace(after), true
}

// ExtractSections returns the text that guides the model: when text has
// section headings and at least one of the wanted sections
// (DefaultSections when want is nil) has text, those sections' texts in
// the order of want, joined with a space; otherwise the whole text. White
// space is collapsed to single spaces.
func ExtractSections(text string, want []string) string {
	if want == nil {
		want = DefaultSections
	}
	secs, ok := SplitSections(text)
	if ok {
		var parts []string
		for _, w := range want {
			w = canonicalSection(w)
			for _, s := range secs {
				if s.Name == w && s.Text != "" {
					parts = append(parts, s.Text)
				}
			}
		}
		if len(parts) > 0 {
			return strings.Join(parts, " ")
		}
	}
	return collapseSpace(text)
}

// canonicalSection maps a configured section name to its canonical form.
func canonicalSection(s string) string {
	k := strings.ToUpper(strings.Join(strings.Fields(strings.TrimSuffix(strings.TrimSpace(s), ":")), " "))
	if n, ok := sectionAliases[k]; ok {
		return n
	}
	return k
}

// ValidSection reports whether name is a section heading that
// ExtractSections recognises, for validating configuration.
func ValidSection(name string) bool {
	_, ok := sectionAliases[canonicalSection(name)]
	return ok
}

// collapseSpace trims s and replaces every run of white space with one
// space.
func collapseSpace(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
