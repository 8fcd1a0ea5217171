package archive

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"tmcad/internal/testpeers"
	"tmcad/writer"
)

// TestOrthancSTOW: Orthanc accepts the SEG through the DICOMweb sink, QIDO-RS
// lists the SEG series with Modality SEG, and storing twice leaves one
// instance.
func TestOrthancSTOW(t *testing.T) {
	o := testpeers.StartOrthanc(t)
	sink := orthancSink(t, o)
	ctx := context.Background()
	for _, c := range testCases(t) {
		seg, err := writer.EncodeSEG(c.src, c.input(), c.desc)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if err := PutSEG(ctx, sink, seg); err != nil {
				t.Fatalf("%s: STOW #%d: %v", c.name, i+1, err)
			}
		}
		var series []map[string]struct {
			VR    string `json:"vr"`
			Value []any  `json:"Value"`
		}
		if code := o.Get("/dicom-web/studies/"+seg.StudyInstanceUID+"/series", &series); code != http.StatusOK {
			t.Fatalf("%s: QIDO-RS series: HTTP %d", c.name, code)
		}
		found := false
		for _, s := range series {
			uid, mod := s["0020000E"], s["00080060"]
			if len(uid.Value) == 1 && uid.Value[0] == seg.SeriesInstanceUID {
				found = true
				if len(mod.Value) != 1 || mod.Value[0] != "SEG" {
					t.Errorf("%s: series Modality = %v, want SEG", c.name, mod.Value)
				}
			}
		}
		if !found {
			t.Fatalf("%s: QIDO-RS does not list the SEG series %s (%d series)", c.name, seg.SeriesInstanceUID, len(series))
		}
		var instances []map[string]any
		o.Get("/dicom-web/studies/"+seg.StudyInstanceUID+"/series/"+seg.SeriesInstanceUID+"/instances", &instances)
		if len(instances) != 1 {
			t.Errorf("%s: %d instances after storing twice, want 1", c.name, len(instances))
		}
		// Orthanc parsed the frames too.
		var all []string
		o.Get("/instances", &all)
		if len(all) == 0 || strings.Contains(fmt.Sprint(all), "error") {
			t.Errorf("%s: Orthanc /instances = %v", c.name, all)
		}
	}
}

// TestOrthancSTOWCompanions: the SEG, its measurement report and its
// overlay of a radiograph and of a CT series go to Orthanc through the
// DICOMweb sink, and QIDO-RS lists all three series in the source's study
// with their modalities (SEG, SR, OT).
func TestOrthancSTOWCompanions(t *testing.T) {
	o := testpeers.StartOrthanc(t)
	sink := orthancSink(t, o)
	ctx := context.Background()
	for _, c := range testCases(t) {
		seg, err := writer.EncodeSEG(c.src, c.input(), c.desc)
		if err != nil {
			t.Fatal(err)
		}
		sr, err := writer.EncodeSR(c.src, seg, c.ms, c.desc)
		if err != nil {
			t.Fatal(err)
		}
		ov, err := writer.EncodeOverlay(c.src, c.masks, c.desc)
		if err != nil {
			t.Fatal(err)
		}
		if err := PutSEG(ctx, sink, seg); err != nil {
			t.Fatalf("%s: STOW SEG: %v", c.name, err)
		}
		want := map[string]string{seg.SeriesInstanceUID: "SEG", sr.SeriesInstanceUID: "SR", ov.SeriesInstanceUID: "OT"}
		for _, obj := range []*writer.Object{sr, ov} {
			if err := sink.Put(ctx, obj.StudyInstanceUID, obj.SeriesInstanceUID, obj.SOPInstanceUID, obj.Data); err != nil {
				t.Fatalf("%s: STOW %s: %v", c.name, obj.SOPClassUID, err)
			}
		}
		var series []map[string]struct {
			VR    string `json:"vr"`
			Value []any  `json:"Value"`
		}
		if code := o.Get("/dicom-web/studies/"+c.src.StudyInstanceUID+"/series", &series); code != http.StatusOK {
			t.Fatalf("%s: QIDO-RS series: HTTP %d", c.name, code)
		}
		got := map[string]string{}
		for _, s := range series {
			uid, mod := s["0020000E"], s["00080060"]
			if len(uid.Value) == 1 && len(mod.Value) == 1 {
				got[fmt.Sprint(uid.Value[0])] = fmt.Sprint(mod.Value[0])
			}
		}
		for uid, mod := range want {
			if got[uid] != mod {
				t.Errorf("%s: QIDO-RS lists series %s with modality %q, want %q (listed: %v)", c.name, uid, got[uid], mod, got)
			}
		}
	}
}

// orthancSink is a DICOMweb sink storing into Orthanc o.
func orthancSink(t *testing.T, o *testpeers.Orthanc) *DICOMwebSink {
	t.Helper()
	sink, err := NewDICOMwebSink(DICOMwebConfig{
		BaseURL: o.Base + "/dicom-web", Username: o.User, Password: o.Pass,
		Timeout: 20 * time.Second, MaxAttempts: 2, InitialBackoff: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return sink
}
