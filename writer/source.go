package writer

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/suyashkumar/dicom/pkg/tag"

	"tmcad/dicomio"
)

var (
	daPattern = regexp.MustCompile(`^[0-9]{8}$`)
	tmPattern = regexp.MustCompile(`^[0-9]{2}([0-9]{2}([0-9]{2}(\.[0-9]{1,6})?)?)?$`)
	asPattern = regexp.MustCompile(`^[0-9]{3}[DWMY]$`)
)

// copyValue checks a patient/study value against its VR before it is copied
// into the SEG; a value that does not fit the VR is dropped (written empty
// for Type 2, left out for Type 3) rather than truncated, so nothing is
// altered silently. It never reports the value itself.
func copyValue(vr, v string) (string, bool) {
	v = strings.TrimRight(v, " \x00")
	if v == "" {
		return "", true
	}
	if strings.ContainsAny(v, "\r\n\x00") {
		return "", false
	}
	switch vr {
	case "DA":
		return v, daPattern.MatchString(v)
	case "TM":
		return v, tmPattern.MatchString(v)
	case "AS":
		return v, asPattern.MatchString(v)
	case "CS": // PatientSex
		return v, v == "M" || v == "F" || v == "O"
	case "SH":
		return v, utf8.RuneCountInString(v) <= 16 && !strings.Contains(v, `\`)
	case "LO":
		return v, utf8.RuneCountInString(v) <= 64 && !strings.Contains(v, `\`)
	case "PN":
		for _, g := range strings.Split(v, "=") {
			if utf8.RuneCountInString(g) > 64 {
				return "", false
			}
		}
		return v, strings.Count(v, "=") <= 2 && !strings.Contains(v, `\`)
	}
	return "", false
}

// validateSource checks what the SEG needs from the source series.
func validateSource(src *dicomio.Series) error {
	if src == nil {
		return fmt.Errorf("writer: source series is nil")
	}
	switch {
	case src.StudyInstanceUID == "" || !uidPattern.MatchString(src.StudyInstanceUID):
		return fmt.Errorf("writer: source series %s: missing or invalid StudyInstanceUID", src.SeriesInstanceUID)
	case src.SeriesInstanceUID == "" || !uidPattern.MatchString(src.SeriesInstanceUID):
		return fmt.Errorf("writer: source series: missing or invalid SeriesInstanceUID")
	case src.Rows <= 0 || src.Columns <= 0 || src.Rows > 65535 || src.Columns > 65535:
		return fmt.Errorf("writer: source series %s: invalid matrix %dx%d", src.SeriesInstanceUID, src.Rows, src.Columns)
	case len(src.Frames) == 0:
		return fmt.Errorf("writer: source series %s: no frames", src.SeriesInstanceUID)
	}
	for i, f := range src.Frames {
		if f.SOPInstanceUID == "" || !uidPattern.MatchString(f.SOPInstanceUID) {
			return fmt.Errorf("writer: source series %s: frame %d: missing or invalid SOPInstanceUID", src.SeriesInstanceUID, i)
		}
		if f.SOPClassUID == "" || !uidPattern.MatchString(f.SOPClassUID) {
			return fmt.Errorf("writer: source series %s: frame %d: missing or invalid SOPClassUID", src.SeriesInstanceUID, i)
		}
	}
	if src.HasGeometry {
		if src.FrameOfReferenceUID == "" || !uidPattern.MatchString(src.FrameOfReferenceUID) {
			return fmt.Errorf("writer: source series %s has geometry but no valid FrameOfReferenceUID", src.SeriesInstanceUID)
		}
		if src.PixelSpacing[0] <= 0 || src.PixelSpacing[1] <= 0 {
			return fmt.Errorf("writer: source series %s has geometry but no PixelSpacing", src.SeriesInstanceUID)
		}
		var n float64
		for _, v := range src.Orientation {
			n += v * v
		}
		if n == 0 {
			return fmt.Errorf("writer: source series %s has geometry but no ImageOrientationPatient", src.SeriesInstanceUID)
		}
	}
	return nil
}

// addEquipment writes the General Equipment attributes the description
// names (manufacturer, model, serial number, software versions).
func addEquipment(ds *item, d Description) {
	ds.str(tag.Manufacturer, "LO", d.Manufacturer)
	ds.str(tag.ManufacturerModelName, "LO", d.ManufacturerModelName)
	ds.str(tag.DeviceSerialNumber, "LO", d.DeviceSerialNumber)
	ds.str(tag.SoftwareVersions, "LO", d.SoftwareVersions)
}

// addContentDateTime writes ContentDate and ContentTime (contentDateTime)
// and InstanceNumber 1: each object tmcad makes is alone in its series.
func addContentDateTime(ds *item, d Description, src *dicomio.Series) {
	date, tm := contentDateTime(d, src)
	ds.str(tag.ContentDate, "DA", date)
	ds.str(tag.ContentTime, "TM", tm)
	ds.is(tag.InstanceNumber, 1)
}

// contentDateTime returns ContentDate and ContentTime: the configured time,
// else the source study's date and time, else 19700101 000000.
func contentDateTime(d Description, src *dicomio.Series) (string, string) {
	if !d.ContentDateTime.IsZero() {
		t := d.ContentDateTime.UTC()
		return t.Format("20060102"), t.Format("150405")
	}
	date, okd := copyValue("DA", src.StudyDate)
	tm, okt := copyValue("TM", src.StudyTime)
	if !okd || date == "" {
		return time.Unix(0, 0).UTC().Format("20060102"), "000000"
	}
	if !okt || tm == "" {
		tm = "000000"
	}
	return date, tm
}

// needsUTF8 reports whether any of the strings is not plain ASCII.
func needsUTF8(values ...string) bool {
	for _, v := range values {
		for i := 0; i < len(v); i++ {
			if v[i] >= 0x80 {
				return true
			}
		}
	}
	return false
}
