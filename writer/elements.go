package writer

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// item is one dataset or sequence item under construction. Elements are
// sorted by tag when the item is closed (sorted), at every level, because
// the DICOM library writes elements in the order it is given them.
type item []*dicom.Element

// newElem builds an element with an explicit VR. data is one of the types
// dicom.NewValue accepts; anything else is a bug in this package.
func newElem(t tag.Tag, vr string, data any) *dicom.Element {
	v, err := dicom.NewValue(data)
	if err != nil {
		panic(fmt.Sprintf("writer: internal: value for %v: %v", t, err))
	}
	return &dicom.Element{Tag: t, ValueRepresentation: tag.GetVRKind(t, vr), RawValueRepresentation: vr, Value: v}
}

// addMetaAndSOP adds the File Meta Information (set explicitly: the library
// skips what is missing) and the SOP Common identifiers of an object of
// SOP class class and instance sop, written in explicit VR little endian.
func (it *item) addMetaAndSOP(class, sop string) {
	*it = append(*it, newElem(tag.FileMetaInformationVersion, "OB", []byte{0, 1}))
	it.str(tag.MediaStorageSOPClassUID, "UI", class)
	it.str(tag.MediaStorageSOPInstanceUID, "UI", sop)
	it.str(tag.TransferSyntaxUID, "UI", explicitVRLittleEndian)
	it.str(tag.ImplementationClassUID, "UI", ImplementationClassUID)
	it.str(tag.ImplementationVersionName, "SH", ImplementationVersionName)
	it.str(tag.SOPClassUID, "UI", class)
	it.str(tag.SOPInstanceUID, "UI", sop)
}

func (it *item) str(t tag.Tag, vr string, values ...string) {
	*it = append(*it, newElem(t, vr, values))
}

// opt adds a string element only when the value is not empty (Type 3).
func (it *item) opt(t tag.Tag, vr, value string) {
	if value != "" {
		it.str(t, vr, value)
	}
}

func (it *item) us(t tag.Tag, values ...int) { *it = append(*it, newElem(t, "US", values)) }
func (it *item) ul(t tag.Tag, values ...int) { *it = append(*it, newElem(t, "UL", values)) }
func (it *item) at(t tag.Tag, p tag.Tag) {
	*it = append(*it, newElem(t, "AT", []int{int(p.Group), int(p.Element)}))
}

func (it *item) ds(t tag.Tag, values ...float64) {
	s := make([]string, len(values))
	for i, v := range values {
		s[i] = formatDS(v)
	}
	it.str(t, "DS", s...)
}

func (it *item) is(t tag.Tag, v int) { it.str(t, "IS", strconv.Itoa(v)) }

// seq adds a sequence of the given items, each sorted.
func (it *item) seq(t tag.Tag, items ...item) {
	v := make([][]*dicom.Element, len(items))
	for i, x := range items {
		v[i] = x.sorted()
	}
	e := newElem(t, "SQ", v)
	e.ValueLength = tag.VLUndefinedLength
	*it = append(*it, e)
}

// code adds a one-item code sequence.
func (it *item) code(t tag.Tag, c Code) { it.seq(t, codeItem(c)) }

// codeElem is a one-item code sequence element, for sharing.
func codeElem(t tag.Tag, c Code) *dicom.Element {
	var x item
	x.code(t, c)
	return x[0]
}

func codeItem(c Code) item {
	var x item
	x.str(tag.CodeValue, "SH", c.Value)
	x.str(tag.CodingSchemeDesignator, "SH", c.Scheme)
	x.str(tag.CodeMeaning, "LO", c.Meaning)
	return x
}

func tagLess(a, b tag.Tag) bool {
	if a.Group != b.Group {
		return a.Group < b.Group
	}
	return a.Element < b.Element
}

// sorted sorts the item's elements by tag in place and returns them.
func (it item) sorted() []*dicom.Element {
	slices.SortStableFunc(it, func(a, b *dicom.Element) int {
		return cmp.Or(cmp.Compare(a.Tag.Group, b.Tag.Group), cmp.Compare(a.Tag.Element, b.Tag.Element))
	})
	return it
}

// formatDS formats a decimal string of at most 16 characters.
func formatDS(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "0"
	}
	if v == 0 {
		return "0"
	}
	for prec := -1; prec < 16; prec++ {
		if prec == 0 {
			continue // -1 is the shortest exact form; then 1..15 digits
		}
		p := prec
		if prec > 0 {
			p = 16 - prec
		}
		s := strconv.FormatFloat(v, 'g', p, 64)
		if strings.Contains(s, "e") {
			// DS allows exponents; keep the canonical form short.
			s = strings.Replace(s, "e+", "e", 1)
		}
		if len(s) <= 16 {
			return s
		}
	}
	return "0"
}
