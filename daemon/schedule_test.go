package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tmcad/config"
)

// TestEveryIsEpochAligned: "@every D" fires at multiples of D since the
// epoch, whenever it is asked, so that an export window defined with it
// can be open (robfig's own @every is relative to the time asked and
// would never open).
func TestEveryIsEpochAligned(t *testing.T) {
	s, err := parseSchedule("@every 20s", "")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC) // a multiple of 20s
	for _, c := range []struct{ at, want time.Duration }{
		{0, 20 * time.Second},
		{time.Nanosecond, 20 * time.Second},
		{19 * time.Second, 20 * time.Second},
		{20 * time.Second, 40 * time.Second},
		{59*time.Second + 999*time.Millisecond, 60 * time.Second},
	} {
		if got := s.Next(base.Add(c.at)); !got.Equal(base.Add(c.want)) {
			t.Errorf("Next(base+%v) = base+%v, want base+%v", c.at, got.Sub(base), c.want)
		}
	}
	// With a time zone, @every stays aligned to UTC multiples.
	if _, err := parseSchedule("@every 1h", "Europe/Berlin"); err != nil {
		t.Fatalf("@every with a time zone: %v", err)
	}
}

// TestExportWindowEvery: schedule.export = "@every 20s" with a 5s window
// is open for the first 5 s of every 20 s and closed otherwise.
func TestExportWindowEvery(t *testing.T) {
	cfg := config.Default()
	cfg.Schedule.Export = "@every 20s"
	cfg.Schedule.ExportWindow = config.D(5 * time.Second)
	w, err := newExportWindow(cfg)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC)
	for _, c := range []struct {
		at   time.Duration
		open bool
	}{
		{0, true}, {4 * time.Second, true}, {4999 * time.Millisecond, true},
		{5 * time.Second, false}, {12 * time.Second, false}, {19999 * time.Millisecond, false},
		{20 * time.Second, true}, {24 * time.Second, true}, {25 * time.Second, false},
	} {
		if got := w.open(base.Add(c.at)); got != c.open {
			t.Errorf("open(base+%v) = %v, want %v", c.at, got, c.open)
		}
	}
	if got := w.nextOpen(base.Add(7 * time.Second)); !got.Equal(base.Add(20 * time.Second)) {
		t.Errorf("nextOpen(base+7s) = base+%v, want base+20s", got.Sub(base))
	}
	if got := w.nextOpen(base.Add(3 * time.Second)); !got.Equal(base.Add(3 * time.Second)) {
		t.Errorf("nextOpen inside the window = base+%v, want now", got.Sub(base))
	}
}

// TestExportWindowCron: a daily cron window opens at its time for its length.
func TestExportWindowCron(t *testing.T) {
	cfg := config.Default()
	cfg.Schedule.Export = "0 2 * * *"
	cfg.Schedule.ExportWindow = config.D(3 * time.Hour)
	cfg.Schedule.Timezone = "UTC"
	w, err := newExportWindow(cfg)
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		h    float64
		open bool
	}{{1.5, false}, {2, true}, {4.9, true}, {5, false}, {23, false}} {
		at := day.Add(time.Duration(c.h * float64(time.Hour)))
		if got := w.open(at); got != c.open {
			t.Errorf("open(%s) = %v, want %v", at.Format("15:04"), got, c.open)
		}
	}
}

// TestStateDirLock: a second lock on the same state_dir fails with
// ErrStateDirLocked and names the holder; after release it succeeds.
func TestStateDirLock(t *testing.T) {
	dir := t.TempDir()
	a, err := lockStateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockStateDir(dir)
	if !errors.Is(err, ErrStateDirLocked) {
		t.Fatalf("second lock: %v, want ErrStateDirLocked", err)
	}
	if !strings.Contains(err.Error(), filepath.Join(dir, LockName)) || !strings.Contains(err.Error(), "pid ") {
		t.Errorf("error does not name the lock file and holder: %v", err)
	}
	if err := a.release(); err != nil {
		t.Fatal(err)
	}
	b, err := lockStateDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	defer b.release()
	if _, err := os.Stat(filepath.Join(dir, LockName)); err != nil {
		t.Fatal(err)
	}
}

// TestDaemonRefusesLockedStateDir: New fails clearly while another daemon
// holds the state_dir, and the drain timeout comes from queue.drain_timeout.
func TestDaemonRefusesLockedStateDir(t *testing.T) {
	cfg := testConfig(t)
	cfg.Queue.DrainTimeout = config.D(7 * time.Second)
	d, stop := runDaemon(t, cfg, newFakeProcessor(), &fakeSink{puts: map[string]int{}})
	if d.opts.DrainTimeout != 2*time.Second {
		t.Errorf("Options.DrainTimeout given explicitly = %v, want it kept (2s)", d.opts.DrainTimeout)
	}
	_, err := New(t.Context(), Options{Config: cfg, Processor: newFakeProcessor(), Sink: &fakeSink{puts: map[string]int{}}})
	if !errors.Is(err, ErrStateDirLocked) {
		t.Fatalf("second daemon on the same state_dir: %v, want ErrStateDirLocked", err)
	}
	stop()
	d2, err := New(t.Context(), Options{Config: cfg, Processor: newFakeProcessor(), Sink: &fakeSink{puts: map[string]int{}}})
	if err != nil {
		t.Fatalf("daemon after the first stopped: %v", err)
	}
	defer d2.Close()
	if d2.opts.DrainTimeout != 7*time.Second {
		t.Errorf("DrainTimeout = %v, want queue.drain_timeout (7s)", d2.opts.DrainTimeout)
	}
}

// A job the queue shows running on this node but that no worker of it
// works is handed back only when found so at two sweeps in a row.
func TestJobTrackerLost(t *testing.T) {
	var tr jobTracker
	done := tr.start(1)
	if got := tr.lost([]int64{1, 2}); len(got) != 0 {
		t.Fatalf("first sweep: %v, want none", got)
	}
	if got := tr.lost([]int64{1, 2, 3}); len(got) != 1 || got[0] != 2 {
		t.Fatalf("second sweep: %v, want [2]", got)
	}
	done()
	if got := tr.lost([]int64{1, 3}); len(got) != 1 || got[0] != 3 {
		t.Fatalf("third sweep: %v, want [3] (1 was worked at the last sweep)", got)
	}
}
