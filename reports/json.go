package reports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// JSONSource reads JSON sidecars:
//
//	{"study_uid": "1.2.…", "accession": "…", "text": "…", "status": "F",
//	 "patient_id": "…", "study_date": "YYYYMMDD"}
//
// text is required, and at least one of study_uid and accession (when both
// are missing the file stem is the key, as for TextSource). status takes
// ParseStatus's values; patient_id and study_date are optional.
type JSONSource struct {
	// Options is accepted for symmetry; JSON is always UTF-8.
	Options Options
}

// jsonReport is the sidecar's schema.
type jsonReport struct {
	StudyUID  *string `json:"study_uid"`
	Accession *string `json:"accession"`
	Text      *string `json:"text"`
	Status    *string `json:"status"`
	PatientID *string `json:"patient_id"`
	StudyDate *string `json:"study_date"`
}

// Format returns "json".
func (s *JSONSource) Format() string { return "json" }

// Detect accepts files ending in .json.
func (s *JSONSource) Detect(name string, head []byte) bool { return hasExt(name, ".json") }

// Parse decodes one sidecar object.
func (s *JSONSource) Parse(name string, data []byte) ([]Report, error) {
	data = bytes.TrimPrefix(data, utf8BOM)
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("json report %s: invalid UTF-8 at byte %d: JSON must be UTF-8", name, invalidUTF8At(data))
	}
	var j jsonReport
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("json report %s: %w", name, jsonErr(err))
	}
	if dec.More() {
		return nil, fmt.Errorf("json report %s: more than one JSON value in the file", name)
	}
	if j.Text == nil || strings.TrimSpace(*j.Text) == "" {
		return nil, fmt.Errorf("json report %s: \"text\" is missing or empty", name)
	}
	r := Report{Text: NormalizeText(*j.Text), Format: s.Format()}
	r.StudyInstanceUID = strings.TrimSpace(deref(j.StudyUID))
	r.AccessionNumber = strings.TrimSpace(deref(j.Accession))
	r.PatientID = strings.TrimSpace(deref(j.PatientID))
	r.StudyDate = strings.TrimSpace(deref(j.StudyDate))
	if r.StudyInstanceUID != "" && !IsUID(r.StudyInstanceUID) {
		return nil, fmt.Errorf("json report %s: \"study_uid\" is not a DICOM UID (digits and dots, at most 64 characters)", name)
	}
	if r.StudyDate != "" && !isDICOMDate(r.StudyDate) {
		return nil, fmt.Errorf("json report %s: \"study_date\" is not a date in YYYYMMDD form", name)
	}
	st, err := ParseStatus(deref(j.Status))
	if err != nil {
		return nil, fmt.Errorf("json report %s: \"status\": %w", name, err)
	}
	r.Status = st
	if r.StudyInstanceUID == "" && r.AccessionNumber == "" {
		key := strings.TrimSpace(stem(name))
		if IsUID(key) {
			r.StudyInstanceUID = key
		} else {
			r.AccessionNumber = key
		}
	}
	return []Report{r}, nil
}

// jsonErr keeps the position and kind of a JSON error but drops the
// values it may quote (which could be report text).
func jsonErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("syntax error: the JSON ends early")
	}
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Errorf("syntax error at byte %d", e.Offset)
	case *json.UnmarshalTypeError:
		return fmt.Errorf("field %q has the wrong type (want %s)", e.Field, e.Type)
	}
	return fmt.Errorf("not a JSON object with string fields")
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// isDICOMDate reports whether s is eight digits (YYYYMMDD).
func isDICOMDate(s string) bool {
	if len(s) != 8 {
		return false
	}
	for i := 0; i < 8; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
