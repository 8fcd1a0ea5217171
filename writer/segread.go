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
	str := func(t tag.Tag) string {
		e, err := ds.FindElementByTag(t)
		if err != nil || e.Value == nil || e.Value.ValueType() != dicom.Strings {
			return ""
		}
		if v := dicom.MustGetStrings(e.Value); len(v) > 0 {
			return strings.TrimRight(v[0], " \x00")
		}
		return ""
	}
	num := func(t tag.Tag) int {
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
	if sc := str(tag.SOPClassUID); sc != SegmentationStorage {
		return nil, fmt.Errorf("writer: reading SEG: SOP Class %q is not Segmentation Storage", sc)
	}
	s := &DecodedSEG{
		SOPInstanceUID:    str(tag.SOPInstanceUID),
		SeriesInstanceUID: str(tag.SeriesInstanceUID),
		Type:              SegmentationType(str(tag.SegmentationType)),
		Rows:              num(tag.Rows),
		Columns:           num(tag.Columns),
	}
	nFrames, bits := num(tag.NumberOfFrames), num(tag.BitsAllocated)
	if s.Rows <= 0 || s.Columns <= 0 || nFrames <= 0 {
		return nil, fmt.Errorf("writer: reading SEG %s: invalid Rows/Columns/NumberOfFrames", s.SOPInstanceUID)
	}
	pe, err := ds.FindElementByTag(tag.PixelData)
	if err != nil {
		return nil, fmt.Errorf("writer: reading SEG %s: no Pixel Data", s.SOPInstanceUID)
	}
	info := dicom.MustGetPixelDataInfo(pe.Value)
	if info.IsEncapsulated || !info.IntentionallyUnprocessed {
		return nil, fmt.Errorf("writer: reading SEG %s: compressed Pixel Data is not supported", s.SOPInstanceUID)
	}
	n := s.Rows * s.Columns
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
		return nil, fmt.Errorf("writer: reading SEG %s: BitsAllocated %d not supported", s.SOPInstanceUID, bits)
	}
	if px == nil {
		return nil, fmt.Errorf("writer: reading SEG %s: Pixel Data shorter than %d frames", s.SOPInstanceUID, nFrames)
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
		fr := DecodedFrame{Pixels: px[i]}
		elems := it.GetValue().([]*dicom.Element)
		if e := nested(elems, tag.SegmentIdentificationSequence, tag.ReferencedSegmentNumber); e != nil {
			if v := dicom.MustGetInts(e.Value); len(v) > 0 {
				fr.Segment = v[0]
			}
		}
		if src := nestedItem(nestedItem(elems, tag.DerivationImageSequence), tag.SourceImageSequence); src != nil {
			for _, e := range src {
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
		}
		s.Frames = append(s.Frames, fr)
	}
	return s, nil
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
