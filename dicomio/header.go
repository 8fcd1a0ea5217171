package dicomio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/suyashkumar/dicom"
)

// frameGeom is what a multi-frame instance says about one of its frames
// (from the per-frame and shared functional groups).
type frameGeom struct {
	pos        Vec3
	hasPos     bool
	orient     [6]float64
	hasOrient  bool
	spacing    [2]float64
	thickness  float64
	slope      float64
	intercept  float64
	stackIndex int // InStackPositionNumber, 0 when absent
}

// instance is one parsed file: its header, the patient/study module, the
// per-frame geometry, and where its pixel data lies.
type instance struct {
	Header
	patient PatientStudy
	frames  []frameGeom // len == NumberOfFrames
	layout  *layout
}

// ReadHeader reads the attributes the catalog needs from one DICOM file
// without reading its pixel data: the parse stops at the top-level Pixel
// Data element (7FE0,0010), so its cost does not grow with the image size.
// Errors name the file and never include patient attributes. A file whose
// pixel data cannot be decoded still has a readable header; LoadSeries and
// Select reject it with an *UnsupportedTransferSyntaxError.
func ReadHeader(path string) (Header, error) {
	in, err := readInstance(path)
	if err != nil {
		return Header{}, err
	}
	return in.Header, nil
}

// ReadHeaderFrom is ReadHeader on a file the caller has opened (and
// checked): name is its path, recorded in the Header and used in errors.
func ReadHeaderFrom(name string, f *os.File) (Header, error) {
	st, err := f.Stat()
	if err != nil {
		return Header{}, fmt.Errorf("read DICOM header %s: %w", name, err)
	}
	if !st.Mode().IsRegular() {
		return Header{}, fmt.Errorf("read DICOM header %s: not a regular file", name)
	}
	in, err := parseInstance(name, f, st.Size())
	if err != nil {
		return Header{}, err
	}
	return in.Header, nil
}

// readInstance opens, scans and parses one file (everything but pixel data).
func readInstance(path string) (*instance, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read DICOM header: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read DICOM header: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("read DICOM header %s: not a regular file", path)
	}
	return parseInstance(path, f, st.Size())
}

// ErrTruncated is wrapped by header errors of a Part 10 file that ends
// inside an element: a damaged file, or one still being written.
var ErrTruncated = errors.New("the file ends inside an element (truncated, or still being written)")

// hasPart10Preamble reports whether r starts like a DICOM Part 10 file
// ("DICM" after the 128-byte preamble): only such a file is called
// truncated, not any short file that is not DICOM at all.
func hasPart10Preamble(r io.ReaderAt, size int64) bool {
	if size < 132 {
		return false
	}
	b := make([]byte, 4)
	if _, err := r.ReadAt(b, 128); err != nil {
		return false
	}
	return string(b) == "DICM"
}

// parseInstance parses a DICOM file held in r (size bytes); name is used in
// errors. Panics from the DICOM library become errors.
func parseInstance(name string, r io.ReaderAt, size int64) (in *instance, err error) {
	defer func() {
		if p := recover(); p != nil {
			in, err = nil, fmt.Errorf("read DICOM header %s: malformed file (parser panic: %v)", name, p)
		}
	}()
	l, err := scanLayout(r, size)
	if err != nil {
		if (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errPastEndOfValue)) && hasPart10Preamble(r, size) {
			return nil, fmt.Errorf("read DICOM header %s: %w: %w", name, ErrTruncated, err)
		}
		return nil, fmt.Errorf("read DICOM header %s: %w", name, err)
	}
	elems, err := parseDataSet(l)
	if err != nil {
		return nil, fmt.Errorf("read DICOM header %s: %w", name, err)
	}
	in, err = newInstance(name, l, newAttrs(elems))
	if err != nil {
		return nil, fmt.Errorf("read DICOM header %s: %w", name, err)
	}
	in.FileSize = size
	return in, nil
}

// parseDataSet hands the data set up to (not including) the top-level Pixel
// Data to the DICOM library. The library is given a synthetic File Meta
// group that states the data set's encoding, so that it never has to guess
// it, and only the bytes the walker has already checked.
func parseDataSet(l *layout) ([]*dicom.Element, error) {
	end := l.dataSize
	if l.HasPixels {
		end = l.pixelElemOff
	}
	if l.eotElemOff > 0 && l.eotElemOff < end {
		end = l.eotElemOff // nothing after it but group 7FE0
	}
	n := end - l.dataOff
	ts := ExplicitVRLittleEndian
	switch {
	case l.implicit:
		ts = ImplicitVRLittleEndian
	case l.bo == binary.BigEndian:
		ts = ExplicitVRBigEndian
	}
	meta := syntheticMeta(ts)
	src := io.MultiReader(bytes.NewReader(meta), io.NewSectionReader(l.data, l.dataOff, n))
	p, err := dicom.NewParser(src, int64(len(meta))+n, nil,
		dicom.SkipPixelData(), dicom.AllowUnknownSpecificCharacterSet())
	if err != nil {
		return nil, fmt.Errorf("parse data set: %w", err)
	}
	var elems []*dicom.Element
	for {
		e, err := p.Next()
		if errors.Is(err, dicom.ErrorEndOfDICOM) || errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parse data set: %w", err)
		}
		if e.Tag.Group == 0x0002 {
			continue // our synthetic meta, or a stray group 2
		}
		elems = append(elems, e)
	}
	return elems, nil
}

// syntheticMeta returns a preamble, "DICM" and a File Meta group holding
// only the group length and the transfer syntax.
func syntheticMeta(ts string) []byte {
	if len(ts)%2 == 1 {
		ts += "\x00"
	}
	var b bytes.Buffer
	b.Write(make([]byte, 128))
	b.WriteString("DICM")
	// (0002,0000) UL 4 <len>
	b.Write([]byte{0x02, 0x00, 0x00, 0x00, 'U', 'L', 4, 0})
	_ = binary.Write(&b, binary.LittleEndian, uint32(8+len(ts)))
	// (0002,0010) UI <ts>
	b.Write([]byte{0x02, 0x00, 0x10, 0x00, 'U', 'I'})
	_ = binary.Write(&b, binary.LittleEndian, uint16(len(ts)))
	b.WriteString(ts)
	return b.Bytes()
}

// newInstance extracts the header, patient/study and frame geometry.
func newInstance(name string, l *layout, a attrs) (*instance, error) {
	h := Header{
		Path:                      name,
		SOPInstanceUID:            a.str(tSOPInstanceUID),
		SOPClassUID:               a.str(tSOPClassUID),
		StudyInstanceUID:          a.str(tStudyInstanceUID),
		SeriesInstanceUID:         a.str(tSeriesInstanceUID),
		Modality:                  strings.ToUpper(a.str(tModality)),
		AccessionNumber:           a.str(tAccessionNumber),
		PatientID:                 a.str(tPatientID),
		StudyDate:                 a.str(tStudyDate),
		BodyPartExamined:          a.str(tBodyPartExamined),
		ImageType:                 a.strs(tImageType),
		PatientOrientation:        a.strs(tPatientOrientation),
		TransferSyntaxUID:         l.TransferSyntaxUID,
		FrameOfReferenceUID:       a.str(tFrameOfReferenceUID),
		PhotometricInterpretation: strings.ToUpper(a.str(tPhotometricInterpretation)),
		SeriesDescription:         a.str(tSeriesDescription),
		HasPixelData:              l.HasPixels,
		RescaleSlope:              1,
	}
	if h.SOPInstanceUID == "" {
		h.SOPInstanceUID = l.MetaSOPInstUID
	}
	if h.SOPClassUID == "" {
		h.SOPClassUID = l.MetaSOPClassUID
	}
	h.SeriesNumber, _ = a.int(tSeriesNumber)
	h.InstanceNumber, _ = a.int(tInstanceNumber)
	h.Rows, _ = a.int(tRows)
	h.Columns, _ = a.int(tColumns)
	h.NumberOfFrames, _ = a.int(tNumberOfFrames)
	if h.NumberOfFrames < 1 {
		h.NumberOfFrames = 1
	}
	h.SamplesPerPixel, _ = a.int(tSamplesPerPixel)
	if h.SamplesPerPixel == 0 {
		h.SamplesPerPixel = 1
	}
	h.BitsAllocated, _ = a.int(tBitsAllocated)
	h.BitsStored, _ = a.int(tBitsStored)
	if h.BitsStored == 0 {
		h.BitsStored = h.BitsAllocated
	}
	var ok bool
	if h.HighBit, ok = a.int(tHighBit); !ok {
		h.HighBit = h.BitsStored - 1
	}
	h.PixelRepresentation, _ = a.int(tPixelRepresentation)
	if v, ok := a.int(tPixelPaddingValue); ok {
		h.PixelPaddingValue, h.HasPixelPadding = signedAs(v, h), true
	}
	if v, ok := a.int(tPixelPaddingRangeLimit); ok {
		h.PixelPaddingRangeLimit, h.HasPixelPaddingRange = signedAs(v, h), true
	}
	h.SliceThickness, _ = a.num(tSliceThickness)
	h.SpacingBetweenSlices, _ = a.num(tSpacingBetweenSlices)

	in := &instance{Header: h, layout: l}
	in.patient = PatientStudy{
		PatientName:            a.str(tPatientName),
		PatientID:              h.PatientID,
		PatientBirthDate:       a.str(tPatientBirthDate),
		PatientSex:             a.str(tPatientSex),
		PatientAge:             a.str(tPatientAge),
		StudyInstanceUID:       h.StudyInstanceUID,
		StudyDate:              h.StudyDate,
		StudyTime:              a.str(tStudyTime),
		StudyID:                a.str(tStudyID),
		AccessionNumber:        h.AccessionNumber,
		ReferringPhysicianName: a.str(tReferringPhysicianName),
		StudyDescription:       a.str(tStudyDescription),
	}
	if err := in.readGeometry(a); err != nil {
		return nil, err
	}
	return in, nil
}

// signedAs reinterprets a US-read value as SS when the pixels are signed
// (implicit VR files carry PixelPaddingValue without saying which).
func signedAs(v int, h Header) int {
	if h.PixelRepresentation == 1 && v >= 1<<15 && v < 1<<16 && h.BitsAllocated <= 16 {
		return v - 1<<16
	}
	return v
}

// readGeometry fills the header geometry and rescale, and per-frame geometry
// from the functional groups of an enhanced multi-frame instance (per-frame
// items override shared ones, which override top-level attributes).
func (in *instance) readGeometry(a attrs) error {
	top := frameGeom{slope: 1}
	readPlane(a, &top)
	if top.spacing == ([2]float64{}) {
		if v, ok := a.nums(tImagerPixelSpacing); ok && len(v) == 2 {
			top.spacing = [2]float64{v[0], v[1]}
		}
	}
	top.thickness = in.SliceThickness
	if sh := a.first(tSharedFunctionalGroups); sh != nil {
		readGroups(sh, &top)
	}
	per := a.items(tPerFrameFunctionalGroups)
	n := in.NumberOfFrames
	if len(per) > 0 && len(per) != n {
		return fmt.Errorf("PerFrameFunctionalGroupsSequence has %d items for %d frames", len(per), n)
	}
	in.frames = make([]frameGeom, n)
	for i := range in.frames {
		g := top
		if n > 1 {
			// A position shared by several frames says nothing about where
			// each frame is (legacy multi-frame): only per-frame positions
			// count.
			g.hasPos = false
		}
		if len(per) > 0 {
			readGroups(per[i], &g)
		}
		in.frames[i] = g
	}
	f0 := in.frames[0]
	in.ImagePositionPatient, in.HasPosition = f0.pos, f0.hasPos
	in.ImageOrientationPatient, in.HasOrientation = f0.orient, f0.hasOrient
	in.PixelSpacing = f0.spacing
	in.SliceThickness = f0.thickness
	in.RescaleSlope, in.RescaleIntercept = f0.slope, f0.intercept
	return nil
}

// readPlane reads position, orientation, spacing and rescale attributes
// present directly in a (top-level or macro) item.
func readPlane(a attrs, g *frameGeom) {
	if v, ok := a.nums(tImagePositionPatient); ok && len(v) == 3 && finite(v...) {
		g.pos, g.hasPos = Vec3{v[0], v[1], v[2]}, true
	}
	if v, ok := a.nums(tImageOrientationPatient); ok && len(v) == 6 && finite(v...) {
		copy(g.orient[:], v)
		g.hasOrient = true
	}
	if v, ok := a.nums(tPixelSpacing); ok && len(v) == 2 && finite(v...) {
		g.spacing = [2]float64{v[0], v[1]}
	}
	if v, ok := a.num(tSliceThickness); ok && finite(v) {
		g.thickness = v
	}
	if v, ok := a.num(tRescaleSlope); ok && finite(v) && v != 0 {
		g.slope = v
	}
	if v, ok := a.num(tRescaleIntercept); ok && finite(v) {
		g.intercept = v
	}
}

// readGroups applies the functional group macros of one shared or per-frame
// item.
func readGroups(it attrs, g *frameGeom) {
	for _, seq := range []uint32{tPlanePositionSequence, tPlaneOrientationSequence, tPixelMeasuresSequence, tPixelValueTransformationSeq} {
		if m := it.first(seq); m != nil {
			readPlane(m, g)
		}
	}
	if fc := it.first(tFrameContentSequence); fc != nil {
		g.stackIndex, _ = fc.int(tInStackPositionNumber)
	}
}

func finite(v ...float64) bool {
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}
