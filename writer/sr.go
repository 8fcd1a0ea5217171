package writer

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"

	"tmcad/dicomio"
)

// ComprehensiveSRStorage is the SOP Class UID of the Comprehensive SR IOD,
// the one the measurement report is written as: TID 1500 needs no spatial
// coordinates here (the regions are the SEG's segments), and every SR
// reader (dcmtk's dsrdump, pydicom, OHIF, Slicer) knows the class.
const ComprehensiveSRStorage = "1.2.840.10008.5.1.4.1.1.88.33"

// Object is one encoded DICOM object stored beside a SEG (the measurement
// report, the overlay): its UIDs and its Part 10 bytes.
type Object struct {
	StudyInstanceUID  string
	SeriesInstanceUID string
	SOPInstanceUID    string
	SOPClassUID       string
	// Data is the complete Part 10 file.
	Data []byte
}

// Quantity is what a Measurement measures.
type Quantity string

const (
	// Area is the segmented area in mm², for projection images.
	Area Quantity = "area"
	// Volume is the segmented volume in mL, for cross-sectional series.
	Volume Quantity = "volume"
)

// Measurement is one segment's extent, reported in the measurement report.
type Measurement struct {
	// Segment is the SegmentNumber (Description.Segments, from 1).
	Segment int
	// Quantity says whether Value is an area (mm²) or a volume (mL).
	Quantity Quantity
	// Value is the amount, in mm² for Area and mL for Volume; finite, >= 0.
	Value float64
}

// Coded concepts of the measurement report (PS3.16: DCM, SCT and UCUM).
var (
	codeImagingMeasurementReport = Code{"126000", "DCM", "Imaging Measurement Report"}
	codeLanguage                 = Code{"121049", "DCM", "Language of Content Item and Descendants"}
	codeEnglishUS                = Code{"en-US", "RFC5646", "English (United States)"}
	codeObserverType             = Code{"121005", "DCM", "Observer Type"}
	codeDevice                   = Code{"121007", "DCM", "Device"}
	codeDeviceObserverUID        = Code{"121012", "DCM", "Device Observer UID"}
	codeDeviceObserverName       = Code{"121013", "DCM", "Device Observer Name"}
	codeDeviceManufacturer       = Code{"121014", "DCM", "Device Observer Manufacturer"}
	codeDeviceModelName          = Code{"121015", "DCM", "Device Observer Model Name"}
	codeDeviceSerialNumber       = Code{"121016", "DCM", "Device Observer Serial Number"}
	codeProcedureReported        = Code{"121058", "DCM", "Procedure reported"}
	codeImageLibrary             = Code{"111028", "DCM", "Image Library"}
	codeImageLibraryGroup        = Code{"126200", "DCM", "Image Library Group"}
	codeImagingMeasurements      = Code{"126010", "DCM", "Imaging Measurements"}
	codeMeasurementGroup         = Code{"125007", "DCM", "Measurement Group"}
	codeTrackingIdentifier       = Code{"112039", "DCM", "Tracking Identifier"}
	codeTrackingUID              = Code{"112040", "DCM", "Tracking Unique Identifier"}
	codeFindingCategory          = Code{"276214006", "SCT", "Finding category"}
	codeFinding                  = Code{"121071", "DCM", "Finding"}
	codeReferencedSegment        = Code{"121191", "DCM", "Referenced Segment"}
	codeSourceSeriesForSeg       = Code{"121232", "DCM", "Source series for segmentation"}
	codeFindingSite              = Code{"363698007", "SCT", "Finding Site"}
	codeAlgorithmName            = Code{"111001", "DCM", "Algorithm Name"}
	codeAlgorithmVersion         = Code{"111003", "DCM", "Algorithm Version"}
	codeArea                     = Code{"42798000", "SCT", "Area"}
	codeVolume                   = Code{"118565006", "SCT", "Volume"}
	codeSquareMillimeter         = Code{"mm2", "UCUM", "square millimeter"}
	codeMilliliter               = Code{"ml", "UCUM", "milliliter"}
)

// procedureReported is the TID 1500 "Procedure reported" for a modality.
func procedureReported(modality string) Code {
	switch modality {
	case "CR", "DX":
		return Code{"363680008", "SCT", "Radiographic imaging procedure"}
	case "CT":
		return Code{"77477000", "SCT", "Computerized axial tomography"}
	case "MR":
		return Code{"113091000", "SCT", "Magnetic resonance imaging"}
	}
	return Code{"363679005", "SCT", "Imaging"}
}

// srUIDs are the UIDs of one measurement report.
type srUIDs struct{ series, sop, observer string }

// deriveSRUIDs makes the report's UIDs from the same inputs as its SEG's,
// so that the same input and model give the same report.
func deriveSRUIDs(d Description, sourceSeriesUID string) (srUIDs, error) {
	base := []string{sourceSeriesUID, d.ModelName, d.ModelVersion, d.ReportHash, string(d.Type)}
	var u srUIDs
	var err error
	if u.series, err = DeriveUID(d.UIDRoot, append([]string{"sr-series"}, base...)...); err != nil {
		return u, err
	}
	if u.sop, err = DeriveUID(d.UIDRoot, append([]string{"sr-sop"}, base...)...); err != nil {
		return u, err
	}
	// The observer is the device (model and equipment), not the input.
	u.observer, err = DeriveUID(d.UIDRoot, "device-observer", d.Manufacturer, d.ManufacturerModelName, d.ModelName, d.ModelVersion)
	return u, err
}

// EncodeSR builds the measurement report of a SEG: a Comprehensive SR
// holding an Imaging Measurement Report (TID 1500) with one Volumetric ROI
// Measurements group (TID 1411) per segment — its tracking identifier and
// UID, finding category, finding (the segment's type) and finding site,
// the algorithm, a reference to the segment in the SEG and to the source
// series, and its measurement — and an image library of every source
// instance. ms holds exactly one measurement per segment. desc is the
// SEG's description; the report's UIDs derive from the same inputs as the
// SEG's, so the same input and model give the same report.
func EncodeSR(src *dicomio.Series, seg *SEG, ms []Measurement, desc Description) (*Object, error) {
	if err := desc.Validate(); err != nil {
		return nil, err
	}
	if err := validateSource(src); err != nil {
		return nil, err
	}
	if err := checkSRSEG(src, seg); err != nil {
		return nil, err
	}
	bySegment, err := measurementsBySegment(ms, len(desc.Segments))
	if err != nil {
		return nil, err
	}
	d := desc.withDefaults(seriesInfo{seriesNumber: src.SeriesNumber})
	uids, err := deriveSRUIDs(d, src.SeriesInstanceUID)
	if err != nil {
		return nil, fmt.Errorf("writer: deriving measurement report UIDs for series %s: %w", src.SeriesInstanceUID, err)
	}
	groups, err := measurementGroups(src, seg, d, bySegment)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := dicom.Write(&buf, srDataset(src, seg, d, uids, groups), dicom.SkipVRVerification()); err != nil {
		return nil, fmt.Errorf("writer: encoding measurement report %s for series %s: %w", uids.sop, src.SeriesInstanceUID, err)
	}
	return &Object{
		StudyInstanceUID:  src.StudyInstanceUID,
		SeriesInstanceUID: uids.series,
		SOPInstanceUID:    uids.sop,
		SOPClassUID:       ComprehensiveSRStorage,
		Data:              buf.Bytes(),
	}, nil
}

// checkSRSEG checks that seg was encoded and belongs to the source's study.
func checkSRSEG(src *dicomio.Series, seg *SEG) error {
	if seg == nil || !uidPattern.MatchString(seg.SOPInstanceUID) || !uidPattern.MatchString(seg.SeriesInstanceUID) {
		return errors.New("writer: measurement report: no encoded SEG to refer to (use EncodeSEG first)")
	}
	if seg.StudyInstanceUID != src.StudyInstanceUID {
		return fmt.Errorf("writer: measurement report: SEG %s belongs to study %s, the source series %s to study %s",
			seg.SOPInstanceUID, seg.StudyInstanceUID, src.SeriesInstanceUID, src.StudyInstanceUID)
	}
	return nil
}

// measurementsBySegment validates the measurements (one finite, non-negative
// area or volume for each of the nSegments segments) and indexes them by
// segment number.
func measurementsBySegment(ms []Measurement, nSegments int) (map[int]Measurement, error) {
	bySegment := make(map[int]Measurement, len(ms))
	for i, m := range ms {
		switch {
		case m.Segment < 1 || m.Segment > nSegments:
			return nil, fmt.Errorf("writer: measurement %d: segment %d is not one of the %d segments described", i, m.Segment, nSegments)
		case m.Quantity != Area && m.Quantity != Volume:
			return nil, fmt.Errorf("writer: measurement %d: quantity %q is not %q or %q", i, m.Quantity, Area, Volume)
		case math.IsNaN(m.Value) || math.IsInf(m.Value, 0) || m.Value < 0:
			return nil, fmt.Errorf("writer: measurement %d: value %v is not a finite amount >= 0", i, m.Value)
		}
		if _, dup := bySegment[m.Segment]; dup {
			return nil, fmt.Errorf("writer: measurement %d: segment %d is measured twice", i, m.Segment)
		}
		bySegment[m.Segment] = m
	}
	if len(bySegment) != nSegments {
		return nil, fmt.Errorf("writer: measurement report: %d segments described, %d measured; every segment needs its measurement", nSegments, len(bySegment))
	}
	return bySegment, nil
}

// measurementGroups builds one measurement group per segment, in the
// description's order, each with a tracking UID derived from the SEG and
// the segment number.
func measurementGroups(src *dicomio.Series, seg *SEG, d Description, bySegment map[int]Measurement) ([]item, error) {
	var groups []item
	for _, s := range d.Segments {
		tracking, err := DeriveUID(d.UIDRoot, "tracking", seg.SOPInstanceUID, strconv.Itoa(s.Number))
		if err != nil {
			return nil, fmt.Errorf("writer: deriving tracking UID of segment %d: %w", s.Number, err)
		}
		groups = append(groups, measurementGroup(src, seg, s, bySegment[s.Number], tracking))
	}
	return groups, nil
}

// srDataset is the measurement report's dataset: the SR document's
// modules and its content tree, with the measurement groups.
func srDataset(src *dicomio.Series, seg *SEG, d Description, uids srUIDs, groups []item) dicom.Dataset {
	var ds item
	ds.addMetaAndSOP(ComprehensiveSRStorage, uids.sop)
	texts := addPatientStudy(&ds, src)

	// SR Document Series.
	ds.str(tag.Modality, "CS", "SR")
	ds.str(tag.SeriesInstanceUID, "UI", uids.series)
	ds.is(tag.SeriesNumber, d.SeriesNumber+1)
	ds.str(tag.SeriesDescription, "LO", companionDescription(d, "measurements"))
	ds.seq(tag.ReferencedPerformedProcedureStepSequence)

	// General Equipment.
	addEquipment(&ds, d)

	// SR Document General.
	addContentDateTime(&ds, d, src)
	ds.str(tag.CompletionFlag, "CS", "COMPLETE")
	ds.str(tag.VerificationFlag, "CS", "UNVERIFIED")
	ds.seq(tag.PerformedProcedureCodeSequence)
	ds.seq(tag.CurrentRequestedProcedureEvidenceSequence, evidence(src, seg))

	// SR Document Content: the root container and its tree.
	ds.str(tag.ValueType, "CS", "CONTAINER")
	ds.code(tag.ConceptNameCodeSequence, codeImagingMeasurementReport)
	ds.str(tag.ContinuityOfContent, "CS", "SEPARATE")
	ds.seq(tag.ContentTemplateSequence, template("1500"))
	ds.seq(tag.ContentSequence, srContent(src, d, uids, groups)...)

	if needsUTF8(append(texts, d.Manufacturer, d.ManufacturerModelName, d.DeviceSerialNumber, d.SoftwareVersions, d.SeriesDescription, d.ModelName)...) ||
		needsUTF8(segmentTexts(d)...) || needsUTF8(siteTexts(d)...) {
		ds.str(tag.SpecificCharacterSet, "CS", "ISO_IR 192")
	}
	return dicom.Dataset{Elements: ds.sorted()}
}

// srContent is the root container's tree (TID 1500): language, the device
// observer, the procedure reported, the image library and the
// measurement groups.
func srContent(src *dicomio.Series, d Description, uids srUIDs, groups []item) []item {
	return []item{
		codeItemOf("HAS CONCEPT MOD", codeLanguage, codeEnglishUS),
		codeItemOf("HAS OBS CONTEXT", codeObserverType, codeDevice),
		uidrefItem("HAS OBS CONTEXT", codeDeviceObserverUID, uids.observer),
		textItem("HAS OBS CONTEXT", codeDeviceObserverName, d.ModelName),
		textItem("HAS OBS CONTEXT", codeDeviceManufacturer, d.Manufacturer),
		textItem("HAS OBS CONTEXT", codeDeviceModelName, d.ManufacturerModelName),
		textItem("HAS OBS CONTEXT", codeDeviceSerialNumber, d.DeviceSerialNumber),
		codeItemOf("HAS CONCEPT MOD", codeProcedureReported, procedureReported(src.Modality)),
		containerItem(codeImageLibrary, "", containerItem(codeImageLibraryGroup, "", imageLibrary(src)...)),
		containerItem(codeImagingMeasurements, "", groups...),
	}
}

// siteTexts are the segments' finding site meanings.
func siteTexts(d Description) []string {
	var out []string
	for _, s := range d.Segments {
		if s.Site != nil {
			out = append(out, s.Site.Meaning)
		}
	}
	return out
}

// companionDescription is the SeriesDescription of an object made beside
// the SEG: the SEG's series description (or "TMCA") and what it holds.
func companionDescription(d Description, what string) string {
	base := d.SeriesDescription
	if base == "" {
		base = "TMCA"
	}
	return truncateRunes(base+" "+what, 64)
}

// measurementGroup is one segment's TID 1411 Volumetric ROI Measurements.
func measurementGroup(src *dicomio.Series, seg *SEG, s Segment, m Measurement, tracking string) item {
	var ref item
	ref.str(tag.ReferencedSOPClassUID, "UI", SegmentationStorage)
	ref.str(tag.ReferencedSOPInstanceUID, "UI", seg.SOPInstanceUID)
	ref.us(tag.ReferencedSegmentNumber, s.Number)
	segRef := contentItem("CONTAINS", "IMAGE", &codeReferencedSegment)
	segRef.seq(tag.ReferencedSOPSequence, ref)

	children := []item{
		textItem("HAS OBS CONTEXT", codeTrackingIdentifier, s.Label),
		uidrefItem("HAS OBS CONTEXT", codeTrackingUID, tracking),
		codeItemOf("CONTAINS", codeFindingCategory, s.Category),
		codeItemOf("CONTAINS", codeFinding, s.Type),
		segRef,
		uidrefItem("CONTAINS", codeSourceSeriesForSeg, src.SeriesInstanceUID),
	}
	if s.Site != nil {
		children = append(children, codeItemOf("HAS CONCEPT MOD", codeFindingSite, *s.Site))
	}
	children = append(children,
		textItem("HAS CONCEPT MOD", codeAlgorithmName, s.AlgorithmName),
		textItem("HAS CONCEPT MOD", codeAlgorithmVersion, s.AlgorithmVersion),
	)
	name, unit := codeArea, codeSquareMillimeter
	if m.Quantity == Volume {
		name, unit = codeVolume, codeMilliliter
	}
	num := contentItem("CONTAINS", "NUM", &name)
	var mv item
	mv.code(tag.MeasurementUnitsCodeSequence, unit)
	mv.ds(tag.NumericValue, m.Value)
	num.seq(tag.MeasuredValueSequence, mv)
	children = append(children, num)

	g := containerItem(codeMeasurementGroup, "1411", children...)
	return g
}

// imageLibrary lists every source instance once, in frame order.
func imageLibrary(src *dicomio.Series) []item {
	refs := sourceInstanceRefs(src)
	out := make([]item, len(refs))
	for i, ref := range refs {
		out[i] = contentItem("CONTAINS", "IMAGE", nil)
		out[i].seq(tag.ReferencedSOPSequence, ref)
	}
	return out
}

// evidence is the Current Requested Procedure Evidence: the SEG and every
// source instance the report refers to, by series.
func evidence(src *dicomio.Series, seg *SEG) item {
	var srcSeries item
	srcSeries.seq(tag.ReferencedSOPSequence, sourceInstanceRefs(src)...)
	srcSeries.str(tag.SeriesInstanceUID, "UI", src.SeriesInstanceUID)
	var segInst item
	segInst.str(tag.ReferencedSOPClassUID, "UI", SegmentationStorage)
	segInst.str(tag.ReferencedSOPInstanceUID, "UI", seg.SOPInstanceUID)
	var segSeries item
	segSeries.seq(tag.ReferencedSOPSequence, segInst)
	segSeries.str(tag.SeriesInstanceUID, "UI", seg.SeriesInstanceUID)
	var study item
	study.seq(tag.ReferencedSeriesSequence, srcSeries, segSeries)
	study.str(tag.StudyInstanceUID, "UI", src.StudyInstanceUID)
	return study
}

// template is a Content Template Sequence item naming a DCMR template.
func template(id string) item {
	var t item
	t.str(tag.MappingResource, "CS", "DCMR")
	t.str(tag.TemplateIdentifier, "CS", id)
	return t
}

// contentItem starts a content item: its relationship to the parent, its
// value type and (when not nil) its concept name.
func contentItem(rel, valueType string, name *Code) item {
	var x item
	x.str(tag.RelationshipType, "CS", rel)
	x.str(tag.ValueType, "CS", valueType)
	if name != nil {
		x.code(tag.ConceptNameCodeSequence, *name)
	}
	return x
}

// containerItem is a CONTAINS CONTAINER item (SEPARATE items), with the
// template it follows when tid is set.
func containerItem(name Code, tid string, children ...item) item {
	x := contentItem("CONTAINS", "CONTAINER", &name)
	x.str(tag.ContinuityOfContent, "CS", "SEPARATE")
	if tid != "" {
		x.seq(tag.ContentTemplateSequence, template(tid))
	}
	if len(children) > 0 {
		x.seq(tag.ContentSequence, children...)
	}
	return x
}

func codeItemOf(rel string, name, value Code) item {
	x := contentItem(rel, "CODE", &name)
	x.code(tag.ConceptCodeSequence, value)
	return x
}

func textItem(rel string, name Code, value string) item {
	x := contentItem(rel, "TEXT", &name)
	x.str(tag.TextValue, "UT", value)
	return x
}

func uidrefItem(rel string, name Code, uid string) item {
	x := contentItem(rel, "UIDREF", &name)
	x.str(tag.UID, "UI", uid)
	return x
}
