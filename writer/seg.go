package writer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"

	"tmcad/dicomio"
)

// SegmentationStorage is the SOP Class UID of the Segmentation IOD.
const SegmentationStorage = "1.2.840.10008.5.1.4.1.1.66.4"

// explicitVRLittleEndian is the transfer syntax every SEG is written in.
const explicitVRLittleEndian = "1.2.840.10008.1.2.1"

// Codes of the Derivation Image functional group (scheme DCM).
var (
	codeSegmentation    = Code{Value: "113076", Scheme: "DCM", Meaning: "Segmentation"}
	codeSourceForImgOp  = Code{Value: "121322", Scheme: "DCM", Meaning: "Source image for image processing operation"}
	codeAlgorithmFamily = Code{Value: "123110", Scheme: "DCM", Meaning: "Artificial Intelligence"}
)

// SEG identifies one encoded Segmentation object.
type SEG struct {
	StudyInstanceUID  string
	SeriesInstanceUID string
	SOPInstanceUID    string
	SOPClassUID       string
	// NumberOfFrames written (empty frames omitted unless kept).
	NumberOfFrames int
	// Empty is true when no segment has any pixel set.
	Empty bool
	// Data is the complete Part 10 file (EncodeSEG only; nil from WriteSEG).
	Data []byte
}

// EncodeSEG builds the Segmentation object for src from masks and desc and
// returns it as a complete DICOM Part 10 file in SEG.Data. See WriteSEG.
func EncodeSEG(src *dicomio.Series, masks MaskSet, desc Description) (*SEG, error) {
	var buf bytes.Buffer
	if src != nil && masks != nil {
		// Header and functional groups are small; the pixel data dominates.
		px := src.Rows * src.Columns / 8
		if desc.Type == Fractional {
			px = src.Rows * src.Columns
		}
		buf.Grow(4096 + len(src.Frames)*1024 + masks.numSegments()*len(src.Frames)*px)
	}
	seg, err := WriteSEG(&buf, src, masks, desc)
	if err != nil {
		return nil, err
	}
	seg.Data = buf.Bytes()
	return seg, nil
}

// WriteSEG encodes the Segmentation object for src from masks and desc and
// writes it as a DICOM Part 10 file (Explicit VR Little Endian) to w.
//
// masks is Masks (one byte per pixel) or BitMasks (bit-packed, BINARY
// only). From BitMasks whose frames hold a multiple of 8 pixels the packed
// frames are streamed to w as they are, without packing or copying them.
// The header is written to w in one Write; w need not be buffered.
//
// It validates desc, src and the shape of masks first and writes nothing
// when they are wrong. Frames are ordered by segment, then by source frame;
// frames with no segmented pixel are omitted unless desc.KeepEmptyFrames.
// When every frame is empty it writes one empty frame (so that "no finding"
// is recorded), or returns ErrEmpty when desc.SkipIfEmpty.
func WriteSEG(w io.Writer, src *dicomio.Series, masks MaskSet, desc Description) (*SEG, error) {
	if err := desc.Validate(); err != nil {
		return nil, err
	}
	if err := validateSource(src); err != nil {
		return nil, err
	}
	if masks == nil {
		return nil, errors.New("writer: no masks given")
	}
	if _, ok := masks.(BitMasks); ok && desc.Type == Fractional {
		return nil, errors.New("writer: a FRACTIONAL SEG needs one byte per pixel (Masks), got BitMasks")
	}
	pixels := src.Rows * src.Columns
	if err := masks.validate(len(desc.Segments), len(src.Frames), pixels); err != nil {
		return nil, err
	}
	d := desc.withDefaults(seriesInfo{seriesNumber: src.SeriesNumber})
	uids, err := deriveSEGUIDs(d, src.SeriesInstanceUID)
	if err != nil {
		return nil, fmt.Errorf("writer: deriving UIDs for series %s: %w", src.SeriesInstanceUID, err)
	}

	frames, empty := selectFrames(masks, d.KeepEmptyFrames, pixels)
	if len(frames) == 0 {
		if d.SkipIfEmpty {
			return nil, ErrEmpty
		}
		frames = []segFrame{{segment: 0, frame: 0}}
	}

	if n := pixelDataLength(d.Type, len(frames), pixels); n >= math.MaxUint32 {
		return nil, fmt.Errorf("writer: SEG for series %s: pixel data of %d bytes exceeds the 4 GiB DICOM limit", src.SeriesInstanceUID, n)
	}
	ds := buildDataset(src, d, uids, frames)
	// Everything but Pixel Data through the library, into one buffer (it
	// writes a few bytes at a time); then Pixel Data, streamed.
	hdr := headerBufs.Get().(*bytes.Buffer)
	defer headerBufs.Put(hdr)
	hdr.Reset()
	if err := dicom.Write(hdr, ds, dicom.SkipVRVerification()); err != nil {
		return nil, fmt.Errorf("writer: encoding SEG %s for series %s: %w", uids.sop, src.SeriesInstanceUID, err)
	}
	if _, err := w.Write(hdr.Bytes()); err != nil {
		return nil, fmt.Errorf("writer: writing SEG %s for series %s: %w", uids.sop, src.SeriesInstanceUID, err)
	}
	if err := writePixelData(w, masks, d.Type, frames, pixels); err != nil {
		return nil, fmt.Errorf("writer: writing pixel data of SEG %s for series %s: %w", uids.sop, src.SeriesInstanceUID, err)
	}
	return &SEG{
		StudyInstanceUID:  src.StudyInstanceUID,
		SeriesInstanceUID: uids.series,
		SOPInstanceUID:    uids.sop,
		SOPClassUID:       SegmentationStorage,
		NumberOfFrames:    len(frames),
		Empty:             empty,
	}, nil
}

// segFrame is one SEG frame: a segment (0-based) on a source frame.
type segFrame struct{ segment, frame int }

// headerBufs holds buffers for the encoded header (a few hundred KiB for a
// 300-frame SEG), reused across SEGs.
var headerBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// selectFrames lists the SEG frames (by segment, then source frame; empty
// ones left out unless keepEmpty) and reports whether every frame is empty.
// Each frame is scanned at most once, and only as far as its first set
// pixel.
func selectFrames(masks MaskSet, keepEmpty bool, pixels int) (out []segFrame, empty bool) {
	empty = true
	for s := 0; s < masks.numSegments(); s++ {
		for f := 0; f < masks.numFrames(s); f++ {
			if keepEmpty && !empty {
				out = append(out, segFrame{s, f})
				continue
			}
			ne := masks.nonEmpty(s, f, pixels)
			if ne {
				empty = false
			}
			if keepEmpty || ne {
				out = append(out, segFrame{s, f})
			}
		}
	}
	return out, empty
}

// buildDataset assembles the whole Segmentation IOD, sorted by tag.
// Pixel Data is not part of it: writePixelData appends it.
func buildDataset(src *dicomio.Series, d Description, uids segUIDs, frames []segFrame) dicom.Dataset {
	var ds item

	ds.addMetaAndSOP(SegmentationStorage, uids.sop)

	// Patient, General Study, Patient Study: copied, VR-checked.
	texts := addPatientStudy(&ds, src)

	// General Series + Segmentation Series.
	ds.str(tag.Modality, "CS", "SEG")
	ds.str(tag.SeriesInstanceUID, "UI", uids.series)
	ds.is(tag.SeriesNumber, d.SeriesNumber)
	ds.opt(tag.SeriesDescription, "LO", d.SeriesDescription)
	if v, ok := copyValue("SH", src.BodyPartExamined); ok && v != "" && csPattern.MatchString(v) {
		ds.str(tag.BodyPartExamined, "CS", v)
	}

	// Frame of Reference (only where the source has patient geometry).
	if src.HasGeometry {
		ds.str(tag.FrameOfReferenceUID, "UI", src.FrameOfReferenceUID)
		ds.str(tag.PositionReferenceIndicator, "LO")
	} else {
		// General Image: Type 2C when there is no patient geometry; the
		// source's, so that viewers label the SEG as they label its image.
		ds.str(tag.PatientOrientation, "CS", validPatientOrientation(src.PatientOrientation)...)
	}

	// General Equipment + Enhanced General Equipment.
	addEquipment(&ds, d)

	// General Image, Segmentation Image (Content Identification),
	// Multi-frame Functional Groups header.
	addContentDateTime(&ds, d, src)
	ds.str(tag.ImageType, "CS", "DERIVED", "PRIMARY")
	ds.str(tag.ContentLabel, "CS", d.ContentLabel)
	ds.str(tag.ContentDescription, "LO", d.ContentDescription)
	ds.str(tag.ContentCreatorName, "PN", d.ContentCreatorName)
	ds.str(tag.LossyImageCompression, "CS", "00")
	ds.str(tag.SegmentationType, "CS", string(d.Type))
	if d.Type == Fractional {
		ds.str(tag.SegmentationFractionalType, "CS", "PROBABILITY")
		ds.us(tag.MaximumFractionalValue, 255)
	}
	ds.seq(tag.SegmentSequence, segmentItems(d)...)

	// Image Pixel.
	ds.us(tag.SamplesPerPixel, 1)
	ds.str(tag.PhotometricInterpretation, "CS", "MONOCHROME2")
	ds.is(tag.NumberOfFrames, len(frames))
	ds.us(tag.Rows, src.Rows)
	ds.us(tag.Columns, src.Columns)
	if d.Type == Fractional {
		ds.us(tag.BitsAllocated, 8)
		ds.us(tag.BitsStored, 8)
		ds.us(tag.HighBit, 7)
	} else {
		ds.us(tag.BitsAllocated, 1)
		ds.us(tag.BitsStored, 1)
		ds.us(tag.HighBit, 0)
	}
	ds.us(tag.PixelRepresentation, 0)

	// Multi-frame Dimension.
	var dimOrg item
	dimOrg.str(tag.DimensionOrganizationUID, "UI", uids.dimOrg)
	ds.seq(tag.DimensionOrganizationSequence, dimOrg)
	ds.seq(tag.DimensionIndexSequence, dimensionIndexItems(uids.dimOrg, src.HasGeometry)...)

	// Functional groups.
	ds.seq(tag.SharedFunctionalGroupsSequence, sharedGroups(src))
	ds.seq(tag.PerFrameFunctionalGroupsSequence, perFrameGroups(src, frames)...)

	// Common Instance Reference: every source instance.
	ds.seq(tag.ReferencedSeriesSequence, referencedSeries(src))

	if needsUTF8(append(texts, d.SeriesDescription, d.ContentDescription, d.ContentCreatorName,
		d.Manufacturer, d.ManufacturerModelName, d.DeviceSerialNumber, d.SoftwareVersions)...) ||
		needsUTF8(segmentTexts(d)...) {
		ds.str(tag.SpecificCharacterSet, "CS", "ISO_IR 192")
	}

	return dicom.Dataset{Elements: ds.sorted()}
}

// addPatientStudy copies the Patient, General Study and Patient Study values
// and returns them for the character set decision.
func addPatientStudy(ds *item, src *dicomio.Series) []string {
	var texts []string
	put := func(t tag.Tag, vr, v string, type3 bool) {
		v, ok := copyValue(vr, v)
		if !ok {
			v = ""
		}
		if type3 && v == "" {
			return
		}
		texts = append(texts, v)
		ds.str(t, vr, v)
	}
	p := src.PatientStudy
	put(tag.PatientName, "PN", p.PatientName, false)
	put(tag.PatientID, "LO", p.PatientID, false)
	put(tag.PatientBirthDate, "DA", p.PatientBirthDate, false)
	put(tag.PatientSex, "CS", p.PatientSex, false)
	put(tag.PatientAge, "AS", p.PatientAge, true)
	ds.str(tag.StudyInstanceUID, "UI", src.StudyInstanceUID)
	put(tag.StudyDate, "DA", p.StudyDate, false)
	put(tag.StudyTime, "TM", p.StudyTime, false)
	put(tag.StudyID, "SH", p.StudyID, false)
	put(tag.AccessionNumber, "SH", p.AccessionNumber, false)
	put(tag.ReferringPhysicianName, "PN", p.ReferringPhysicianName, false)
	put(tag.StudyDescription, "LO", p.StudyDescription, true)
	return texts
}

func segmentTexts(d Description) []string {
	var out []string
	for _, s := range d.Segments {
		out = append(out, s.Label, s.AlgorithmName, s.AlgorithmVersion, s.Category.Meaning, s.Type.Meaning)
	}
	return out
}

// segmentItems describes every segment (Segment Description macro, with
// the segment's display colour); d has its defaults filled in.
func segmentItems(d Description) []item {
	items := make([]item, len(d.Segments))
	for i, s := range d.Segments {
		var x item
		x.code(tag.SegmentedPropertyCategoryCodeSequence, s.Category)
		x.us(tag.SegmentNumber, s.Number)
		x.str(tag.SegmentLabel, "LO", s.Label)
		x.str(tag.SegmentAlgorithmType, "CS", "AUTOMATIC")
		x.str(tag.SegmentAlgorithmName, "LO", s.AlgorithmName)
		var alg item
		alg.code(tag.AlgorithmFamilyCodeSequence, codeAlgorithmFamily)
		alg.str(tag.AlgorithmName, "LO", s.AlgorithmName)
		alg.str(tag.AlgorithmVersion, "LO", s.AlgorithmVersion)
		x.seq(tag.SegmentationAlgorithmIdentificationSequence, alg)
		lab := s.Color.CIELab()
		x.us(tag.RecommendedDisplayCIELabValue, int(lab[0]), int(lab[1]), int(lab[2]))
		x.code(tag.SegmentedPropertyTypeCodeSequence, s.Type)
		items[i] = x
	}
	return items
}

// dimensionIndexItems indexes frames by segment, then (with geometry) by
// position. Without patient geometry (projection radiographs) only the
// segment number is a dimension, as every pointer must name a functional
// group present in the file.
func dimensionIndexItems(dimOrg string, geometry bool) []item {
	var seg item
	seg.str(tag.DimensionOrganizationUID, "UI", dimOrg)
	seg.at(tag.DimensionIndexPointer, tag.ReferencedSegmentNumber)
	seg.at(tag.FunctionalGroupPointer, tag.SegmentIdentificationSequence)
	seg.str(tag.DimensionDescriptionLabel, "LO", "Segment Number")
	if !geometry {
		return []item{seg}
	}
	var pos item
	pos.str(tag.DimensionOrganizationUID, "UI", dimOrg)
	pos.at(tag.DimensionIndexPointer, tag.ImagePositionPatient)
	pos.at(tag.FunctionalGroupPointer, tag.PlanePositionSequence)
	pos.str(tag.DimensionDescriptionLabel, "LO", "Image Position Patient")
	return []item{seg, pos}
}

// nominalOrientation is the row and column direction written for a
// projection image that states none: the one Cornerstone (OHIF) assumes for
// such an image, so that its SEG loader lays the SEG frame on the source
// pixel for pixel. It is not a statement about the patient.
var nominalOrientation = [6]float64{1, 0, 0, 0, 1, 0}

// sharedGroups: Pixel Measures and Plane Orientation where the source has
// geometry. A projection image has neither a frame of reference nor a
// plane, and its SEG pixels are tied to the source pixels by the
// Derivation Image group alone; it gets only the Plane Orientation that
// OHIF's SEG loader cannot do without: the source's own orientation when it
// states one, nominalOrientation otherwise (see docs/CONTRACTS.md, "SEG for
// projection images").
func sharedGroups(src *dicomio.Series) item {
	var g item
	var orient item
	if !src.HasGeometry {
		o := nominalOrientation
		if validOrientation(src.Orientation) {
			o = src.Orientation
		}
		orient.ds(tag.ImageOrientationPatient, o[:]...)
		g.seq(tag.PlaneOrientationSequence, orient)
		return g
	}
	orient.ds(tag.ImageOrientationPatient, src.Orientation[:]...)
	g.seq(tag.PlaneOrientationSequence, orient)
	var pm item
	pm.ds(tag.PixelSpacing, src.PixelSpacing[0], src.PixelSpacing[1])
	thick := src.SliceThickness
	if thick <= 0 {
		thick = src.SpacingBetweenSlices
	}
	if thick > 0 {
		pm.ds(tag.SliceThickness, thick)
	}
	if src.SpacingBetweenSlices > 0 {
		pm.ds(tag.SpacingBetweenSlices, src.SpacingBetweenSlices)
	}
	g.seq(tag.PixelMeasuresSequence, pm)
	return g
}

// validOrientation reports whether o holds two orthogonal unit vectors
// (row, then column direction), as a stated Image Orientation (Patient)
// does; the zero value of an image that states none does not.
func validOrientation(o [6]float64) bool {
	dot := func(a, b []float64) float64 { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }
	r, c := o[:3], o[3:]
	return math.Abs(dot(r, r)-1) < 1e-3 && math.Abs(dot(c, c)-1) < 1e-3 && math.Abs(dot(r, c)) < 1e-3
}

// positionIndex gives every source frame the 1-based rank of its position
// along the slice normal (equal positions share a rank).
func positionIndex(src *dicomio.Series) []int {
	o := src.Orientation
	n := [3]float64{o[1]*o[5] - o[2]*o[4], o[2]*o[3] - o[0]*o[5], o[0]*o[4] - o[1]*o[3]}
	proj := make([]float64, len(src.Frames))
	for i, f := range src.Frames {
		proj[i] = f.Position[0]*n[0] + f.Position[1]*n[1] + f.Position[2]*n[2]
	}
	sorted := append([]float64(nil), proj...)
	sort.Float64s(sorted)
	var distinct []float64
	for _, v := range sorted {
		if len(distinct) == 0 || v-distinct[len(distinct)-1] > 1e-4 {
			distinct = append(distinct, v)
		}
	}
	idx := make([]int, len(proj))
	for i, v := range proj {
		k := sort.SearchFloat64s(distinct, v-1e-4)
		idx[i] = k + 1
	}
	return idx
}

// multiFrameSources finds the source instances that hold more than one
// frame, whose references must name the frame.
func multiFrameSources(src *dicomio.Series) map[string]bool {
	count := map[string]int{}
	multi := map[string]bool{}
	for _, f := range src.Frames {
		count[f.SOPInstanceUID]++
		if f.FrameNumber > 1 {
			multi[f.SOPInstanceUID] = true
		}
	}
	for uid, n := range count {
		if n > 1 {
			multi[uid] = true
		}
	}
	return multi
}

// perFrameGroups: Derivation Image → Source Image, Frame Content with the
// dimension index values, Plane Position (with geometry) and Segment
// Identification, for every SEG frame.
func perFrameGroups(src *dicomio.Series, frames []segFrame) []item {
	var posIdx []int
	if src.HasGeometry {
		posIdx = positionIndex(src)
	}
	multi := multiFrameSources(src)
	// Subtrees that are the same for many frames are built once and shared
	// (the element trees are only read while the dataset is written).
	purpose := codeElem(tag.PurposeOfReferenceCodeSequence, codeSourceForImgOp)
	derivCode := codeElem(tag.DerivationCodeSequence, codeSegmentation)
	segIDs := map[int]*dicom.Element{}
	out := make([]item, len(frames))
	for i, sf := range frames {
		f := src.Frames[sf.frame]
		var g item

		var source item
		source.str(tag.ReferencedSOPClassUID, "UI", f.SOPClassUID)
		source.str(tag.ReferencedSOPInstanceUID, "UI", f.SOPInstanceUID)
		if multi[f.SOPInstanceUID] {
			fn := f.FrameNumber
			if fn < 1 {
				fn = 1
			}
			source.is(tag.ReferencedFrameNumber, fn)
		}
		source = append(source, purpose)
		var deriv item
		deriv = append(deriv, derivCode)
		deriv.seq(tag.SourceImageSequence, source)
		g.seq(tag.DerivationImageSequence, deriv)

		var content item
		if src.HasGeometry {
			content.ul(tag.DimensionIndexValues, sf.segment+1, posIdx[sf.frame])
		} else {
			content.ul(tag.DimensionIndexValues, sf.segment+1)
		}
		g.seq(tag.FrameContentSequence, content)

		if src.HasGeometry {
			var pos item
			pos.ds(tag.ImagePositionPatient, f.Position[:]...)
			g.seq(tag.PlanePositionSequence, pos)
		}

		segID := segIDs[sf.segment]
		if segID == nil {
			var x, it item
			x.us(tag.ReferencedSegmentNumber, sf.segment+1)
			it.seq(tag.SegmentIdentificationSequence, x)
			segID = it[0]
			segIDs[sf.segment] = segID
		}
		g = append(g, segID)
		out[i] = g
	}
	return out
}

// sourceInstanceRefs are the SOP class and instance UIDs of every source
// instance, once each, in frame order.
func sourceInstanceRefs(src *dicomio.Series) []item {
	seen := map[string]bool{}
	var refs []item
	for _, f := range src.Frames {
		if seen[f.SOPInstanceUID] {
			continue
		}
		seen[f.SOPInstanceUID] = true
		var x item
		x.str(tag.ReferencedSOPClassUID, "UI", f.SOPClassUID)
		x.str(tag.ReferencedSOPInstanceUID, "UI", f.SOPInstanceUID)
		refs = append(refs, x)
	}
	return refs
}

// referencedSeries lists every source instance once, in frame order.
func referencedSeries(src *dicomio.Series) item {
	var s item
	s.seq(tag.ReferencedInstanceSequence, sourceInstanceRefs(src)...)
	s.str(tag.SeriesInstanceUID, "UI", src.SeriesInstanceUID)
	return s
}

// packMasks packs the selected byte-per-pixel frames for a BINARY SEG, LSB
// first across frame boundaries, padded to even length.
func packMasks(masks Masks, frames []segFrame, n int) []byte {
	if n%8 == 0 {
		return packFramesParallel(masks, frames, n)
	}
	p := newBitPacker(len(frames) * n)
	for _, sf := range frames {
		p.add(masks[sf.segment][sf.frame], n)
	}
	return p.bytes()
}

// packFramesParallel packs byte-aligned frames (n a multiple of 8, so no
// frame shares a byte with the next) on all available CPUs.
func packFramesParallel(masks Masks, frames []segFrame, n int) []byte {
	per := n / 8
	total := len(frames) * per
	out := make([]byte, total+total%2)
	workers := min(runtime.GOMAXPROCS(0), len(frames))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(frames); i += workers {
				if fr := masks[frames[i].segment][frames[i].frame]; fr != nil {
					packAligned(out[i*per:(i+1)*per], fr)
				}
			}
		}(w)
	}
	wg.Wait()
	return out
}

// validPatientOrientation returns the source's Patient Orientation when it
// is two code strings of direction letters (A, P, R, L, H, F; up to three
// letters each, as in "AL"), nil otherwise (written empty).
func validPatientOrientation(v []string) []string {
	if len(v) != 2 {
		return nil
	}
	for _, d := range v {
		if d == "" || len(d) > 3 || strings.Trim(d, "APRLHF") != "" {
			return nil
		}
	}
	return v
}
