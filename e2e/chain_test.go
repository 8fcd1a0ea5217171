package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"tmcad/internal/testpeers"
)

// TestChainReceiverToOrthanc runs the whole hospital chain in one piece:
// storescu sends every example series to the shipped receiver, tmcad
// segments them, and the outbox stores each SEG in Orthanc over its DICOM
// port (archive kind "dimse"); Orthanc then lists exactly one SEG series
// per source series, referencing it, and the outbox is empty.
func TestChainReceiverToOrthanc(t *testing.T) {
	o := testpeers.StartOrthanc(t)
	e := newEnv(t)
	e.cfg.ArchiveKind = "dimse"
	e.cfg.ArchiveExtra = fmt.Sprintf("called_ae = %q\ncalling_ae = \"TMCAD\"\nhost = \"127.0.0.1\"\nport = %d\ntimeout = \"20s\"\n", o.AET, o.DICOMPort)
	p := e.start()
	r := startReceiver(t, e.cfg.DICOMDir)
	dropAllWithReports(e, p, func(s exampleSeries) { storeSCU(t, r.port, s.paths()...) })

	stored := func() int {
		return len(p.matching(func(l logLine) bool {
			return l.str("message") == "SEG stored" && strings.HasPrefix(l.str("archive"), "dimse:"+o.AET+"@")
		}))
	}
	waitFor(t, 180*time.Second, "a SEG stored in Orthanc for every example series", func() bool { return stored() >= len(examples) })
	waitFor(t, 20*time.Second, "the outbox emptied once Orthanc confirmed the stores", func() bool { return e.outboxSEGs() == 0 })
	if n := stored(); n != len(examples) {
		t.Errorf("%d SEGs stored, want one per example series (%d)", n, len(examples))
	}

	studies := map[string]bool{}
	for _, s := range examples {
		studies[s.StudyUID] = true
	}
	referenced := map[string]int{}
	for study := range studies {
		for uid, insts := range segSeries(t, o, study) {
			if len(insts) != 1 {
				t.Errorf("study %s: SEG series %s has %d instances in Orthanc, want 1", study, uid, len(insts))
			}
			for _, src := range referencedSeries(t, o, study, uid) {
				referenced[src]++
			}
		}
	}
	for _, s := range examples {
		if referenced[s.SeriesUID] != 1 {
			t.Errorf("series %s is referenced by %d SEG series in Orthanc, want 1", s.SeriesUID, referenced[s.SeriesUID])
		}
	}
	if len(referenced) != len(examples) {
		t.Errorf("Orthanc's SEGs reference %d series, want the %d example series", len(referenced), len(examples))
	}
	r.checkStagingEmpty(t)
	p.stop()
}

// referencedSeries reads, through WADO-RS metadata, the source series a
// SEG series in Orthanc references (Referenced Series Sequence).
func referencedSeries(t *testing.T, o *testpeers.Orthanc, study, series string) []string {
	t.Helper()
	var meta []map[string]json.RawMessage
	if code := o.Get("/dicom-web/studies/"+study+"/series/"+series+"/metadata", &meta); code != http.StatusOK {
		t.Fatalf("WADO-RS metadata of SEG series %s: HTTP %d", series, code)
	}
	var out []string
	for _, inst := range meta {
		var seq struct {
			Value []dicomJSON `json:"Value"`
		}
		if raw, ok := inst["00081115"]; ok {
			if err := json.Unmarshal(raw, &seq); err != nil {
				t.Fatalf("SEG series %s: Referenced Series Sequence: %v", series, err)
			}
		}
		for _, item := range seq.Value {
			if uid := item.str("0020000E"); uid != "" {
				out = append(out, uid)
			}
		}
	}
	return out
}
