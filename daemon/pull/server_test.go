package pull

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestOddServer: a DICOMweb server that ignores limit and offset (every
// page is the whole list), answers the first search 503, refuses the
// transfer-syntax parameter with 406, and cuts its first retrieval of a
// series short inside a part. The poll ends, retrieves each series in
// full, and every instance lands once.
func TestOddServer(t *testing.T) {
	cr, ct := crSource(t), ctSources(t)
	all := map[string][]instance{}
	var order []string
	add := func(ins []instance) {
		all[ins[0].series] = ins
		order = append(order, ins[0].series)
	}
	add(series(t, []source{cr}, "odd", "a", 0, 1, today(), "CR"))
	add(series(t, ct, "odd", "b", 0, 3, today(), "CR"))
	add(series(t, []source{cr}, "odd", "c", 0, 1, today(), "CR"))

	var mu sync.Mutex
	searches, cutDone := 0, false
	var accepts []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.URL.Path == "/dicom-web/series":
			searches++
			if searches == 1 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			var items []map[string]any
			for _, uid := range order {
				ins := all[uid]
				items = append(items, map[string]any{
					tagStudyUID:        map[string]any{"vr": "UI", "Value": []string{ins[0].study}},
					tagSeriesUID:       map[string]any{"vr": "UI", "Value": []string{uid}},
					tagStudyDate:       map[string]any{"vr": "DA", "Value": []string{today()}},
					tagModality:        map[string]any{"vr": "CS", "Value": []string{"CR"}},
					tagSeriesInstances: map[string]any{"vr": "IS", "Value": []int{len(ins)}},
				})
			}
			w.Header().Set("Content-Type", "application/dicom+json")
			_ = json.NewEncoder(w).Encode(items)
		case strings.HasPrefix(r.URL.Path, "/dicom-web/studies/"):
			accept := r.Header.Get("Accept")
			accepts = append(accepts, accept)
			if strings.Contains(accept, "transfer-syntax=") {
				w.WriteHeader(http.StatusNotAcceptable)
				return
			}
			uid := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
			ins := all[uid]
			if ins == nil {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			const boundary = "odd-boundary"
			w.Header().Set("Content-Type", `multipart/related; type="application/dicom"; boundary=`+boundary)
			for i, in := range ins {
				fmt.Fprintf(w, "--%s\r\nContent-Type: application/dicom\r\n\r\n", boundary)
				if len(ins) > 1 && i == 1 && !cutDone {
					// Half of the second part, then the connection drops.
					cutDone = true
					_, _ = w.Write(in.data[:len(in.data)/2])
					w.(http.Flusher).Flush()
					panic(http.ErrAbortHandler)
				}
				_, _ = w.Write(in.data)
				fmt.Fprint(w, "\r\n")
			}
			fmt.Fprintf(w, "--%s--\r\n", boundary)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()

	e := newEnv(t)
	opts := Options{
		BaseURL: srv.URL + "/dicom-web", Timeout: 10 * time.Second, MaxAttempts: 5,
		InitialBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		Modalities: []string{"CR"}, PageSize: 2, LookBackDays: 7,
		DropDir: e.drop, StagingDir: e.staging, StateDir: e.state, Logger: zerolog.New(e.log),
	}
	p := e.puller(t, opts)
	res, err := p.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Series != 3 || res.Instances != 5 || res.Skipped != 1 {
		t.Errorf("poll: %+v, want 3 series, 5 instances, 1 received again after the cut", res)
	}
	var want []instance
	for _, uid := range order {
		want = append(want, all[uid]...)
	}
	e.checkDrop(t, want)
	mu.Lock()
	if !cutDone {
		t.Error("the retrieval was never cut")
	}
	if searches != 3 {
		t.Errorf("%d searches, want 3 (the 503, a page, a page bringing nothing new)", searches)
	}
	mu.Unlock()
	if !strings.Contains(e.log.String(), "refused to transcode") {
		t.Errorf("the fallback to the default transfer syntax was not logged:\n%s", e.log.String())
	}
	if got := testPoll(t, p); got.Series != 0 || got.Instances != 0 {
		t.Errorf("second poll: %+v, want nothing", got)
	}
}

func testPoll(t *testing.T, p *Puller) Result {
	t.Helper()
	res, err := p.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestSearchWindow: the earliest StudyDate searched is look_back_days
// before the last complete poll (or before now, on the first), never
// before since; since alone on the first poll.
func TestSearchWindow(t *testing.T) {
	now := time.Date(2025, 3, 10, 14, 0, 0, 0, time.Local)
	since := func(s string) time.Time {
		v, _ := time.ParseInLocation(time.DateOnly, s, time.Local)
		return v
	}
	cases := []struct {
		since     time.Time
		watermark string
		want      string
	}{
		{time.Time{}, "", "20250303"},
		{since("2025-01-01"), "", "20250101"},
		{time.Time{}, "20250301", "20250222"},
		{since("2025-01-01"), "20250310", "20250303"},
		{since("2025-03-08"), "20250310", "20250308"},
	}
	for _, c := range cases {
		p := &Puller{opts: Options{Since: c.since, LookBackDays: 7}, state: &state{Watermark: c.watermark}}
		if got := p.from(now); got != c.want {
			t.Errorf("since %v, watermark %q: from %s, want %s", c.since, c.watermark, got, c.want)
		}
	}
	s := &state{Series: map[string]seriesState{"a": {Date: "20250302"}, "b": {Date: "20250303"}, "c": {}}}
	s.prune("20250303")
	if _, ok := s.Series["b"]; len(s.Series) != 1 || !ok {
		t.Errorf("prune kept %v, want only b", s.Series)
	}
}
