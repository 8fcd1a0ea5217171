package pull

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"tmcad/internal/testpeers"
)

// TestPollPagesModalitiesAndDates: QIDO-RS results span several pages
// (page size 3, eight series of the two modalities asked for); every
// instance of them arrives in the drop folder once, readable by dicomio,
// in explicit VR little endian, while a series of another modality and
// one dated before the look-back window stay on the PACS. A second poll,
// and a new poller on the same state folder, fetch nothing again.
func TestPollPagesModalitiesAndDates(t *testing.T) {
	o := testpeers.StartOrthanc(t)
	cr, ct := crSource(t), ctSources(t)
	var want []instance
	for i := range 7 {
		want = append(want, series(t, []source{cr}, "pages-study", "cr-"+string(rune('a'+i)), 0, 1, today(), "CR")...)
	}
	want = append(want, series(t, ct, "pages-ct", "ct", 0, 5, daysAgo(2), "CT")...)
	upload(t, o, want...)
	upload(t, o, series(t, []source{cr}, "pages-mr", "mr", 0, 1, today(), "MR")...)
	upload(t, o, series(t, ct, "pages-old", "old", 0, 2, daysAgo(30), "CT")...)

	e := newEnv(t)
	rec := &recorder{}
	opts := e.options(o)
	opts.Transport = rec
	p := e.puller(t, opts)
	res, err := p.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Series != 8 || res.Instances != 12 || res.Skipped != 0 || res.Failed != 0 {
		t.Errorf("first poll: %+v, want 8 series, 12 instances", res)
	}
	e.checkDrop(t, want)
	for _, off := range []string{"offset=0", "offset=3", "offset=6"} {
		if rec.count("/dicom-web/series?", "Modality=CR", "limit=3", off) == 0 {
			t.Errorf("no QIDO-RS page with %s for CR; requests: %v", off, rec.urls)
		}
	}
	if rec.count("/dicom-web/series?", "StudyDate="+daysAgo(7)+"-") == 0 {
		t.Errorf("no QIDO-RS search from StudyDate %s; requests: %v", daysAgo(7), rec.urls)
	}

	res, err = p.Poll(context.Background())
	if err != nil || res.Series != 0 || res.Instances != 0 || res.Skipped != 0 {
		t.Errorf("second poll: %+v, %v; want nothing fetched", res, err)
	}
	before := rec.count("/studies/")
	p2 := e.puller(t, opts)
	res, err = p2.Poll(context.Background())
	if err != nil || res.Series != 0 || res.Instances != 0 || res.Skipped != 0 {
		t.Errorf("poll of a new poller on the same state: %+v, %v; want nothing fetched", res, err)
	}
	if n := rec.count("/studies/"); n != before {
		t.Errorf("the new poller retrieved %d times although the state says everything was fetched", n-before)
	}
	e.checkDrop(t, want)
	e.checkNoPHI(t, cr, ct[0])
}

// TestPollSurvivesOrthancRestart: Orthanc is stopped in the middle of a
// poll (after the second of several series, with more pages to come); the
// poller retries until it is back and finishes the poll with every
// instance delivered once.
func TestPollSurvivesOrthancRestart(t *testing.T) {
	o := testpeers.StartOrthanc(t)
	cr, ct := crSource(t), ctSources(t)
	var want []instance
	for i := range 5 {
		want = append(want, series(t, []source{cr}, "restart", "cr-"+string(rune('a'+i)), 0, 1, today(), "CR")...)
	}
	want = append(want, series(t, ct, "restart-ct", "ct", 0, len(ct), today(), "CT")...)
	upload(t, o, want...)

	e := newEnv(t)
	opts := e.options(o)
	opts.PageSize = 2
	stopped, restarts, recorded := false, 0, 0
	opts.OnRetry = func(attempt int, wait time.Duration, err error) {
		if stopped {
			o.Start()
			stopped = false
			restarts++
		}
	}
	p := e.puller(t, opts)
	p.afterSeries = func(seriesRef) {
		recorded++
		if recorded == 2 {
			o.Stop()
			stopped = true
		}
	}
	res, err := p.Poll(context.Background())
	if err != nil {
		t.Fatalf("poll across the restart: %v", err)
	}
	if restarts != 1 {
		t.Errorf("Orthanc restarted %d times, want 1 (the poller did not retry?)", restarts)
	}
	if res.Series != 6 || res.Instances != len(want) || res.Skipped != 0 {
		t.Errorf("poll: %+v, want 6 series, %d instances", res, len(want))
	}
	e.checkDrop(t, want)
	if !strings.Contains(e.log.String(), "trying again") {
		t.Errorf("the retry was not logged:\n%s", e.log.String())
	}
}

// TestPollResumesAfterStop: a poll cut short (the daemon stopping after
// two series) leaves a state from which a new poller fetches the rest,
// retrieving none of the recorded series again.
func TestPollResumesAfterStop(t *testing.T) {
	o := testpeers.StartOrthanc(t)
	cr := crSource(t)
	var want []instance
	for i := range 5 {
		want = append(want, series(t, []source{cr}, "resume", "cr-"+string(rune('a'+i)), 0, 1, today(), "CR")...)
	}
	upload(t, o, want...)

	e := newEnv(t)
	opts := e.options(o)
	opts.PageSize = 2
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := e.puller(t, opts)
	n := 0
	p.afterSeries = func(seriesRef) {
		if n++; n == 2 {
			cancel()
		}
	}
	if _, err := p.Poll(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cut poll: %v, want context.Canceled", err)
	}
	rec := &recorder{}
	opts.Transport = rec
	res, err := e.puller(t, opts).Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Series != 3 || res.Instances != 3 || res.Skipped != 0 {
		t.Errorf("resumed poll: %+v, want the 3 series left", res)
	}
	if n := rec.count("/studies/"); n != 3 {
		t.Errorf("the resumed poll made %d WADO-RS retrievals, want 3", n)
	}
	e.checkDrop(t, want)
}

// TestGrownSeriesFetchedAgain: a series that has more instances on the
// PACS than when it was fetched is fetched again, and only its new
// instances are retrieved and land in the drop folder.
func TestGrownSeriesFetchedAgain(t *testing.T) {
	o := testpeers.StartOrthanc(t)
	ct := ctSources(t)
	first := series(t, ct, "grow", "ct", 0, 3, today(), "CT")
	upload(t, o, first...)
	e := newEnv(t)
	rec := &recorder{}
	opts := e.options(o)
	opts.Transport = rec
	p := e.puller(t, opts)
	if res, err := p.Poll(context.Background()); err != nil || res.Instances != 3 {
		t.Fatalf("first poll: %+v, %v", res, err)
	}
	more := series(t, ct, "grow", "ct", 3, 2, today(), "CT")
	upload(t, o, more...)
	p = e.puller(t, opts)
	res, err := p.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Series != 1 || res.Instances != 2 || res.Skipped != 3 {
		t.Errorf("poll after growth: %+v, want 1 series, 2 new instances, 3 already there", res)
	}
	for _, in := range more {
		if rec.count("/instances/"+in.sop) != 1 {
			t.Errorf("new instance %s not retrieved alone", in.sop)
		}
	}
	for _, in := range first {
		if rec.count("/instances/"+in.sop) != 0 {
			t.Errorf("instance %s retrieved again", in.sop)
		}
	}
	e.checkDrop(t, append(first, more...))
	if res, err := p.Poll(context.Background()); err != nil || res.Series != 0 {
		t.Errorf("poll after the grown series was fetched: %+v, %v", res, err)
	}
}

// TestFetchStudy: a study outside the search window (never polled) is
// fetched whole, all of its series; fetching it again writes nothing; a
// study the PACS lacks is ErrNotFound; a malformed UID is refused.
func TestFetchStudy(t *testing.T) {
	o := testpeers.StartOrthanc(t)
	cr, ct := crSource(t), ctSources(t)
	want := append(series(t, ct, "fetch", "ct", 0, 4, "20190305", "CT"), series(t, []source{cr}, "fetch", "sr", 0, 1, "20190305", "OT")...)
	other := series(t, ct, "other", "ct", 0, 2, "20190305", "CT")
	upload(t, o, append(want, other...)...)
	if want[0].study != want[len(want)-1].study {
		t.Fatal("the fixture's series are not of one study")
	}
	e := newEnv(t)
	p := e.puller(t, e.options(o))
	res, err := p.FetchStudy(context.Background(), want[0].study)
	if err != nil {
		t.Fatal(err)
	}
	if res.Series != 2 || res.Instances != 5 || res.Skipped != 0 {
		t.Errorf("fetch: %+v, want 2 series, 5 instances", res)
	}
	e.checkDrop(t, want)
	res, err = p.FetchStudy(context.Background(), want[0].study)
	if err != nil || res.Instances != 0 || res.Skipped != 5 {
		t.Errorf("second fetch: %+v, %v; want 5 already there", res, err)
	}
	e.checkDrop(t, want)
	if _, err := p.FetchStudy(context.Background(), "1.2.3.4.5.6.7"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "1.2.3.4.5.6.7") {
		t.Errorf("unknown study: %v, want ErrNotFound naming it", err)
	}
	if _, err := p.FetchStudy(context.Background(), "1.2/../x"); err == nil {
		t.Error("a malformed study UID was accepted")
	}
	if _, err := os.Stat(statePath(e.state, e.options(o).BaseURL)); err == nil {
		t.Error("FetchStudy wrote the poller's state")
	}
}

// TestErrorsAreClear: wrong credentials, a wrong base path and a closed
// port each fail with an error naming the request's path and the reason,
// never the password; bad options fail at New.
func TestErrorsAreClear(t *testing.T) {
	o := testpeers.StartOrthanc(t)
	e := newEnv(t)

	opts := e.options(o)
	opts.Password = "wrong-password-123"
	_, err := e.puller(t, opts).Poll(context.Background())
	if !errors.Is(err, ErrUnauthorized) {
		t.Errorf("wrong password: %v, want ErrUnauthorized", err)
	}
	for _, w := range []string{"QIDO-RS GET /dicom-web/series?", "401", "username"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("wrong password: error %v lacks %q", err, w)
		}
	}
	if err != nil && strings.Contains(err.Error(), "wrong-password-123") {
		t.Errorf("the error holds the password: %v", err)
	}

	opts = e.options(o)
	opts.BaseURL = o.Base + "/not-dicom-web"
	_, err = e.puller(t, opts).Poll(context.Background())
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "/not-dicom-web/series") {
		t.Errorf("wrong base path: %v, want ErrNotFound naming /not-dicom-web/series", err)
	}

	opts = e.options(o)
	opts.BaseURL = "http://127.0.0.1:" + strconv.Itoa(testpeers.FreePort(t)) + "/dicom-web"
	opts.MaxAttempts = 2
	_, err = e.puller(t, opts).Poll(context.Background())
	for _, w := range []string{"/dicom-web/series", "connection", "gave up after 2 attempts"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("closed port: error %v lacks %q", err, w)
		}
	}
	if got := strings.Count(e.log.String(), "trying again"); got != 1 {
		t.Errorf("%d retries logged, want 1", got)
	}

	for name, mutate := range map[string]func(*Options){
		"not http":           func(o *Options) { o.BaseURL = "ftp://pacs/dicom-web" },
		"credentials in url": func(o *Options) { o.BaseURL = "http://u:p@127.0.0.1/dicom-web" },
		"token and password": func(o *Options) { o.BearerToken = "t" },
		"staging in drop":    func(o *Options) { o.StagingDir = filepath.Join(o.DropDir, "staging") },
		"missing drop":       func(o *Options) { o.DropDir = filepath.Join(e.drop, "nope") },
		"bad modality":       func(o *Options) { o.Modalities = []string{"CT&x=1"} },
	} {
		opts := e.options(o)
		mutate(&opts)
		if _, err := New(opts); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "p@") {
			t.Errorf("%s: error shows credentials: %v", name, err)
		}
	}
}

// TestStagingOnAnotherFilesystemRefused: a staging folder on another
// filesystem than the drop folder (a rename would be a copy) is refused.
func TestStagingOnAnotherFilesystemRefused(t *testing.T) {
	e := newEnv(t)
	other, err := os.MkdirTemp("/dev/shm", "tmcad-pull-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(other) })
	if d1, _ := deviceOf(other); d1 == mustDevice(t, e.drop) {
		t.Fatalf("/dev/shm and %s are on one filesystem on this machine", e.drop)
	}
	_, err = newDropper(e.drop, other)
	if err == nil || !strings.Contains(err.Error(), "different filesystems") {
		t.Fatalf("staging on another filesystem: %v", err)
	}
}

func mustDevice(t *testing.T, p string) uint64 {
	d, err := deviceOf(p)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
