package writer

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// SegmentationType is the SEG's SegmentationType (0062,0001).
type SegmentationType string

const (
	// Binary stores one bit per pixel (the default, most widely supported).
	Binary SegmentationType = "BINARY"
	// Fractional stores 8-bit probabilities (0..255 maps to 0..1), with
	// SegmentationFractionalType PROBABILITY and MaximumFractionalValue 255.
	Fractional SegmentationType = "FRACTIONAL"
)

// DefaultAlgorithmName is the SegmentAlgorithmName used when a Segment leaves
// it empty.
const DefaultAlgorithmName = "TMCA"

// Code is a coded concept (Code Sequence Macro): a code value in a coding
// scheme, with its human-readable meaning. Segment categories and types use
// SNOMED CT, scheme "SCT" (the deprecated "SRT" is rejected).
type Code struct {
	Value   string // CodeValue (0008,0100), at most 16 characters
	Scheme  string // CodingSchemeDesignator (0008,0102), e.g. "SCT"
	Meaning string // CodeMeaning (0008,0104), at most 64 characters
}

// Segment describes one item of the SEG's Segment Sequence: what was
// segmented and by which algorithm. Every segment is described even when all
// of its frames are empty.
type Segment struct {
	// Number is the SegmentNumber; segments are numbered 1, 2, 3, ... in the
	// order they appear in Description.Segments.
	Number int
	// Label is the SegmentLabel (LO, at most 64 characters).
	Label string
	// Category and Type are the SegmentedPropertyCategoryCodeSequence and
	// SegmentedPropertyTypeCodeSequence (SNOMED CT, scheme "SCT").
	Category Code
	Type     Code
	// AlgorithmName defaults to DefaultAlgorithmName, AlgorithmVersion to
	// Description.ModelVersion. The algorithm type is always AUTOMATIC.
	AlgorithmName    string
	AlgorithmVersion string
	// Site, when set, is the anatomic location of what was segmented
	// (SNOMED CT), the Finding Site of the segment's measurement group in
	// the measurement report (EncodeSR).
	Site *Code
	// Color is the colour viewers show the segment in, written as
	// Recommended Display CIELab Value; nil means DefaultColor(Number).
	Color *RGB
}

// Description is everything about the SEG that does not come from the source
// series or the masks: the new series, the equipment, the segments, the
// encoding options and the inputs to the deterministic UIDs.
//
// The zero values of the options are the defaults: BINARY, empty frames
// omitted, and a SEG written even when every frame is empty.
type Description struct {
	// SeriesNumber of the new SEG series; 0 means source SeriesNumber + 1000.
	SeriesNumber int
	// SeriesDescription (LO, optional), e.g. "TMCA segmentation".
	SeriesDescription string
	// ContentLabel (CS: A–Z, 0–9, space, underscore; at most 16); default
	// "TMCA".
	ContentLabel string
	// ContentCreatorName (PN, optional), e.g. "TMCAD^Daemon".
	ContentCreatorName string
	// ContentDescription (LO); default "TMCA <ModelName> <ModelVersion>".
	// Never put report text here.
	ContentDescription string

	// Enhanced General Equipment: all required. DeviceSerialNumber defaults
	// to ModelName + "-" + ModelVersion.
	Manufacturer          string
	ManufacturerModelName string
	SoftwareVersions      string
	DeviceSerialNumber    string

	// Segments, numbered from 1 consecutively; masks are indexed the same way.
	Segments []Segment

	// Type is BINARY ("" is BINARY) or FRACTIONAL.
	Type SegmentationType
	// KeepEmptyFrames writes frames with no segmented pixel too; by default
	// they are omitted (every segment is still described).
	KeepEmptyFrames bool
	// SkipIfEmpty makes EncodeSEG return ErrEmpty instead of a SEG when no
	// frame has a segmented pixel; by default an all-empty SEG (one empty
	// frame) is written so that "no finding" is recorded.
	SkipIfEmpty bool

	// UIDRoot, when set, is the organisation root the SEG's UIDs are made
	// under; otherwise they are UUID-derived "2.25." UIDs.
	UIDRoot string
	// ModelName and ModelVersion identify the model; with the source series
	// UID and ReportHash they determine the SEG's UIDs.
	ModelName    string
	ModelVersion string
	// ReportHash is a hash of the report text the masks were guided by (the
	// text itself never enters the SEG); empty when there was none.
	ReportHash string
	// ContentDateTime is written as ContentDate/ContentTime. Zero means the
	// source StudyDate/StudyTime (or 19700101 when absent), so that
	// reprocessing the same input yields a byte-identical SEG.
	ContentDateTime time.Time
}

// ErrEmpty is returned by EncodeSEG and WriteSEG when no frame has a
// segmented pixel and Description.SkipIfEmpty is set.
var ErrEmpty = errors.New("writer: segmentation is empty and SkipIfEmpty is set")

var (
	csPattern  = regexp.MustCompile(`^[A-Z0-9 _]{1,16}$`)
	uidPattern = regexp.MustCompile(`^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$`)
)

// fieldError builds an error that names the offending field.
func fieldError(field, format string, args ...any) error {
	return fmt.Errorf("writer: Description.%s: %s", field, fmt.Sprintf(format, args...))
}

// Validate checks the code; field is the name used in error messages.
func (c Code) validate(field string) error {
	switch {
	case strings.TrimSpace(c.Value) == "":
		return fieldError(field+".Value", "empty code value")
	case len(c.Value) > 16:
		return fieldError(field+".Value", "%q longer than 16 characters", c.Value)
	case strings.TrimSpace(c.Scheme) == "":
		return fieldError(field+".Scheme", "empty coding scheme designator (use \"SCT\" for SNOMED CT)")
	case c.Scheme == "SRT":
		return fieldError(field+".Scheme", "\"SRT\" is deprecated; use \"SCT\" for SNOMED CT")
	case len(c.Scheme) > 16 || strings.ContainsAny(c.Scheme, `\`):
		return fieldError(field+".Scheme", "%q is not a valid coding scheme designator", c.Scheme)
	case strings.TrimSpace(c.Meaning) == "":
		return fieldError(field+".Meaning", "empty code meaning")
	case utf8.RuneCountInString(c.Meaning) > 64 || strings.ContainsAny(c.Meaning, `\`):
		return fieldError(field+".Meaning", "longer than 64 characters or contains a backslash")
	}
	return nil
}

// Validate checks the description and returns an error naming the first
// offending field. EncodeSEG calls it; callers may call it early (at
// configuration time) to fail fast.
func (d Description) Validate() error {
	if d.Type != "" && d.Type != Binary && d.Type != Fractional {
		return fieldError("Type", "%q is not BINARY or FRACTIONAL", d.Type)
	}
	if d.SeriesNumber < 0 || d.SeriesNumber > 2147483647 {
		return fieldError("SeriesNumber", "%d out of range", d.SeriesNumber)
	}
	if d.ContentLabel != "" && !csPattern.MatchString(d.ContentLabel) {
		return fieldError("ContentLabel", "%q must be 1-16 of A-Z, 0-9, space, underscore", d.ContentLabel)
	}
	for _, f := range []struct {
		name, value string
		required    bool
		max         int
	}{
		{"SeriesDescription", d.SeriesDescription, false, 64},
		{"ContentDescription", d.ContentDescription, false, 64},
		{"ContentCreatorName", d.ContentCreatorName, false, 64},
		{"Manufacturer", d.Manufacturer, true, 64},
		{"ManufacturerModelName", d.ManufacturerModelName, true, 64},
		{"SoftwareVersions", d.SoftwareVersions, true, 64},
		{"DeviceSerialNumber", d.DeviceSerialNumber, false, 64},
		{"ModelName", d.ModelName, true, 64},
		{"ModelVersion", d.ModelVersion, true, 64},
	} {
		if f.required && strings.TrimSpace(f.value) == "" {
			return fieldError(f.name, "required")
		}
		if utf8.RuneCountInString(f.value) > f.max {
			return fieldError(f.name, "longer than %d characters", f.max)
		}
		if strings.ContainsAny(f.value, "\\\r\n\x00") {
			return fieldError(f.name, "contains a backslash or control character")
		}
	}
	if d.UIDRoot != "" {
		if !uidPattern.MatchString(d.UIDRoot) {
			return fieldError("UIDRoot", "%q is not a UID root (digits and dots, no leading zeros)", d.UIDRoot)
		}
		if len(d.UIDRoot) > maxRootLen {
			return fieldError("UIDRoot", "%q longer than %d characters (no room for a unique suffix)", d.UIDRoot, maxRootLen)
		}
	}
	if len(d.Segments) == 0 {
		return fieldError("Segments", "at least one segment is required")
	}
	for i, s := range d.Segments {
		p := fmt.Sprintf("Segments[%d]", i)
		if s.Number != i+1 {
			return fieldError(p+".Number", "is %d; segments must be numbered 1, 2, 3, ... in order", s.Number)
		}
		if strings.TrimSpace(s.Label) == "" {
			return fieldError(p+".Label", "required")
		}
		if utf8.RuneCountInString(s.Label) > 64 || strings.ContainsAny(s.Label, "\\\r\n\x00") {
			return fieldError(p+".Label", "longer than 64 characters or contains a backslash/control character")
		}
		if err := s.Category.validate(p + ".Category"); err != nil {
			return err
		}
		if err := s.Type.validate(p + ".Type"); err != nil {
			return err
		}
		if s.Site != nil {
			if err := s.Site.validate(p + ".Site"); err != nil {
				return err
			}
		}
		if utf8.RuneCountInString(s.AlgorithmName) > 64 || strings.ContainsAny(s.AlgorithmName, "\\\r\n\x00") {
			return fieldError(p+".AlgorithmName", "longer than 64 characters or contains a backslash/control character")
		}
		if utf8.RuneCountInString(s.AlgorithmVersion) > 64 || strings.ContainsAny(s.AlgorithmVersion, "\\\r\n\x00") {
			return fieldError(p+".AlgorithmVersion", "longer than 64 characters or contains a backslash/control character")
		}
	}
	return nil
}

// withDefaults returns a copy with the documented defaults filled in.
func (d Description) withDefaults(src seriesInfo) Description {
	if d.Type == "" {
		d.Type = Binary
	}
	if d.SeriesNumber == 0 {
		d.SeriesNumber = src.seriesNumber + 1000
	}
	if d.ContentLabel == "" {
		d.ContentLabel = "TMCA"
	}
	if d.ContentDescription == "" {
		d.ContentDescription = truncateRunes("TMCA "+d.ModelName+" "+d.ModelVersion, 64)
	}
	if d.DeviceSerialNumber == "" {
		d.DeviceSerialNumber = truncateRunes(d.ModelName+"-"+d.ModelVersion, 64)
	}
	segs := make([]Segment, len(d.Segments))
	for i, s := range d.Segments {
		if s.AlgorithmName == "" {
			s.AlgorithmName = DefaultAlgorithmName
		}
		if s.AlgorithmVersion == "" {
			s.AlgorithmVersion = d.ModelVersion
		}
		if s.Color == nil {
			c := DefaultColor(s.Number)
			s.Color = &c
		}
		segs[i] = s
	}
	d.Segments = segs
	return d
}

// seriesInfo is what withDefaults needs from the source.
type seriesInfo struct{ seriesNumber int }

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}
