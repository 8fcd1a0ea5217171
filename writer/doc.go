// Package writer turns segmentation masks into DICOM Segmentation objects
// (SOP Class 1.2.840.10008.5.1.4.1.1.66.4), with the measurement report and
// the overlay made beside them; writer/archive stores them.
//
// The SEG is built from typed, validated descriptions (Description, Segment,
// Code), never from loose tags: EncodeSEG / WriteSEG take a loaded source
// series (dicomio.Series), the masks per segment and source frame, and a
// Description, and produce a complete Part 10 file with every element sorted
// by tag, BINARY pixel data packed least-significant-bit first across frame
// boundaries, and references to every source instance.
//
// Masks come one byte per pixel (Masks; needed for FRACTIONAL) or already
// bit-packed in the DICOM BINARY layout (BitMasks, produced with PackFrame
// or ThresholdPack), which is the fast path: the header is encoded with
// suyashkumar/dicom, and the Pixel Data element is appended by this package
// with the packed frames streamed to the io.Writer as they are.
//
// Beside a SEG, EncodeSR writes its measurement report (Comprehensive SR,
// TID 1500: one TID 1411 group per segment with its Measurement) and
// EncodeOverlay an outline overlay (Secondary Capture, NOT FOR DIAGNOSIS)
// rendered as the previews are; both return an Object and take their UIDs
// from the SEG's inputs.
//
// PreviewPNG and WritePreviewFile render a PNG of the most segmented frame
// for a quick look.
//
// Nothing in this package logs, and no error message carries patient data or
// report text: errors name fields, UIDs and counts only.
package writer
