package dicomio

import (
	"strings"
	"testing"
)

func TestReadHeaderTransferSyntaxes(t *testing.T) {
	for _, tc := range []struct{ file, ts string }{
		{"ts/implicit.dcm", ImplicitVRLittleEndian},
		{"ts/explicit.dcm", ExplicitVRLittleEndian},
		{"ts/bigendian.dcm", ExplicitVRBigEndian},
		{"ts/deflated.dcm", DeflatedExplicitVRLE},
		{"ts/jpeg_baseline.dcm", JPEGBaseline8Bit},
		{"ts/jpeg2000.dcm", "1.2.840.10008.1.2.4.90"},
		{"ts/rle.dcm", "1.2.840.10008.1.2.5"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			h, err := ReadHeader(td(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if h.TransferSyntaxUID != tc.ts {
				t.Errorf("TransferSyntaxUID = %q, want %q", h.TransferSyntaxUID, tc.ts)
			}
			if h.Path != td(tc.file) || !h.HasPixelData || h.FileSize == 0 {
				t.Errorf("Path/HasPixelData/FileSize = %q %v %d", h.Path, h.HasPixelData, h.FileSize)
			}
			if h.StudyInstanceUID != "1.2.826.0.1.3680043.10.1234.1" || h.AccessionNumber != "ACC0001" || h.PatientID != "PID-SECRET-42" || h.StudyDate != "20240102" {
				t.Errorf("study attributes: %+v", h)
			}
			if h.SOPInstanceUID == "" || h.SOPClassUID == "" || h.SeriesInstanceUID == "" || h.Rows == 0 || h.Columns == 0 || h.NumberOfFrames != 1 {
				t.Errorf("identity/size: %+v", h)
			}
		})
	}
}

func TestReadHeaderCTGeometry(t *testing.T) {
	h, err := ReadHeader(td("ts/bigendian.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	want := Header{Modality: "CT", Rows: 16, Columns: 12, BitsAllocated: 16, BitsStored: 12, HighBit: 11,
		RescaleSlope: 1, RescaleIntercept: -1024, SliceThickness: 2.5, PhotometricInterpretation: "MONOCHROME2",
		BodyPartExamined: "CHEST", SeriesNumber: 2, InstanceNumber: 1, SamplesPerPixel: 1,
		FrameOfReferenceUID: "1.2.826.0.1.3680043.10.1234.2"}
	got := h
	if got.Modality != want.Modality || got.Rows != want.Rows || got.Columns != want.Columns ||
		got.BitsAllocated != 16 || got.BitsStored != 12 || got.HighBit != 11 || got.RescaleSlope != 1 ||
		got.RescaleIntercept != -1024 || got.SliceThickness != 2.5 || got.PhotometricInterpretation != want.PhotometricInterpretation ||
		got.BodyPartExamined != "CHEST" || got.SeriesNumber != 2 || got.InstanceNumber != 1 || got.SamplesPerPixel != 1 ||
		got.FrameOfReferenceUID != want.FrameOfReferenceUID {
		t.Errorf("got %+v", got)
	}
	if !h.HasPosition || h.ImagePositionPatient != (Vec3{-10, -20, 0}) {
		t.Errorf("position %v %v", h.HasPosition, h.ImagePositionPatient)
	}
	if !h.HasOrientation || h.ImageOrientationPatient != [6]float64{1, 0, 0, 0, 1, 0} {
		t.Errorf("orientation %v %v", h.HasOrientation, h.ImageOrientationPatient)
	}
	if h.PixelSpacing != [2]float64{0.7, 0.8} {
		t.Errorf("spacing %v", h.PixelSpacing)
	}
	if strings.Join(h.ImageType, `\`) != `ORIGINAL\PRIMARY\AXIAL` {
		t.Errorf("ImageType %v", h.ImageType)
	}
}

func TestReadHeaderEnhanced(t *testing.T) {
	h, err := ReadHeader(td("enhanced/ct_enhanced.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	if h.NumberOfFrames != 5 || !h.HasPosition || !h.HasOrientation || h.PixelSpacing != [2]float64{0.5, 0.5} || h.SliceThickness != 1.25 {
		t.Errorf("enhanced header: %+v", h)
	}
	if h.ImagePositionPatient != (Vec3{0, 0, 3.75}) || h.RescaleIntercept != -1000 || h.RescaleSlope != 1 {
		t.Errorf("first frame: %v %v %v", h.ImagePositionPatient, h.RescaleIntercept, h.RescaleSlope)
	}
}

func TestReadHeaderErrorsNameFileNotPatient(t *testing.T) {
	for _, p := range []string{td("missing.dcm"), td("expected.json")} {
		_, err := ReadHeader(p)
		if err == nil {
			t.Fatalf("%s: no error", p)
		}
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error does not name the file: %v", err)
		}
	}
}
