package writer

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// DecodedSEG is a Segmentation object read back: enough to draw it on its
// source. The pixel data is unpacked here, not by the DICOM library (whose
// 1-bit reader cannot be trusted with SEGs).
type DecodedSEG struct {
	SOPInstanceUID    string
	SeriesInstanceUID string
	Type              SegmentationType
	Rows, Columns     int
	// Frames in file order.
	Frames []DecodedFrame
}

// DecodedFrame is one SEG frame and the source frame it segments.
type DecodedFrame struct {
	Segment     int    // ReferencedSegmentNumber
	SourceSOP   string // ReferencedSOPInstanceUID of the source image
	SourceFrame int    // ReferencedFrameNumber, 0 when absent
	// Pixels holds Rows*Columns values: 0/1 for BINARY, 0..255 for FRACTIONAL.
	Pixels []byte
}

// ReadSEG parses a SEG file's bytes.
func ReadSEG(data []byte) (*DecodedSEG, error) {
	ds, err := dicom.Parse(bytes.NewReader(data), int64(len(data)), nil, dicom.SkipProcessingPixelDataValue())
	if err != nil {
		return nil, fmt.Errorf("writer: reading SEG: %w", err)
	}
	if sc := firstString(&ds, tag.SOPClassUID); sc != SegmentationStorage {
		return nil, fmt.Errorf("writer: reading SEG: SOP Class %q is not Segmentation Storage", sc)
	}
	s := &DecodedSEG{
		SOPInstanceUID:    firstString(&ds, tag.SOPInstanceUID),
		SeriesInstanceUID: firstString(&ds, tag.SeriesInstanceUID),
		Type:              SegmentationType(firstString(&ds, tag.SegmentationType)),
		Rows:              firstInt(&ds, tag.Rows),
		Columns:           firstInt(&ds, tag.Columns),
	}
	nFrames := firstInt(&ds, tag.NumberOfFrames)
	if s.Rows <= 0 || s.Columns <= 0 || nFrames <= 0 {
		return nil, fmt.Errorf("writer: reading SEG %s: invalid Rows/Columns/NumberOfFrames", s.SOPInstanceUID)
	}
	px, err := segFramePixels(&ds, s.SOPInstanceUID, nFrames, s.Rows*s.Columns)
	if err != nil {
		return nil, err
	}
	pf, err := ds.FindElementByTag(tag.PerFrameFunctionalGroupsSequence)
	if err != nil {
		return nil, fmt.Errorf("writer: reading SEG %s: no PerFrameFunctionalGroupsSequence", s.SOPInstanceUID)
	}
	items := pf.Value.GetValue().([]*dicom.SequenceItemValue)
	if len(items) != nFrames {
		return nil, fmt.Errorf("writer: reading SEG %s: %d per-frame items for %d frames", s.SOPInstanceUID, len(items), nFrames)
	}
	for i, it := range items {
		s.Frames = append(s.Frames, decodedFrame(it.GetValue().([]*dicom.Element), px[i]))
	}
	return s, nil
}

// firstString is the first value of a string element, without its
// padding; "" when absent or not a string.
func firstString(ds *dicom.Dataset, t tag.Tag) string {
	e, err := ds.FindElementByTag(t)
	if err != nil || e.Value == nil || e.Value.ValueType() != dicom.Strings {
		return ""
	}
	if v := dicom.MustGetStrings(e.Value); len(v) > 0 {
		return strings.TrimRight(v[0], " \x00")
	}
	return ""
}

// firstInt is the first value of an integer element (binary, or a decimal
// string); 0 when absent or unreadable.
func firstInt(ds *dicom.Dataset, t tag.Tag) int {
	e, err := ds.FindElementByTag(t)
	if err != nil || e.Value == nil {
		return 0
	}
	switch e.Value.ValueType() {
	case dicom.Ints:
		if v := dicom.MustGetInts(e.Value); len(v) > 0 {
			return v[0]
		}
	case dicom.Strings:
		if v := dicom.MustGetStrings(e.Value); len(v) > 0 {
			n, _ := strconv.Atoi(strings.TrimSpace(v[0]))
			return n
		}
	}
	return 0
}

// segFramePixels unpacks the native Pixel Data into nFrames frames of n
// pixels each (1-bit BINARY or 8-bit FRACTIONAL).
func segFramePixels(ds *dicom.Dataset, sop string, nFrames, n int) ([][]byte, error) {
	bits := firstInt(ds, tag.BitsAllocated)
	pe, err := ds.FindElementByTag(tag.PixelData)
	if err != nil {
		return nil, fmt.Errorf("writer: reading SEG %s: no Pixel Data", sop)
	}
	info := dicom.MustGetPixelDataInfo(pe.Value)
	if info.IsEncapsulated || !info.IntentionallyUnprocessed {
		return nil, fmt.Errorf("writer: reading SEG %s: compressed Pixel Data is not supported", sop)
	}
	var px [][]byte
	switch bits {
	case 1:
		px = UnpackBits(info.UnprocessedValueData, nFrames, n)
	case 8:
		if len(info.UnprocessedValueData) >= nFrames*n {
			for f := 0; f < nFrames; f++ {
				px = append(px, info.UnprocessedValueData[f*n:(f+1)*n])
			}
		}
	default:
		return nil, fmt.Errorf("writer: reading SEG %s: BitsAllocated %d not supported", sop, bits)
	}
	if px == nil {
		return nil, fmt.Errorf("writer: reading SEG %s: Pixel Data shorter than %d frames", sop, nFrames)
	}
	return px, nil
}

// decodedFrame reads one per-frame functional group item: the segment the
// frame belongs to and the source image (and frame) it segments.
func decodedFrame(elems []*dicom.Element, pixels []byte) DecodedFrame {
	fr := DecodedFrame{Pixels: pixels}
	if e := nested(elems, tag.SegmentIdentificationSequence, tag.ReferencedSegmentNumber); e != nil {
		if v := dicom.MustGetInts(e.Value); len(v) > 0 {
			fr.Segment = v[0]
		}
	}
	for _, e := range nestedItem(nestedItem(elems, tag.DerivationImageSequence), tag.SourceImageSequence) {
		switch e.Tag {
		case tag.ReferencedSOPInstanceUID:
			fr.SourceSOP = strings.TrimRight(dicom.MustGetStrings(e.Value)[0], " \x00")
		case tag.ReferencedFrameNumber:
			if e.Value.ValueType() == dicom.Strings {
				fr.SourceFrame, _ = strconv.Atoi(strings.TrimSpace(dicom.MustGetStrings(e.Value)[0]))
			} else if v := dicom.MustGetInts(e.Value); len(v) > 0 {
				fr.SourceFrame = v[0]
			}
		}
	}
	return fr
}

// nestedItem returns the elements of the first item of sequence t.
func nestedItem(elems []*dicom.Element, t tag.Tag) []*dicom.Element {
	for _, e := range elems {
		if e.Tag == t && e.Value != nil && e.Value.ValueType() == dicom.Sequences {
			items := e.Value.GetValue().([]*dicom.SequenceItemValue)
			if len(items) > 0 {
				return items[0].GetValue().([]*dicom.Element)
			}
		}
	}
	return nil
}

// nested returns element inner inside the first item of sequence outer.
func nested(elems []*dicom.Element, outer, inner tag.Tag) *dicom.Element {
	for _, e := range nestedItem(elems, outer) {
		if e.Tag == inner && e.Value != nil {
			return e
		}
	}
	return nil
}
