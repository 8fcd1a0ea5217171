package writer

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

func TestCopyValueChecksVR(t *testing.T) {
	for _, c := range []struct {
		vr, in string
		ok     bool
	}{
		{"DA", "19600101", true}, {"DA", "1960-01-01", false},
		{"TM", "101500.123", true}, {"TM", "10:15", false},
		{"AS", "064Y", true}, {"AS", "64 years", false},
		{"CS", "F", true}, {"CS", "female", false},
		{"SH", "ACC123", true}, {"SH", "ACCESSION-NUMBER-TOO-LONG", false},
		{"PN", "Doe^John", true}, {"PN", "A=B=C=D", false},
		{"LO", "", true},
	} {
		if _, ok := copyValue(c.vr, c.in); ok != c.ok {
			t.Errorf("copyValue(%s, %q) ok = %v, want %v", c.vr, c.in, ok, c.ok)
		}
	}
}

// TestInvalidPatientValuesDropped: values that do not fit their VR are not
// copied (Type 2 written empty), and the SEG still validates.
func TestInvalidPatientValuesDropped(t *testing.T) {
	src := crSeries(1, 24, 24)
	src.PatientAge = "64 years"
	src.PatientSex = "male"
	src.PatientBirthDate = "1960-01-01"
	seg, err := EncodeSEG(src, discMasks(1, 1, 24, 24, nil, false), testDescription(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"64 years", "male", "1960-01-01"} {
		if bytes.Contains(seg.Data, []byte(bad)) {
			t.Errorf("invalid value %q copied", bad)
		}
	}
}

// TestErrorsCarryNoPHI: encoder errors name UIDs and fields, never patient
// values.
func TestErrorsCarryNoPHI(t *testing.T) {
	src := ctSeries(2, 8, 8)
	src.PatientName = "Secret^Patient"
	src.PatientID = "MRN-777"
	src.Frames[1].SOPClassUID = ""
	_, err := EncodeSEG(src, discMasks(1, 2, 8, 8, nil, false), testDescription(1))
	if err == nil {
		t.Fatal("invalid source accepted")
	}
	if strings.Contains(err.Error(), "Secret") || strings.Contains(err.Error(), "MRN-777") {
		t.Errorf("error carries PHI: %v", err)
	}
	if !strings.Contains(err.Error(), "SOPClassUID") {
		t.Errorf("error does not say what is wrong: %v", err)
	}
}

// TestPatientOrientationCopied: a SEG of a projection image carries the
// source's Patient Orientation (General Image, Type 2C without patient
// geometry); a malformed one is written empty.
func TestPatientOrientationCopied(t *testing.T) {
	for _, tc := range []struct {
		in, want []string
	}{
		{[]string{"P", "F"}, []string{"P", "F"}},
		{[]string{"AL", "FR"}, []string{"AL", "FR"}},
		{[]string{"left", "foot"}, nil},
		{[]string{"P"}, nil},
		{nil, nil},
	} {
		src := crSeries(1, 24, 24)
		src.PatientOrientation = tc.in
		seg, err := EncodeSEG(src, discMasks(1, 1, 24, 24, nil, false), testDescription(1))
		if err != nil {
			t.Fatal(err)
		}
		ds, err := dicom.Parse(bytes.NewReader(seg.Data), int64(len(seg.Data)), nil, dicom.SkipProcessingPixelDataValue())
		if err != nil {
			t.Fatal(err)
		}
		e, err := ds.FindElementByTag(tag.PatientOrientation)
		if err != nil {
			t.Fatalf("%q: PatientOrientation missing (Type 2C): %v", tc.in, err)
		}
		got := e.Value.GetValue().([]string)
		if len(got) == 0 || len(got) == 1 && got[0] == "" { // empty value
			got = nil
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("source %q: SEG PatientOrientation %q, want %q", tc.in, got, tc.want)
		}
	}
}
