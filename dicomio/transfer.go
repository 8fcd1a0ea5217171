package dicomio

import (
	"encoding/binary"
	"fmt"
)

// Transfer syntax UIDs this package reads.
const (
	ImplicitVRLittleEndian = "1.2.840.10008.1.2"
	ExplicitVRLittleEndian = "1.2.840.10008.1.2.1"
	DeflatedExplicitVRLE   = "1.2.840.10008.1.2.1.99"
	ExplicitVRBigEndian    = "1.2.840.10008.1.2.2"
	JPEGBaseline8Bit       = "1.2.840.10008.1.2.4.50"
	JPEGExtended12Bit      = "1.2.840.10008.1.2.4.51"
	JPEGLossless           = "1.2.840.10008.1.2.4.57"
	JPEGLosslessSV1        = "1.2.840.10008.1.2.4.70"
	JPEGLSLossless         = "1.2.840.10008.1.2.4.80"
	JPEGLSNearLossless     = "1.2.840.10008.1.2.4.81"
	JPEG2000Lossless       = "1.2.840.10008.1.2.4.90"
	JPEG2000               = "1.2.840.10008.1.2.4.91"
	HTJ2KLossless          = "1.2.840.10008.1.2.4.201"
	HTJ2KLosslessRPCL      = "1.2.840.10008.1.2.4.202"
	HTJ2K                  = "1.2.840.10008.1.2.4.203"
	RLELossless            = "1.2.840.10008.1.2.5"
)

// transferSyntaxNames names the transfer syntaxes a sender may use, so that
// an unsupported one can be named in the error.
var transferSyntaxNames = map[string]string{
	ImplicitVRLittleEndian:    "Implicit VR Little Endian",
	ExplicitVRLittleEndian:    "Explicit VR Little Endian",
	DeflatedExplicitVRLE:      "Deflated Explicit VR Little Endian",
	ExplicitVRBigEndian:       "Explicit VR Big Endian",
	JPEGBaseline8Bit:          "JPEG Baseline (Process 1)",
	JPEGExtended12Bit:         "JPEG Extended (Process 2 & 4)",
	"1.2.840.10008.1.2.1.98":  "Encapsulated Uncompressed Explicit VR Little Endian",
	"1.2.840.10008.1.2.4.53":  "JPEG Spectral Selection, Non-Hierarchical (Process 6 & 8)",
	"1.2.840.10008.1.2.4.55":  "JPEG Full Progression, Non-Hierarchical (Process 10 & 12)",
	"1.2.840.10008.1.2.4.57":  "JPEG Lossless, Non-Hierarchical (Process 14)",
	"1.2.840.10008.1.2.4.70":  "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])",
	"1.2.840.10008.1.2.4.80":  "JPEG-LS Lossless Image Compression",
	"1.2.840.10008.1.2.4.81":  "JPEG-LS Lossy (Near-Lossless) Image Compression",
	"1.2.840.10008.1.2.4.90":  "JPEG 2000 Image Compression (Lossless Only)",
	"1.2.840.10008.1.2.4.91":  "JPEG 2000 Image Compression",
	"1.2.840.10008.1.2.4.92":  "JPEG 2000 Part 2 Multi-component Image Compression (Lossless Only)",
	"1.2.840.10008.1.2.4.93":  "JPEG 2000 Part 2 Multi-component Image Compression",
	"1.2.840.10008.1.2.4.94":  "JPIP Referenced",
	"1.2.840.10008.1.2.4.95":  "JPIP Referenced Deflate",
	"1.2.840.10008.1.2.4.100": "MPEG2 Main Profile / Main Level",
	"1.2.840.10008.1.2.4.101": "MPEG2 Main Profile / High Level",
	"1.2.840.10008.1.2.4.102": "MPEG-4 AVC/H.264 High Profile / Level 4.1",
	"1.2.840.10008.1.2.4.103": "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1",
	"1.2.840.10008.1.2.4.104": "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video",
	"1.2.840.10008.1.2.4.105": "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video",
	"1.2.840.10008.1.2.4.106": "MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2",
	"1.2.840.10008.1.2.4.107": "HEVC/H.265 Main Profile / Level 5.1",
	"1.2.840.10008.1.2.4.108": "HEVC/H.265 Main 10 Profile / Level 5.1",
	"1.2.840.10008.1.2.4.201": "High-Throughput JPEG 2000 Image Compression (Lossless Only)",
	"1.2.840.10008.1.2.4.202": "High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)",
	"1.2.840.10008.1.2.4.203": "High-Throughput JPEG 2000 Image Compression",
	"1.2.840.10008.1.2.5":     "RLE Lossless",
}

// TransferSyntaxName returns the DICOM name of a transfer syntax UID, or
// "unknown transfer syntax" for a UID this package does not know.
func TransferSyntaxName(uid string) string {
	if n, ok := transferSyntaxNames[uid]; ok {
		return n
	}
	return "unknown transfer syntax"
}

// UnsupportedTransferSyntaxError says that the pixel data of a file is
// encoded in a transfer syntax this package cannot decode.
type UnsupportedTransferSyntaxError struct {
	Path string // the file
	UID  string // its TransferSyntaxUID
}

// Error implements error: "<path>: unsupported transfer syntax <UID> (<name>)".
func (e *UnsupportedTransferSyntaxError) Error() string {
	return fmt.Sprintf("%s: unsupported transfer syntax %s (%s); convert it (e.g. dcmdjpeg, dcmdrle, gdcmconv --raw) before dropping it", e.Path, e.UID, TransferSyntaxName(e.UID))
}

// PixelsSupported reports whether LoadSeries can decode pixel data in the
// given transfer syntax: the native ones (implicit and explicit VR little
// endian, explicit VR big endian, deflated); JPEG baseline and extended
// (8 and 12 bits, Huffman), RLE Lossless and JPEG Lossless process 14 (any
// predictor, and selection value 1), decoded in Go; JPEG-LS lossless and
// near-lossless (CharLS); JPEG 2000 and High-Throughput JPEG 2000, lossless
// and lossy (OpenJPEG).
func PixelsSupported(tsUID string) bool {
	if !encapsulated(tsUID) {
		return true
	}
	_, ok := codecs[tsUID]
	return ok
}

// CheckTransferSyntax returns an *UnsupportedTransferSyntaxError naming path
// when LoadSeries cannot decode pixel data in tsUID, nil otherwise.
func CheckTransferSyntax(path, tsUID string) error {
	if PixelsSupported(tsUID) {
		return nil
	}
	return &UnsupportedTransferSyntaxError{Path: path, UID: tsUID}
}

// datasetEncoding says how the data set (not the pixel data) of a transfer
// syntax is encoded. Every transfer syntax other than implicit little endian
// and explicit big endian encodes its data set as explicit VR little endian
// (PS3.5 §10), including the compressed and unknown ones.
func datasetEncoding(tsUID string) (bo binary.ByteOrder, implicit, deflated bool) {
	switch tsUID {
	case ImplicitVRLittleEndian:
		return binary.LittleEndian, true, false
	case ExplicitVRBigEndian:
		return binary.BigEndian, false, false
	case DeflatedExplicitVRLE:
		return binary.LittleEndian, false, true
	}
	return binary.LittleEndian, false, false
}

// encapsulated reports whether pixel data in tsUID is encapsulated
// (fragments in items) rather than native.
func encapsulated(tsUID string) bool {
	switch tsUID {
	case ImplicitVRLittleEndian, ExplicitVRLittleEndian, DeflatedExplicitVRLE, ExplicitVRBigEndian:
		return false
	}
	return true
}
