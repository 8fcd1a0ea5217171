package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"tmcad/internal/testpeers"
)

// uploadToOrthanc stores the series' files in Orthanc, as a modality
// would have sent them to the PACS.
func uploadToOrthanc(t *testing.T, o *testpeers.Orthanc, s exampleSeries) {
	t.Helper()
	for _, f := range s.paths() {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		o.Upload(f, b)
	}
}

// TestPullFromOrthanc: the example series are in the PACS (Orthanc) and
// nowhere else. `tmcad run` with [source.dicomweb] polls Orthanc for CR
// series (QIDO-RS, two per page), retrieves them (WADO-RS), segments them
// with their reports and stores each SEG back in Orthanc (STOW-RS); the CT
// series, outside the polled modalities, reach tmcad only through
// `tmcad reprocess --study`, which fetches the study. Orthanc ends with one
// SEG per source series.
func TestPullFromOrthanc(t *testing.T) {
	o := testpeers.StartOrthanc(t)
	var cr, ct []exampleSeries
	for _, s := range examples {
		uploadToOrthanc(t, o, s)
		if s.Modality == "CR" {
			cr = append(cr, s)
		} else {
			ct = append(ct, s)
		}
	}
	if len(cr) < 3 || len(ct) == 0 {
		t.Fatalf("the examples have %d CR and %d other series; the test needs 3 CR (more than one QIDO page) and one more", len(cr), len(ct))
	}

	e := newEnv(t)
	e.cfg.ArchiveKind = "dicomweb"
	e.cfg.ArchiveURL = o.Base + "/dicom-web"
	e.cfg.ArchiveUser, e.cfg.ArchivePassword = o.User, o.Pass
	e.cfg.Extra = fmt.Sprintf("\n[source.dicomweb]\nenabled = true\nurl = %q\nusername = %q\npassword = %q\nmodalities = [\"CR\"]\nsince = \"1900-01-01\"\npoll_every = \"2s\"\npage_size = 2\ntimeout = \"10s\"\n",
		o.Base+"/dicom-web", o.User, o.Pass)
	for _, s := range examples {
		e.dropReport(s)
	}
	p := e.start()

	stored := func(want []exampleSeries) func() bool {
		return func() bool {
			for _, s := range want {
				if len(p.matching(func(l logLine) bool {
					return l.str("message") == "SEG stored" && l.str("series_uid") == s.SeriesUID
				})) == 0 {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, 180*time.Second, "a SEG stored for every CR series polled from Orthanc", stored(cr))
	for _, s := range ct {
		if n := len(p.matching(seriesMsg(msgStable, s.SeriesUID))); n != 0 {
			t.Fatalf("series %s (%s) became stable before it was fetched: it was polled although its modality is not", s.SeriesUID, s.Modality)
		}
	}

	fetched := map[string]bool{}
	for _, s := range ct {
		if fetched[s.StudyUID] {
			continue
		}
		fetched[s.StudyUID] = true
		if out := e.reprocess("--study", s.StudyUID); !strings.Contains(out, "fetched from the PACS") {
			t.Errorf("tmcad reprocess --study %s said %q, want that it fetched the study from the PACS", s.StudyUID, strings.TrimSpace(out))
		}
	}
	waitFor(t, 180*time.Second, "a SEG stored for every CT series fetched with reprocess --study", stored(ct))
	waitFor(t, 20*time.Second, "the outbox emptied once Orthanc confirmed the stores", func() bool { return e.outboxSEGs() == 0 })

	referenced := map[string]int{}
	studies := map[string]bool{}
	for _, s := range examples {
		if studies[s.StudyUID] {
			continue
		}
		studies[s.StudyUID] = true
		for uid := range segSeries(t, o, s.StudyUID) {
			for _, src := range referencedSeries(t, o, s.StudyUID, uid) {
				referenced[src]++
			}
		}
	}
	for _, s := range examples {
		if referenced[s.SeriesUID] != 1 {
			t.Errorf("series %s (%s) is referenced by %d SEG series in Orthanc, want 1", s.SeriesUID, s.Modality, referenced[s.SeriesUID])
		}
	}
	e.checkMetrics(map[string]float64{`tmcad_segs_stored_total`: float64(len(examples))})
	p.stop()
}
