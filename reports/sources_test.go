package reports

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mustReader(t *testing.T, opts Options) *Reader {
	t.Helper()
	r, err := NewReader(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func readOne(t *testing.T, r *Reader, path string) Report {
	t.Helper()
	reps, err := r.ReadFile(path)
	if err != nil {
		t.Fatalf("ReadFile(%s): %v", path, err)
	}
	if len(reps) != 1 {
		t.Fatalf("ReadFile(%s): %d reports, want 1", path, len(reps))
	}
	return reps[0]
}

// noPHI fails when an error message contains any of the PHI values.
func noPHI(t *testing.T, err error, phi ...string) {
	t.Helper()
	for _, p := range phi {
		if p != "" && strings.Contains(err.Error(), p) {
			t.Errorf("error %q contains PHI %q", err, p)
		}
	}
}

func TestTextLatin1WithSections(t *testing.T) {
	path := filepath.Join("testdata", "ACC5521.txt")
	// Auto charset: the file is not UTF-8, so it is an error naming the file.
	_, err := mustReader(t, Options{}).ReadFile(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "latin1") {
		t.Fatalf("auto charset on Latin-1: err = %v, want an error naming the file and the latin1 setting", err)
	}
	noPHI(t, err, "Opacit", "pneumonia")

	rep := readOne(t, mustReader(t, Options{Charset: CharsetLatin1}), path)
	if rep.AccessionNumber != "ACC5521" || rep.StudyInstanceUID != "" || rep.Format != "text" || rep.Status != StatusUnknown {
		t.Errorf("report keys: %+v", rep)
	}
	if !strings.Contains(rep.Text, "Opacité in the right middle lobe.") || strings.Contains(rep.Text, "\r") {
		t.Errorf("text not decoded/normalised: %q", rep.Text)
	}
	if rep.Source != path || rep.ModTime.IsZero() {
		t.Errorf("source %q modtime %v", rep.Source, rep.ModTime)
	}
	want := "Opacité in the right middle lobe. No pneumothorax. Right middle lobe pneumonia."
	if got := rep.GuideText(nil); got != want {
		t.Errorf("GuideText = %q, want %q", got, want)
	}
	if got := rep.GuideText([]string{"history"}); got != "Fever." {
		t.Errorf("GuideText(history) = %q", got)
	}
}

func TestTextUTF8BOMKeyedByUID(t *testing.T) {
	rep := readOne(t, mustReader(t, Options{}), filepath.Join("testdata", "1.2.826.0.1.3680043.8.498.55.txt"))
	if rep.StudyInstanceUID != "1.2.826.0.1.3680043.8.498.55" || rep.AccessionNumber != "" {
		t.Errorf("keys: uid %q acc %q", rep.StudyInstanceUID, rep.AccessionNumber)
	}
	if strings.HasPrefix(rep.Text, "\ufeff") {
		t.Error("BOM kept")
	}
	want := "Bilateral lower lobe consolidation, worse on the left. Bilateral pneumonia."
	if got := rep.GuideText(nil); got != want {
		t.Errorf("GuideText = %q, want %q", got, want)
	}
}

func TestTextInvalidAndEmpty(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ACC1.txt")
	os.WriteFile(p, []byte("  \n\n"), 0o600)
	if _, err := mustReader(t, Options{}).ReadFile(p); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty: %v", err)
	}
	os.WriteFile(p, []byte("ok \xff\xfe bad"), 0o600)
	_, err := mustReader(t, Options{}).ReadFile(p)
	if err == nil || !strings.Contains(err.Error(), "byte 3") {
		t.Errorf("invalid UTF-8: %v", err)
	}
	big := filepath.Join(dir, "ACC2.txt")
	os.WriteFile(big, make([]byte, 2048), 0o600)
	if _, err := mustReader(t, Options{MaxBytes: 1024}).ReadFile(big); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("over the size limit: %v", err)
	}
	other := filepath.Join(dir, "notes.pdf")
	os.WriteFile(other, []byte("%PDF"), 0o600)
	if _, err := mustReader(t, Options{}).ReadFile(other); !errors.Is(err, ErrNotReport) {
		t.Errorf("pdf: %v, want ErrNotReport", err)
	}
	if _, err := NewReader(Options{Charset: "cp1252"}); err == nil {
		t.Error("unknown charset accepted")
	}
}

func TestJSONSidecar(t *testing.T) {
	rep := readOne(t, mustReader(t, Options{}), filepath.Join("testdata", "sidecar.json"))
	if rep.StudyInstanceUID != "1.2.826.0.1.3680043.8.498.66" || rep.AccessionNumber != "ACC6600" ||
		rep.PatientID != "PAT0066" || rep.StudyDate != "20240402" || rep.Status != StatusFinal || rep.Format != "json" {
		t.Errorf("sidecar: %+v", rep)
	}
	if got := rep.GuideText(nil); got != "Ground-glass opacities in the right lung, CT-1, involvement under 25%. Early viral pneumonia." {
		t.Errorf("GuideText = %q", got)
	}
	src := &JSONSource{}
	bad := map[string]string{
		`{"study_uid": "1.2.3", "status": "F"}`:                      "text",
		`{"study_uid": "x.y", "text": "t"}`:                          "study_uid",
		`{"accession": "A1", "text": "secret words", "status": "Q"}`: "status",
		`{"accession": "A1", "text": 5}`:                             "wrong type",
		`{"accession": "A1", "text": "t"} {}`:                        "more than one",
		`{"accession": "A1", "text": "secret`:                        "syntax",
		"{\"accession\": \"A1\", \"text\": \"\xff\"}":                "UTF-8",
	}
	for in, want := range bad {
		_, err := src.Parse("x.json", []byte(in))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "x.json") {
			t.Errorf("Parse(%q) = %v, want error mentioning %q and the file", in, err, want)
			continue
		}
		noPHI(t, err, "secret", "A1")
	}
	// No identifiers: the stem is the key.
	reps, err := src.Parse("dir/ACC42.json", []byte(`{"text": "Normal chest.", "status": "preliminary"}`))
	if err != nil || reps[0].AccessionNumber != "ACC42" || reps[0].Status != StatusPreliminary {
		t.Errorf("stem key: %+v %v", reps, err)
	}
}

func TestHL7Final(t *testing.T) {
	path := filepath.Join("testdata", "oru_final.hl7")
	rep := readOne(t, mustReader(t, Options{}), path)
	if rep.AccessionNumber != "ACC7781" || rep.PatientID != "PAT0042" || rep.StudyDate != "20240315" ||
		rep.StudyInstanceUID != "1.2.826.0.1.3680043.8.498.77" || rep.Status != StatusFinal || rep.Format != "hl7" {
		t.Errorf("keys: %+v", rep)
	}
	wantText := strings.Join([]string{
		"EXAM: CHEST PA AND LATERAL",
		"HISTORY: Cough & fever.",
		"FINDINGS:",
		"Left lower lobe opacity.",
		"No pleural effusion & no pneumothorax.",
		"Heart size normal ^ stable | unchanged.",
		"Mediastinum unremarkable \\ midline.",
		"IMPRESSION: Left lower lobe pneumonia, new.",
	}, "\n")
	if rep.Text != wantText {
		t.Errorf("text:\n%s\nwant:\n%s", rep.Text, wantText)
	}
	want := "Left lower lobe opacity. No pleural effusion & no pneumothorax. Heart size normal ^ stable | unchanged. Mediastinum unremarkable \\ midline. Left lower lobe pneumonia, new."
	if got := rep.GuideText(nil); got != want {
		t.Errorf("GuideText = %q\nwant %q", got, want)
	}
}

func TestHL7PrelimAndLatin1(t *testing.T) {
	r := mustReader(t, Options{})
	p := readOne(t, r, filepath.Join("testdata", "oru_prelim.hl7"))
	if p.Status != StatusPreliminary || p.AccessionNumber != "ACC7781" || p.StudyInstanceUID != "" {
		t.Errorf("prelim: %+v", p)
	}
	l := readOne(t, r, filepath.Join("testdata", "oru_latin1.hl7"))
	if l.Status != StatusCorrected || l.AccessionNumber != "ACC9001" || l.PatientID != "PAT0099" || l.StudyDate != "20240401" {
		t.Errorf("latin1 keys: %+v", l)
	}
	if want := "Befund: Verschattung im rechten Unterlappen, größer als zuvor; épanchement."; l.Text != want {
		t.Errorf("latin1 text %q, want %q", l.Text, want)
	}
}

func TestHL7Errors(t *testing.T) {
	src := &HL7Source{}
	cases := map[string]string{
		"PID|1||X\rOBX|1|TX|||secret":                                                                                     "first segment is not MSH",
		"MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|2.5\rPID|1||PAT1":                                                            "not ORU",
		"MSH|^~\\&|A|B|C|D|2024||ORU^R01|1|P|2.5\rOBR|1||A1\rOBX|1|NM|x||5":                                               "no result text",
		"MSH|^~\\&|A|B|C|D|2024||ORU^R01|1|P|2.5\rOBR|1||A1" + strings.Repeat("|", 22) + "X\rOBX|1|TX|x||cancelled words": "no result text",
		"MSH|^~\\&|A|B|C|D|2024||ORU^R01|1|P|2.5\rOBX|1|TX|x||caf\xe9":                                                    "invalid UTF-8",
		"MSH|^~\\&|A|B|C|D|2024||ORU^R01|1|P|2.5||||||EBCDIC\rOBX|1|TX|x||t":                                              "MSH-18",
		"MSH|^~\\&|A|B|C|D|2024||ORU^R01|1|P|2.5\rOBX|1|ST|110180^Study Instance UID||PAT1":                               "not a DICOM UID",
		"MSHa^~\\&": "not ASCII punctuation",
	}
	for in, want := range cases {
		_, err := src.Parse("m.hl7", []byte(in))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "m.hl7") {
			t.Errorf("Parse(%q) = %v, want error with %q", in, err, want)
			continue
		}
		noPHI(t, err, "secret", "PAT1", "caf", "cancelled")
	}
	// Latin-1 fallback when configured, and a batch of two messages with MLLP framing.
	batch := "\x0bMSH|^~\\&|A|B|C|D|2024||ORU^R01|1|P|2.5\rOBR|1||A1\rOBX|1|TX|x||caf\xe9||||||F\r\x1c\r" +
		"\x0bMSH|^~\\&|A|B|C|D|2024||ORU^R01|2|P|2.5\rOBR|1||A2" + strings.Repeat("|", 22) + "P\rOBX|1|TX|x||second\\X6F6B\\\r\x1c\r"
	reps, err := (&HL7Source{Options: Options{Charset: CharsetLatin1}}).Parse("b.hl7", []byte(batch))
	if err != nil || len(reps) != 2 || reps[0].Text != "café" || reps[0].AccessionNumber != "A1" ||
		reps[1].Text != "secondok" || reps[1].Status != StatusPreliminary {
		t.Errorf("batch: %+v %v", reps, err)
	}
	// ZDS-1 carries the study UID.
	reps, err = src.Parse("z.hl7", []byte("MSH|^~\\&|A|B|C|D|2024||ORU^R01|1|P|2.5\nOBR|1||A1\nOBX|1|TX|x||text\nZDS|1.2.3.4^RIS^Application^DICOM\n"))
	if err != nil || reps[0].StudyInstanceUID != "1.2.3.4" {
		t.Errorf("ZDS: %+v %v", reps, err)
	}
	if !src.Detect("noext", []byte("MSH|^~\\&|")) || src.Detect("x.txt", []byte("Findings")) {
		t.Error("Detect")
	}
}

func TestSR(t *testing.T) {
	r := mustReader(t, Options{})
	c := readOne(t, r, filepath.Join("testdata", "sr_comprehensive_latin1.dcm"))
	if c.StudyInstanceUID != "1.2.826.0.1.3680043.8.498.77" || c.AccessionNumber != "ACC7781" || c.PatientID != "PAT0042" ||
		c.StudyDate != "20240315" || c.Status != StatusFinal || c.Format != "sr" {
		t.Errorf("comprehensive keys: %+v", c)
	}
	wantText := "Clinical History: Cough and fever for three days.\nFindings:\nOpacité in the left lower lobe.\nNo pleural effusion.\nImpressions:\nLeft lower lobe pneumonia."
	if c.Text != wantText {
		t.Errorf("SR text:\n%q\nwant\n%q", c.Text, wantText)
	}
	if got := c.GuideText(nil); got != "Opacité in the left lower lobe. No pleural effusion. Left lower lobe pneumonia." {
		t.Errorf("SR GuideText = %q", got)
	}
	e := readOne(t, r, filepath.Join("testdata", "sr_enhanced_utf8_prelim.dcm"))
	if e.Status != StatusPreliminary || !strings.Contains(e.Text, "right upper lobe — small.") || !strings.Contains(e.Text, "Früh") {
		t.Errorf("enhanced: %v %q", e.Status, e.Text)
	}
	b := readOne(t, r, filepath.Join("testdata", "sr_basic_corrected.dcm"))
	if b.Status != StatusCorrected || b.GuideText(nil) != "Clear lungs. No acute disease." {
		t.Errorf("basic: %v %q", b.Status, b.GuideText(nil))
	}
	_, err := r.ReadFile(filepath.Join("testdata", "sr_invalid_utf8.dcm"))
	if err == nil || !strings.Contains(err.Error(), "sr_invalid_utf8.dcm") || !strings.Contains(err.Error(), "ISO_IR 192") {
		t.Errorf("invalid UTF-8 SR: %v", err)
	}
	noPHI(t, fmtErr(err), "plac", "PAT0042", "Doe")
	if !IsSRSOPClass("1.2.840.10008.5.1.4.1.1.88.33") || IsSRSOPClass("1.2.840.10008.5.1.4.1.1.2") {
		t.Error("IsSRSOPClass")
	}
	// A DICOM file of another class is not a report.
	data, _ := os.ReadFile(filepath.Join("testdata", "sr_basic_corrected.dcm"))
	data = []byte(strings.ReplaceAll(string(data), "1.2.840.10008.5.1.4.1.1.88.11", "1.2.840.10008.5.1.4.1.1.7\x00\x00\x00\x00"))
	if _, err := (&SRSource{}).Parse("img.dcm", data); !errors.Is(err, ErrNotReport) {
		t.Errorf("secondary capture: %v, want ErrNotReport", err)
	}
}

func fmtErr(err error) error {
	if err == nil {
		return errors.New("")
	}
	return err
}

func TestHashAndStatus(t *testing.T) {
	a := Report{Text: "Findings:  \r\nClear.\r\n"}
	b := Report{Text: "Findings:\nClear."}
	if a.Hash() != b.Hash() || len(a.Hash()) != 64 {
		t.Errorf("hash of equivalent texts differ: %s %s", a.Hash(), b.Hash())
	}
	for in, want := range map[string]Status{"P": StatusPreliminary, "f": StatusFinal, "C": StatusCorrected, "amended": StatusCorrected, "": StatusUnknown} {
		if got, err := ParseStatus(in); err != nil || got != want {
			t.Errorf("ParseStatus(%q) = %v, %v", in, got, err)
		}
	}
	_ = time.Now
}

// readTestdata reads a fixture file.
func readTestdata(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join("testdata", name))
}

// TestSRHostileLength checks that a declared 2 GiB text value is rejected
// before the DICOM library allocates it.
func TestSRHostileLength(t *testing.T) {
	data, err := readTestdata("sr_basic_corrected.dcm")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(data), "Clear lungs")
	copy(data[i-4:i], []byte{0xF0, 0xFF, 0xFF, 0x7F})
	_, err = (&SRSource{}).Parse("huge.dcm", data)
	if err == nil || !strings.Contains(err.Error(), "past the end") {
		t.Fatalf("err = %v", err)
	}
}
