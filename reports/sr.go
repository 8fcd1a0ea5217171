package reports

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// SR SOP classes whose TEXT content items SRSource reads.
var srSOPClasses = map[string]string{
	"1.2.840.10008.5.1.4.1.1.88.11": "Basic Text SR",
	"1.2.840.10008.5.1.4.1.1.88.22": "Enhanced SR",
	"1.2.840.10008.5.1.4.1.1.88.33": "Comprehensive SR",
	"1.2.840.10008.5.1.4.1.1.88.34": "Comprehensive 3D SR",
	"1.2.840.10008.5.1.4.1.1.88.35": "Extensible SR",
}

// maxSRDepth bounds the content tree depth walked.
const maxSRDepth = 64

// IsSRSOPClass reports whether a SOP Class UID is one of the structured
// report classes SRSource reads (Basic Text, Enhanced, Comprehensive,
// Comprehensive 3D and Extensible SR), so that the DICOM watcher can route
// such files to the report reader instead of series assembly.
func IsSRSOPClass(uid string) bool {
	_, ok := srSOPClasses[strings.TrimRight(uid, "\x00 ")]
	return ok
}

// srClassPrefix starts the SOP Class UID of every DICOM Structured Report
// class.
const srClassPrefix = "1.2.840.10008.5.1.4.1.1.88."

// IsSR reports whether a DICOM file of this SOP Class UID and Modality is
// a structured report (any SR SOP class, or Modality SR): both modes send
// such a file to the report reader instead of series assembly.
func IsSR(sopClassUID, modality string) bool {
	return strings.HasPrefix(strings.TrimRight(sopClassUID, "\x00 "), srClassPrefix) || modality == "SR"
}

// SRSource reads DICOM Structured Report documents. It walks the
// ContentSequence tree in document order: every TEXT item becomes a line
// "<concept name>: <text>", and every CONTAINER whose concept name is a
// section heading (Findings, Impression, …) a heading line, so that
// section extraction finds the report's sections. StudyInstanceUID,
// AccessionNumber, PatientID and StudyDate come from the dataset; the
// status from CompletionFlag and VerificationFlag (PARTIAL or UNVERIFIED
// is preliminary, COMPLETE and VERIFIED final, and corrected when
// PredecessorDocumentsSequence is present).
//
// Strings are decoded by SpecificCharacterSet (ISO_IR 100 and ISO_IR 192
// among others); in the default repertoire valid UTF-8 is accepted and
// other bytes are an error unless Options.Charset is CharsetLatin1.
type SRSource struct {
	// Options carries the fallback charset for the default repertoire.
	Options Options
}

// Format returns "sr".
func (s *SRSource) Format() string { return "sr" }

// Detect accepts DICOM Part 10 files (the "DICM" prefix at offset 128).
// Parse rejects those that are not SR documents with ErrNotReport.
func (s *SRSource) Detect(name string, head []byte) bool {
	return len(head) >= 132 && string(head[128:132]) == "DICM"
}

// srDoc carries the state of one document's decoding.
type srDoc struct {
	name    string
	dec     *srDecoder
	lines   []string
	heading string
}

// Parse reads one SR document.
func (s *SRSource) Parse(name string, data []byte) (reps []Report, err error) {
	defer func() {
		if p := recover(); p != nil {
			reps, err = nil, fmt.Errorf("sr report %s: malformed DICOM (the parser failed)", name)
		}
	}()
	if !s.Detect(name, data) {
		return nil, fmt.Errorf("sr report %s: no DICM prefix: %w", name, ErrNotReport)
	}
	data, terms, patched := srCharset(data)
	if data == nil {
		return nil, fmt.Errorf("sr report %s: malformed DICOM: %w", name, errSRLength)
	}
	dec, err := newSRDecoder(name, terms, patched, s.Options.Charset == CharsetLatin1)
	if err != nil {
		return nil, err
	}
	ds, err := dicom.Parse(bytes.NewReader(data), int64(len(data)), nil, dicom.SkipPixelData(), dicom.AllowUnknownSpecificCharacterSet())
	if err != nil {
		return nil, fmt.Errorf("sr report %s: %w", name, dicomErr(err))
	}
	sop := firstString(ds.Elements, tag.SOPClassUID)
	if !IsSRSOPClass(sop) {
		return nil, fmt.Errorf("sr report %s: SOP class %q is not a Basic, Enhanced or Comprehensive SR: %w", name, truncateForError(sop), ErrNotReport)
	}
	doc := &srDoc{name: name, dec: dec}
	r := Report{Format: s.Format()}
	if r.StudyInstanceUID, err = doc.str(ds.Elements, tag.StudyInstanceUID); err != nil {
		return nil, err
	}
	r.StudyInstanceUID = strings.TrimRight(r.StudyInstanceUID, "\x00 ")
	if !IsUID(r.StudyInstanceUID) {
		return nil, fmt.Errorf("sr report %s: StudyInstanceUID is missing or not a DICOM UID", name)
	}
	if r.AccessionNumber, err = doc.str(ds.Elements, tag.AccessionNumber); err != nil {
		return nil, err
	}
	if r.PatientID, err = doc.str(ds.Elements, tag.PatientID); err != nil {
		return nil, err
	}
	if r.StudyDate, err = doc.str(ds.Elements, tag.StudyDate); err != nil {
		return nil, err
	}
	r.AccessionNumber = strings.TrimSpace(r.AccessionNumber)
	r.PatientID = strings.TrimSpace(r.PatientID)
	if r.StudyDate = strings.TrimSpace(r.StudyDate); !isDICOMDate(r.StudyDate) {
		r.StudyDate = ""
	}
	completion := strings.ToUpper(strings.TrimSpace(firstString(ds.Elements, tag.CompletionFlag)))
	verification := strings.ToUpper(strings.TrimSpace(firstString(ds.Elements, tag.VerificationFlag)))
	switch {
	case completion == "PARTIAL" || verification == "UNVERIFIED":
		r.Status = StatusPreliminary
	case completion == "COMPLETE" && verification == "VERIFIED":
		r.Status = StatusFinal
		if items := seqItems(ds.Elements, tag.PredecessorDocumentsSequence); len(items) > 0 {
			r.Status = StatusCorrected
		}
	case completion == "COMPLETE":
		r.Status = StatusFinal
	}
	if err := doc.walk(seqItems(ds.Elements, tag.ContentSequence), 1); err != nil {
		return nil, err
	}
	r.Text = NormalizeText(strings.Join(doc.lines, "\n"))
	if strings.TrimSpace(r.Text) == "" {
		return nil, fmt.Errorf("sr report %s: no TEXT content items", name)
	}
	return []Report{r}, nil
}

// walk visits content items in tree order.
func (d *srDoc) walk(items [][]*dicom.Element, depth int) error {
	if depth > maxSRDepth {
		return fmt.Errorf("sr report %s: content tree deeper than %d levels", d.name, maxSRDepth)
	}
	for _, it := range items {
		vt := strings.ToUpper(strings.TrimSpace(firstString(it, tag.ValueType)))
		concept, err := d.conceptName(it)
		if err != nil {
			return err
		}
		switch vt {
		case "TEXT":
			v, err := d.str(it, tag.TextValue)
			if err != nil {
				return err
			}
			v = strings.TrimSpace(v)
			if v == "" {
				break
			}
			if concept != "" && canonicalSection(concept) != d.heading {
				d.lines = append(d.lines, concept+": "+v)
			} else {
				d.lines = append(d.lines, v)
			}
		case "CONTAINER":
			prev := d.heading
			if concept != "" && ValidSection(concept) {
				d.lines = append(d.lines, concept+":")
				d.heading = canonicalSection(concept)
			}
			if err := d.walk(seqItems(it, tag.ContentSequence), depth+1); err != nil {
				return err
			}
			d.heading = prev
			continue
		}
		if err := d.walk(seqItems(it, tag.ContentSequence), depth+1); err != nil {
			return err
		}
	}
	return nil
}

// conceptName returns the CodeMeaning of an item's concept name.
func (d *srDoc) conceptName(item []*dicom.Element) (string, error) {
	cn := seqItems(item, tag.ConceptNameCodeSequence)
	if len(cn) == 0 {
		return "", nil
	}
	s, err := d.str(cn[0], tag.CodeMeaning)
	return strings.TrimSpace(s), err
}

// str returns a string attribute (multiple values joined by backslashes,
// as written) checked against the document's character set.
func (d *srDoc) str(elems []*dicom.Element, t tag.Tag) (string, error) {
	return d.dec.decode(strings.Join(allStrings(elems, t), "\\"), tagName(t))
}

// tagName names a tag for errors.
func tagName(t tag.Tag) string {
	if info, err := tag.Find(t); err == nil {
		return info.Name
	}
	return t.String()
}

// find returns the element with tag t, or nil.
func find(elems []*dicom.Element, t tag.Tag) *dicom.Element {
	for _, e := range elems {
		if e != nil && e.Tag == t {
			return e
		}
	}
	return nil
}

// allStrings returns the string values of tag t, or nil.
func allStrings(elems []*dicom.Element, t tag.Tag) []string {
	e := find(elems, t)
	if e == nil || e.Value == nil || e.Value.ValueType() != dicom.Strings {
		return nil
	}
	v, _ := e.Value.GetValue().([]string)
	return v
}

// firstString returns the first string value of tag t, or "".
func firstString(elems []*dicom.Element, t tag.Tag) string {
	if v := allStrings(elems, t); len(v) > 0 {
		return v[0]
	}
	return ""
}

// seqItems returns the items of sequence t, each as its elements.
func seqItems(elems []*dicom.Element, t tag.Tag) [][]*dicom.Element {
	e := find(elems, t)
	if e == nil || e.Value == nil || e.Value.ValueType() != dicom.Sequences {
		return nil
	}
	items, _ := e.Value.GetValue().([]*dicom.SequenceItemValue)
	out := make([][]*dicom.Element, 0, len(items))
	for _, it := range items {
		if it == nil {
			continue
		}
		if els, ok := it.GetValue().([]*dicom.Element); ok {
			out = append(out, els)
		}
	}
	return out
}

// dicomErr keeps a parser error's message short; the parser's messages
// name tags and lengths, never values.
func dicomErr(err error) error {
	if errors.Is(err, dicom.ErrorMagicWord) {
		return fmt.Errorf("not a DICOM Part 10 file: %w", ErrNotReport)
	}
	return fmt.Errorf("malformed DICOM: %w", err)
}
