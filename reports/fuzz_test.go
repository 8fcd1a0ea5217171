package reports

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// Each parser must return reports or an error for any input, never panic,
// and a report it returns must have valid UTF-8 text.

func checkReports(t *testing.T, reps []Report, err error) {
	t.Helper()
	if err != nil {
		return
	}
	for _, r := range reps {
		if !utf8.ValidString(r.Text) || strings.TrimSpace(r.Text) == "" {
			t.Fatalf("report with empty or invalid text %q", r.Text)
		}
		_ = r.GuideText(nil)
		_ = r.Hash()
	}
}

func FuzzTextParse(f *testing.F) {
	f.Add("ACC1.txt", []byte("FINDINGS: clear.\nIMPRESSION: normal."), false)
	f.Add("1.2.3.txt", []byte("\xef\xbb\xbfOpacit\xe9"), true)
	f.Fuzz(func(t *testing.T, name string, data []byte, latin1 bool) {
		cs := CharsetAuto
		if latin1 {
			cs = CharsetLatin1
		}
		reps, err := (&TextSource{Options: Options{Charset: cs}}).Parse(name, data)
		checkReports(t, reps, err)
	})
}

func FuzzJSONParse(f *testing.F) {
	f.Add([]byte(`{"study_uid": "1.2.3", "accession": "A1", "text": "Findings: x", "status": "F"}`))
	f.Add([]byte(`{"text": "t", "study_date": "20240101", "patient_id": "P"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		reps, err := (&JSONSource{}).Parse("f.json", data)
		checkReports(t, reps, err)
	})
}

func FuzzHL7Parse(f *testing.F) {
	f.Add([]byte("MSH|^~\\&|A|B|C|D|2024||ORU^R01|1|P|2.5\rPID|1||P1\rOBR|1||A1\rOBX|1|TX|x||a\\T\\b\\.br\\c~d||||||F\r"), false)
	f.Add([]byte("MSH|^~\\&|A|B|C|D|2024||ORU^R01|1|P|2.5|||||||8859/1\nOBR|1||A1\nOBX|1|FT|x||\\XE9C3A9\\ \\H\\x\\N\\||||||C\nZDS|1.2.3^A\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, latin1 bool) {
		cs := CharsetAuto
		if latin1 {
			cs = CharsetLatin1
		}
		reps, err := (&HL7Source{Options: Options{Charset: cs}}).Parse("f.hl7", data)
		checkReports(t, reps, err)
	})
}

func FuzzSRParse(f *testing.F) {
	for _, p := range []string{"sr_comprehensive_latin1.dcm", "sr_basic_corrected.dcm", "sr_enhanced_utf8_prelim.dcm", "sr_invalid_utf8.dcm"} {
		if data, err := readTestdata(p); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		reps, err := (&SRSource{}).Parse("f.dcm", data)
		checkReports(t, reps, err)
	})
}

func FuzzTokenizer(f *testing.F) {
	f.Add("FINDINGS: Left lower lobe opacity, running Café 中国 ΟΔΟΣ.", 8)
	f.Add("\x00\xff\u2028İ\u0301 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 24)
	v := tinyVocab(f)
	f.Fuzz(func(t *testing.T, text string, maxLen int) {
		if maxLen < 2 || maxLen > 512 {
			maxLen = 24
		}
		tok, err := NewTokenizer(v, true, true, maxLen)
		if err != nil {
			t.Fatal(err)
		}
		ids, mask := tok.Encode(text)
		if len(ids) != maxLen || len(mask) != maxLen || ids[0] != 2 {
			t.Fatalf("bad encoding %v %v", ids, mask)
		}
		n := 0
		for i, m := range mask {
			if m == 1 {
				if i != n {
					t.Fatalf("mask not a prefix: %v", mask)
				}
				n++
			} else if ids[i] != 0 {
				t.Fatalf("padding id %d", ids[i])
			}
		}
		if ids[n-1] != 3 {
			t.Fatalf("no [SEP] at the end: %v", ids)
		}
		_ = ExtractSections(text, nil)
	})
}
