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

// SOP classes of the overlay: one frame (a radiograph) is a Secondary
// Capture image, several (a CT series) one Multi-frame Grayscale Byte SC
// image.
const (
	SecondaryCaptureImageStorage     = "1.2.840.10008.5.1.4.1.1.7"
	MultiFrameGrayscaleByteSCStorage = "1.2.840.10008.5.1.4.1.1.7.2"
)

// NotForDiagnosis is written into every overlay's SeriesDescription and
// ImageComments: the overlay is a picture for any viewer, not an image to
// read from.
const NotForDiagnosis = "NOT FOR DIAGNOSIS"

// OutlineValue is the pixel value of the burned-in outline. Image pixels
// are at most OutlineValue-1, so the outline is exactly the pixels of this
// value.
const OutlineValue = 255

// overlayUIDs are the UIDs of one overlay.
type overlayUIDs struct{ series, sop string }

// deriveOverlayUIDs makes the overlay's UIDs from the same inputs as its
// SEG's, so that the same input and model give the same overlay.
func deriveOverlayUIDs(d Description, sourceSeriesUID string) (overlayUIDs, error) {
	base := []string{sourceSeriesUID, d.ModelName, d.ModelVersion, d.ReportHash, string(d.Type)}
	var u overlayUIDs
	var err error
	if u.series, err = DeriveUID(d.UIDRoot, append([]string{"overlay-series"}, base...)...); err != nil {
		return u, err
	}
	u.sop, err = DeriveUID(d.UIDRoot, append([]string{"overlay-sop"}, base...)...)
	return u, err
}

// EncodeOverlay builds the overlay of a segmentation: every source frame
// rendered as the PNG previews render it (windowFrame: its 1st–99th
// percentile, MONOCHROME1 inverted), capped at OutlineValue-1, with the
// boundary of every segment's mask burned in at OutlineValue. A series of
// one frame gives a Secondary Capture image, of several frames one
// Multi-frame Grayscale Byte SC image, in the source's study, DERIVED,
// marked NOT FOR DIAGNOSIS. masks is indexed like EncodeSEG's (segment,
// then source frame; any nonzero byte is in the segment); the source
// frames must have their pixels decoded.
func EncodeOverlay(src *dicomio.Series, masks Masks, desc Description) (*Object, error) {
	if err := desc.Validate(); err != nil {
		return nil, err
	}
	if err := validateSource(src); err != nil {
		return nil, err
	}
	if masks == nil {
		return nil, errors.New("writer: overlay: no masks given")
	}
	pixels := src.Rows * src.Columns
	if err := masks.validate(len(desc.Segments), len(src.Frames), pixels); err != nil {
		return nil, fmt.Errorf("writer: overlay: %w", err)
	}
	for i, f := range src.Frames {
		if len(f.Pixels) != pixels {
			return nil, fmt.Errorf("writer: overlay of series %s: source frame %d has no decoded pixels", src.SeriesInstanceUID, i)
		}
	}
	if n := uint64(len(src.Frames)) * uint64(pixels); n >= math.MaxUint32 {
		return nil, fmt.Errorf("writer: overlay of series %s: pixel data of %d bytes exceeds the 4 GiB DICOM limit", src.SeriesInstanceUID, n)
	}
	d := desc.withDefaults(seriesInfo{seriesNumber: src.SeriesNumber})
	uids, err := deriveOverlayUIDs(d, src.SeriesInstanceUID)
	if err != nil {
		return nil, fmt.Errorf("writer: deriving overlay UIDs for series %s: %w", src.SeriesInstanceUID, err)
	}
	class := SecondaryCaptureImageStorage
	if len(src.Frames) > 1 {
		class = MultiFrameGrayscaleByteSCStorage
	}

	pix := make([]byte, len(src.Frames)*pixels+(len(src.Frames)*pixels)%2)
	on := func(v byte) bool { return v != 0 }
	for i, f := range src.Frames {
		out := pix[i*pixels : (i+1)*pixels]
		for k, g := range windowFrame(f.Pixels, src.Monochrome1) {
			out[k] = min(g, OutlineValue-1)
		}
		for s := range masks {
			if m := masks[s][i]; m != nil {
				outline(m, src.Rows, src.Columns, on, func(k int) { out[k] = OutlineValue })
			}
		}
	}

	ds := overlayDataset(src, d, uids, class)
	var buf bytes.Buffer
	buf.Grow(8192 + len(pix))
	if err := dicom.Write(&buf, ds, dicom.SkipVRVerification()); err != nil {
		return nil, fmt.Errorf("writer: encoding overlay %s for series %s: %w", uids.sop, src.SeriesInstanceUID, err)
	}
	// Pixel Data has the highest tag of the dataset: appended after it.
	h := pixelDataHeader(uint32(len(pix)))
	buf.Write(h[:])
	buf.Write(pix)
	return &Object{
		StudyInstanceUID:  src.StudyInstanceUID,
		SeriesInstanceUID: uids.series,
		SOPInstanceUID:    uids.sop,
		SOPClassUID:       class,
		Data:              buf.Bytes(),
	}, nil
}

// overlayDataset is the Secondary Capture (or Multi-frame Grayscale Byte
// SC) dataset, everything but Pixel Data.
func overlayDataset(src *dicomio.Series, d Description, uids overlayUIDs, class string) dicom.Dataset {
	var ds item
	ds.addMetaAndSOP(class, uids.sop)
	texts := addPatientStudy(&ds, src)

	// General Series.
	ds.str(tag.Modality, "CS", "OT")
	ds.str(tag.SeriesInstanceUID, "UI", uids.series)
	ds.is(tag.SeriesNumber, d.SeriesNumber+2)
	desc := companionDescription(d, "outline "+NotForDiagnosis)
	ds.str(tag.SeriesDescription, "LO", desc)
	// Type 2C (a paired body part): unknown here, so empty.
	ds.str(tag.Laterality, "CS")

	// General Equipment, SC Equipment.
	addEquipment(&ds, d)
	ds.str(tag.ConversionType, "CS", "WSD")

	// General Image, SC Image.
	addContentDateTime(&ds, d, src)
	ds.str(tag.PatientOrientation, "CS", validPatientOrientation(src.PatientOrientation)...)
	ds.str(tag.ImageType, "CS", "DERIVED", "SECONDARY")
	ds.str(tag.DerivationDescription, "ST", "Source windowed to its 1st-99th percentile, with the boundary of the "+d.ModelName+" "+d.ModelVersion+" segmentation at pixel value "+strconv.Itoa(OutlineValue))
	ds.seq(tag.SourceImageSequence, sourceImages(src)...)
	ds.str(tag.ImageComments, "LT", NotForDiagnosis+": segmentation outline burned into the image; see the SEG for the segmentation")
	ds.str(tag.BurnedInAnnotation, "CS", "NO")
	ds.str(tag.LossyImageCompression, "CS", "00")

	// Image Pixel.
	ds.us(tag.SamplesPerPixel, 1)
	ds.str(tag.PhotometricInterpretation, "CS", "MONOCHROME2")
	ds.us(tag.Rows, src.Rows)
	ds.us(tag.Columns, src.Columns)
	ds.us(tag.BitsAllocated, 8)
	ds.us(tag.BitsStored, 8)
	ds.us(tag.HighBit, 7)
	ds.us(tag.PixelRepresentation, 0)

	if class == MultiFrameGrayscaleByteSCStorage {
		// Multi-frame, SC Multi-frame Image.
		ds.is(tag.NumberOfFrames, len(src.Frames))
		ds.at(tag.FrameIncrementPointer, tag.FrameLabelVector)
		labels := make([]string, len(src.Frames))
		for i := range labels {
			labels[i] = strconv.Itoa(i + 1)
		}
		ds.str(tag.FrameLabelVector, "SH", labels...)
		ds.str(tag.PresentationLUTShape, "CS", "IDENTITY")
		// The identity rescale, in unspecified units, that the module
		// requires of byte images.
		ds.ds(tag.RescaleIntercept, 0)
		ds.ds(tag.RescaleSlope, 1)
		ds.str(tag.RescaleType, "LO", "US")
	}

	if needsUTF8(append(texts, d.Manufacturer, d.ManufacturerModelName, d.DeviceSerialNumber, d.SoftwareVersions, desc, d.ModelName, d.ModelVersion)...) {
		ds.str(tag.SpecificCharacterSet, "CS", "ISO_IR 192")
	}
	return dicom.Dataset{Elements: ds.sorted()}
}

// sourceImages references every source instance once (frames of a
// multi-frame source by number), as the source of an image processing
// operation.
func sourceImages(src *dicomio.Series) []item {
	multi := multiFrameSources(src)
	purpose := codeElem(tag.PurposeOfReferenceCodeSequence, codeSourceForImgOp)
	seen := map[string]bool{}
	var out []item
	for _, f := range src.Frames {
		if !multi[f.SOPInstanceUID] && seen[f.SOPInstanceUID] {
			continue
		}
		seen[f.SOPInstanceUID] = true
		var x item
		x.str(tag.ReferencedSOPClassUID, "UI", f.SOPClassUID)
		x.str(tag.ReferencedSOPInstanceUID, "UI", f.SOPInstanceUID)
		if multi[f.SOPInstanceUID] {
			x.is(tag.ReferencedFrameNumber, max(f.FrameNumber, 1))
		}
		x = append(x, purpose)
		out = append(out, x)
	}
	return out
}
