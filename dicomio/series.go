// Package dicomio reads DICOM: headers for the catalog, series assembly and
// ordering, geometry, and pixel decoding to float32 frames in the modality's
// units. It knows nothing about queues, models or archives.
package dicomio

// Vec3 is a point or direction in the patient coordinate system (mm).
type Vec3 [3]float64

// Header holds the attributes the catalog needs from one DICOM file, read
// without decoding pixel data.
type Header struct {
	Path              string // file the header was read from
	SOPInstanceUID    string
	SOPClassUID       string
	StudyInstanceUID  string
	SeriesInstanceUID string
	Modality          string
	AccessionNumber   string
	PatientID         string // PHI: never log
	StudyDate         string // YYYYMMDD
	BodyPartExamined  string
	ImageType         []string
	SeriesNumber      int
	InstanceNumber    int
	Rows, Columns     int
	NumberOfFrames    int
	TransferSyntaxUID string
	// Geometry, where present (HasPosition/HasOrientation say so).
	ImagePositionPatient      Vec3
	ImageOrientationPatient   [6]float64
	HasPosition               bool
	HasOrientation            bool
	PixelSpacing              [2]float64 // row spacing, column spacing (mm)
	SliceThickness            float64
	FrameOfReferenceUID       string
	PhotometricInterpretation string

	// Added for pixel decoding and selection.

	// SeriesDescription (0008,103E); free text, may carry PHI in rare sites:
	// do not log it.
	SeriesDescription string
	// HasPixelData is false for files without a top-level Pixel Data
	// element (structured reports, presentation states, ...).
	HasPixelData bool
	// FileSize is the size of the file in bytes.
	FileSize int64
	// Image Pixel module.
	SamplesPerPixel     int
	BitsAllocated       int
	BitsStored          int
	HighBit             int
	PixelRepresentation int // 0 unsigned, 1 two's complement
	// PixelPaddingValue (and PixelPaddingRangeLimit) in stored-value units,
	// signed when PixelRepresentation is 1; valid when the Has flags say so.
	PixelPaddingValue      int
	PixelPaddingRangeLimit int
	HasPixelPadding        bool
	HasPixelPaddingRange   bool
	// RescaleSlope and RescaleIntercept of the (first) frame; 1 and 0 when
	// absent. For enhanced multi-frame they come from the functional groups.
	RescaleSlope     float64
	RescaleIntercept float64
	// SpacingBetweenSlices (0018,0088) as stated by the file, 0 if absent.
	SpacingBetweenSlices float64
	// PatientOrientation (0020,0020): the patient directions of the rows
	// and columns of a projection image (e.g. "A", "F"); nil if absent.
	PatientOrientation []string
}

// Frames returns the number of frames of the instance (at least 1).
func (h Header) Frames() int {
	if h.NumberOfFrames < 1 {
		return 1
	}
	return h.NumberOfFrames
}

// Patient and study attributes copied verbatim into derived objects (the SEG).
// They are PHI: never log them.
type PatientStudy struct {
	PatientName            string
	PatientID              string
	PatientBirthDate       string
	PatientSex             string
	PatientAge             string
	StudyInstanceUID       string
	StudyDate              string
	StudyTime              string
	StudyID                string
	AccessionNumber        string
	ReferringPhysicianName string
	StudyDescription       string
}

// Frame is one 2D image of a series, in the modality's units (rescale applied),
// row-major, Rows × Columns float32 values, with the source it came from.
type Frame struct {
	Pixels []float32
	// SOPInstanceUID and SOPClassUID of the source instance this frame is in.
	SOPInstanceUID string
	SOPClassUID    string
	// FrameNumber is the 1-based frame number inside a multi-frame source
	// instance (1 for single-frame instances).
	FrameNumber int
	// ImagePositionPatient of this frame; valid when Series.HasGeometry.
	Position Vec3
	// InstanceNumber of the source instance (ordering fallback, display).
	InstanceNumber int
}

// Series is one loaded series: ordered frames plus what a SEG writer needs to
// reference and place them.
type Series struct {
	PatientStudy
	SeriesInstanceUID string
	SeriesNumber      int
	Modality          string
	BodyPartExamined  string
	// Photometric is the source's PhotometricInterpretation; Monochrome1 flags
	// an inverted greyscale that pre-processing must invert.
	Photometric string
	Monochrome1 bool
	Rows        int
	Columns     int
	// Frames are ordered along the slice normal for cross-sectional series
	// (InstanceNumber as a fallback), in file order otherwise.
	Frames []Frame
	// HasGeometry is true when every frame has a patient position and the
	// series a common orientation (cross-sectional); false for projection
	// radiographs (CR/DX) that have no patient geometry.
	HasGeometry          bool
	Orientation          [6]float64
	PixelSpacing         [2]float64
	SliceThickness       float64
	SpacingBetweenSlices float64
	FrameOfReferenceUID  string
	// Warnings found while assembling (uneven spacing, and so on); never PHI.
	Warnings []string

	// Added fields.

	// TransferSyntaxUID of the first source instance.
	TransferSyntaxUID string
	// PatientOrientation of the first frame's instance (projection
	// images, which have no patient geometry; a SEG copies it).
	PatientOrientation []string
	// PaddedPixels counts pixels that held the Pixel Padding Value (or lay
	// in the padding range). They are set to the minimum of the real
	// (non-padding) values of their frame after rescale (of the whole series
	// for a frame that is all padding), so that padding outside the scanned
	// field of view reads as "air"/background and does not distort
	// windowing; 0 when the source declares no padding. Per frame, so that
	// a frame is final as soon as it is decoded (StartLoadSeries).
	PaddedPixels int64
}

// VolumeBytes is the size of the frames' float32 pixels.
func (s *Series) VolumeBytes() int64 {
	return int64(s.Rows) * int64(s.Columns) * int64(len(s.Frames)) * 4
}
