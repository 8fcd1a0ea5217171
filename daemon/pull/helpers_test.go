package pull

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"tmcad/dicomio"
	"tmcad/internal/testpeers"
)

// source is an example DICOM file the tests derive instances from.
type source struct {
	data []byte
	h    dicomio.Header
}

func loadSource(t *testing.T, path string) source {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := dicomio.ReadHeader(path)
	if err != nil {
		t.Fatal(err)
	}
	return source{data: b, h: h}
}

// crSource is a one-instance CR example; ctSources are the slices of a CT
// example series.
func crSource(t *testing.T) source {
	return loadSource(t, "../../examples/dicom/study-001/series-1/0001.dcm")
}

func ctSources(t *testing.T) []source {
	t.Helper()
	paths, _ := filepath.Glob("../../examples/dicom/study-005/series-1/*.dcm")
	sort.Strings(paths)
	if len(paths) < 5 {
		t.Fatalf("the CT example has %d files", len(paths))
	}
	out := make([]source, len(paths))
	for i, p := range paths {
		out[i] = loadSource(t, p)
	}
	return out
}

// uidLike returns a UID as long as orig, its last 12 digits replaced by
// digits derived from key: the file keeps its element lengths.
func uidLike(t *testing.T, orig, key string) string {
	t.Helper()
	last := orig[strings.LastIndexByte(orig, '.')+1:]
	if len(last) < 14 {
		t.Fatalf("UID %s is too short to derive from", orig)
	}
	sum := sha256.Sum256([]byte(key))
	d := new(big.Int).SetBytes(sum[:]).String()
	return orig[:len(orig)-12] + d[len(d)-12:]
}

// setElement overwrites the value of the first element with the given
// tag and VR (explicit VR little endian, short form) with v, which must
// have the value's length.
func setElement(t *testing.T, data []byte, group, elem uint16, vr, v string) {
	t.Helper()
	var pat [8]byte
	binary.LittleEndian.PutUint16(pat[0:], group)
	binary.LittleEndian.PutUint16(pat[2:], elem)
	copy(pat[4:], vr)
	binary.LittleEndian.PutUint16(pat[6:], uint16(len(v)))
	i := bytes.Index(data, pat[:])
	if i < 0 {
		t.Fatalf("element (%04X,%04X) %s of length %d not found", group, elem, vr, len(v))
	}
	copy(data[i+8:], v)
}

// instance is one derived instance.
type instance struct {
	study, series, sop string
	data               []byte
}

// derive makes instance i of series seriesKey in study studyKey from src,
// with StudyDate (and SeriesDate) date and Modality modality (2
// characters).
func derive(t *testing.T, src source, studyKey, seriesKey string, i int, date, modality string) instance {
	t.Helper()
	in := instance{
		// The study UID depends on the key and length only, so that series
		// derived from different examples can share a study.
		study:  uidLike(t, "2.25."+strings.Repeat("1", len(src.h.StudyInstanceUID)-5), studyKey),
		series: uidLike(t, src.h.SeriesInstanceUID, studyKey+"/"+seriesKey),
		sop:    uidLike(t, src.h.SOPInstanceUID, fmt.Sprintf("%s/%s/%d", studyKey, seriesKey, i)),
	}
	b := bytes.Clone(src.data)
	b = bytes.ReplaceAll(b, []byte(src.h.StudyInstanceUID), []byte(in.study))
	b = bytes.ReplaceAll(b, []byte(src.h.SeriesInstanceUID), []byte(in.series))
	b = bytes.ReplaceAll(b, []byte(src.h.SOPInstanceUID), []byte(in.sop))
	if f := src.h.FrameOfReferenceUID; f != "" {
		b = bytes.ReplaceAll(b, []byte(f), []byte(uidLike(t, f, studyKey+"/"+seriesKey)))
	}
	setElement(t, b, 0x0008, 0x0020, "DA", date)
	setElement(t, b, 0x0008, 0x0021, "DA", date)
	setElement(t, b, 0x0008, 0x0060, "CS", modality)
	in.data = b
	return in
}

// series derives n instances of one series, cycling through srcs.
func series(t *testing.T, srcs []source, studyKey, seriesKey string, from, n int, date, modality string) []instance {
	out := make([]instance, 0, n)
	for i := from; i < from+n; i++ {
		out = append(out, derive(t, srcs[i%len(srcs)], studyKey, seriesKey, i, date, modality))
	}
	return out
}

// upload stores instances in Orthanc through its REST API.
func upload(t *testing.T, o *testpeers.Orthanc, ins ...instance) {
	t.Helper()
	for _, in := range ins {
		o.Upload("instance "+in.sop, in.data)
	}
}

// env is one puller's folders and log.
type env struct {
	drop, staging, state string
	log                  *syncBuffer
}

func newEnv(t *testing.T) *env {
	root := t.TempDir()
	e := &env{drop: filepath.Join(root, "dicom"), staging: filepath.Join(root, "pull-staging"), state: filepath.Join(root, "state"), log: &syncBuffer{}}
	if err := os.MkdirAll(e.drop, 0o755); err != nil {
		t.Fatal(err)
	}
	return e
}

// options returns Options for Orthanc o with fast retries.
func (e *env) options(o *testpeers.Orthanc) Options {
	return Options{
		BaseURL:        o.Base + "/dicom-web",
		Username:       o.User,
		Password:       o.Pass,
		Timeout:        20 * time.Second,
		MaxAttempts:    100,
		InitialBackoff: 20 * time.Millisecond,
		MaxBackoff:     200 * time.Millisecond,
		Modalities:     []string{"CR", "CT"},
		LookBackDays:   7,
		PageSize:       3,
		DropDir:        e.drop,
		StagingDir:     e.staging,
		StateDir:       e.state,
		Logger:         zerolog.New(e.log),
	}
}

func (e *env) puller(t *testing.T, opts Options) *Puller {
	t.Helper()
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// checkDrop fails unless the drop folder holds exactly want (each once,
// each readable by dicomio, named by its SOP Instance UID), and the
// staging folder is empty.
func (e *env) checkDrop(t *testing.T, want []instance) {
	t.Helper()
	entries, err := os.ReadDir(e.drop)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, de := range entries {
		p := filepath.Join(e.drop, de.Name())
		h, err := dicomio.ReadHeader(p)
		if err != nil {
			t.Errorf("drop folder file %s: %v", de.Name(), err)
			continue
		}
		if got[h.SOPInstanceUID] {
			t.Errorf("SOP %s is in the drop folder twice", h.SOPInstanceUID)
		}
		got[h.SOPInstanceUID] = true
		if de.Name() != h.SOPInstanceUID+".dcm" {
			t.Errorf("file %s holds SOP %s", de.Name(), h.SOPInstanceUID)
		}
		if h.TransferSyntaxUID != "1.2.840.10008.1.2.1" {
			t.Errorf("file %s has transfer syntax %s, want explicit VR little endian", de.Name(), h.TransferSyntaxUID)
		}
	}
	wantSet := map[string]bool{}
	for _, in := range want {
		wantSet[in.sop] = true
		if !got[in.sop] {
			t.Errorf("SOP %s (series %s) is missing from the drop folder", in.sop, in.series)
		}
	}
	for sop := range got {
		if !wantSet[sop] {
			t.Errorf("SOP %s is in the drop folder but was not expected", sop)
		}
	}
	if left, _ := os.ReadDir(e.staging); len(left) != 0 {
		t.Errorf("the staging folder holds %d files", len(left))
	}
}

// checkNoPHI fails when the log holds the sources' patient attributes.
func (e *env) checkNoPHI(t *testing.T, srcs ...source) {
	t.Helper()
	log := e.log.String()
	for _, s := range srcs {
		for _, v := range []string{s.h.PatientID, patientName(s.data)} {
			if strings.TrimSpace(v) != "" && strings.Contains(log, v) {
				t.Errorf("the log holds a patient attribute %q", v)
			}
		}
	}
}

// patientName reads PatientName (0010,0010) from explicit VR data.
func patientName(data []byte) string {
	i := bytes.Index(data, []byte{0x10, 0x00, 0x10, 0x00, 'P', 'N'})
	if i < 0 || i+8 > len(data) {
		return ""
	}
	n := int(binary.LittleEndian.Uint16(data[i+6:]))
	if i+8+n > len(data) {
		return ""
	}
	return strings.TrimSpace(string(data[i+8 : i+8+n]))
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// recorder is an HTTP transport that records the requests' URLs.
type recorder struct {
	mu   sync.Mutex
	urls []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.urls = append(r.urls, req.URL.RequestURI())
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func (r *recorder) count(substrs ...string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
outer:
	for _, u := range r.urls {
		for _, s := range substrs {
			if !strings.Contains(u, s) {
				continue outer
			}
		}
		n++
	}
	return n
}

func today() string { return time.Now().Format(dateLayout) }

func daysAgo(n int) string { return time.Now().AddDate(0, 0, -n).Format(dateLayout) }
