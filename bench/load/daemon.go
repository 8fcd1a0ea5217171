package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// daemonConf is what the harness sets in the daemon's configuration.
type daemonConf struct {
	StateDir, DICOMDir, ReportsDir, ArchiveDir string
	ModelDir                                   string
	HTTPListen                                 string
	StableAfter, SizeStableFor                 string
	Workers, BatchSize                         int
	IntraOpThreads, ConcurrentRuns             int
	DatabaseURL                                string
}

// render returns the configuration as TOML: JSON log lines, a filesystem
// archive, export at once, inputs kept, no nightly reprocessing.
func (c daemonConf) render() string {
	q := strconv.Quote
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir = %s\n\n[log]\nlevel = \"info\"\nformat = \"json\"\n\n", q(c.StateDir))
	fmt.Fprintf(&b, "[model]\ndir = %s\nbatch_size = %d\nintra_op_threads = %d\nconcurrent_runs = %d\n\n", q(c.ModelDir), c.BatchSize, c.IntraOpThreads, c.ConcurrentRuns)
	fmt.Fprintf(&b, "[watch]\ndicom_dir = %s\nreports_dir = %s\nstable_after = %s\nsize_stable_for = %s\nrescan_every = \"5m\"\n\n",
		q(c.DICOMDir), q(c.ReportsDir), q(c.StableAfter), q(c.SizeStableFor))
	b.WriteString("[reports]\nwait = \"1h\"\n\n")
	fmt.Fprintf(&b, "[archive]\nkind = \"filesystem\"\ndir = %s\n\n", q(c.ArchiveDir))
	fmt.Fprintf(&b, "[queue]\nworkers = %d\nmax_attempts = 3\ndrain_timeout = \"10s\"\n", c.Workers)
	if c.DatabaseURL != "" {
		fmt.Fprintf(&b, "database_url = %s\n", q(c.DatabaseURL))
	}
	b.WriteString("\n[schedule]\nexport = \"immediate\"\nreprocess = \"\"\n\n[retention]\ninputs = \"keep\"\n\n")
	fmt.Fprintf(&b, "[http]\nlisten = %s\n", q(c.HTTPListen))
	return b.String()
}

// logEvent is one daemon log line the harness keeps, stamped with the
// time the harness read it (the daemon's own "time" field has whole
// seconds only).
type logEvent struct {
	At        time.Time
	Message   string
	Level     string
	SeriesUID string
	JobID     int64
	Inference float64
	SEGSOPUID string
	Frames    int
	Raw       string
}

// daemon is a running `tmcad run`.
type daemon struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	waitErr error

	mu     sync.Mutex
	events []logEvent
	notify chan struct{}
}

// kept lists the log messages the harness records (every warning and error
// is kept too).
var kept = map[string]bool{
	"tmcad ready":   true,
	"series stable": true,
	"SEG made; waiting in the outbox for export": true,
	"SEG stored": true,
	// Logged at warn: an instance catalogued once its series was queued
	// (the SEG leaves it out).
	lateInstance:    true,
	"tmcad stopped": true,
}

// lateInstance is the daemon's message for an instance catalogued after
// its series was judged stable and queued.
const lateInstance = "instance arrived after its series was queued; it is catalogued but not in the SEG (use tmcad reprocess --series)"

// startDaemon writes the configuration and starts bin run --config in repo
// (where third_party/onnxruntime is found); its whole log goes to logPath.
func startDaemon(bin, repo, cfgPath, logPath string, cfg daemonConf) (*daemon, error) {
	if err := os.WriteFile(cfgPath, []byte(cfg.render()), 0o600); err != nil {
		return nil, fmt.Errorf("daemon configuration: %w", err)
	}
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Dir = repo
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NOTIFY_SOCKET=") && !strings.HasPrefix(kv, "WATCHDOG_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	cmd.Stdout = io.Discard
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("daemon log: %w", err)
	}
	d := &daemon{cmd: cmd, logPath: logPath, done: make(chan struct{}), notify: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s run: %w", bin, err)
	}
	go func() {
		defer logf.Close()
		w := bufio.NewWriterSize(logf, 1<<20)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
		for sc.Scan() {
			at := time.Now()
			line := sc.Text()
			w.WriteString(line)
			w.WriteByte('\n')
			var f struct {
				Message   string  `json:"message"`
				Level     string  `json:"level"`
				SeriesUID string  `json:"series_uid"`
				JobID     int64   `json:"job_id"`
				Inference float64 `json:"inference_s"`
				SEGSOPUID string  `json:"seg_sop_uid"`
				Frames    int     `json:"frames"`
			}
			if json.Unmarshal([]byte(line), &f) != nil {
				continue
			}
			if !kept[f.Message] && f.Level != "warn" && f.Level != "error" && f.Level != "fatal" {
				continue
			}
			ev := logEvent{At: at, Message: f.Message, Level: f.Level, SeriesUID: f.SeriesUID, JobID: f.JobID, Inference: f.Inference, SEGSOPUID: f.SEGSOPUID, Frames: f.Frames}
			if f.Level != "info" {
				ev.Raw = line
			}
			d.mu.Lock()
			d.events = append(d.events, ev)
			close(d.notify)
			d.notify = make(chan struct{})
			d.mu.Unlock()
		}
		w.Flush()
		d.waitErr = cmd.Wait()
		close(d.done)
	}()
	return d, nil
}

// Pid is the daemon's process ID.
func (d *daemon) Pid() int { return d.cmd.Process.Pid }

// wait blocks until cond holds over the events so far, the daemon exits,
// or the time is up; it reports whether cond held.
func (d *daemon) wait(within time.Duration, cond func([]logEvent) bool) bool {
	deadline := time.After(within)
	for {
		d.mu.Lock()
		ok := cond(d.events)
		ch := d.notify
		d.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-d.done:
			d.mu.Lock()
			defer d.mu.Unlock()
			return cond(d.events)
		case <-deadline:
			return false
		}
	}
}

// snapshot returns the events so far.
func (d *daemon) snapshot() []logEvent {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]logEvent(nil), d.events...)
}

// stop sends SIGTERM and waits for the exit (SIGKILL after a minute).
func (d *daemon) stop() error {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(time.Minute):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
	if d.waitErr != nil {
		return fmt.Errorf("tmcad run exited: %w", d.waitErr)
	}
	return nil
}

// sample is one reading of the daemon's state, once a second.
type sample struct {
	T          float64            `json:"t"` // seconds since the first arrival
	RSSKiB     int64              `json:"rss_kib"`
	HWMKiB     int64              `json:"hwm_kib"`
	CPUSeconds float64            `json:"cpu_s"` // user+system of the daemon so far
	Jobs       map[string]float64 `json:"jobs"`  // tmcad_jobs by state
	Stored     float64            `json:"segs_stored"`
	DICOMSeen  float64            `json:"dicom_seen"` // tmcad_files_seen_total{kind="dicom"}: instances catalogued
	Outbox     int                `json:"outbox"`     // SEGs made, not yet exported
	Load1      float64            `json:"load1"`
}

// procStatus reads VmRSS and VmHWM (KiB) of a process.
func procStatus(pid int) (rss, hwm int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			rss, _ = strconv.ParseInt(f[1], 10, 64)
		case "VmHWM:":
			hwm, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	return rss, hwm
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times on Linux.
const clockTicks = 100

// procCPU returns the user+system CPU seconds of a process.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	sy, _ := strconv.ParseFloat(f[12], 64)
	return (u + sy) / clockTicks
}

// loadAvg returns the 1-minute load average.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// scrape reads tmcad_jobs by state, tmcad_segs_stored_total and the DICOM
// files catalogued from /metrics (-1: not read).
func scrape(client *http.Client, url string) (jobs map[string]float64, stored, dicom float64) {
	jobs = map[string]float64{}
	stored, dicom = -1, -1
	resp, err := client.Get(url)
	if err != nil {
		return jobs, stored, dicom
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, `tmcad_jobs{state="`):
			rest := strings.TrimPrefix(l, `tmcad_jobs{state="`)
			i := strings.Index(rest, `"} `)
			if i < 0 {
				continue
			}
			v, _ := strconv.ParseFloat(strings.TrimSpace(rest[i+3:]), 64)
			jobs[rest[:i]] = v
		case strings.HasPrefix(l, "tmcad_segs_stored_total "):
			stored, _ = strconv.ParseFloat(strings.TrimPrefix(l, "tmcad_segs_stored_total "), 64)
		case strings.HasPrefix(l, `tmcad_files_seen_total{kind="dicom"} `):
			dicom, _ = strconv.ParseFloat(strings.TrimPrefix(l, `tmcad_files_seen_total{kind="dicom"} `), 64)
		}
	}
	return jobs, stored, dicom
}

// countFiles counts the entries of a folder (0 when it is missing).
func countFiles(dir string) int {
	es, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	return len(es)
}

// sampler reads the daemon's state every second until stop is closed.
type sampler struct {
	mu      sync.Mutex
	samples []sample
	stop    chan struct{}
	done    chan struct{}
}

// startSampler samples pid, /metrics at listen and the outbox folder, with
// times relative to t0 (the first arrival).
func startSampler(pid int, listen, outbox string, t0 time.Time) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 2 * time.Second}
	url := "http://" + listen + "/metrics"
	go func() {
		defer close(s.done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		take := func() {
			now := time.Now()
			rss, hwm := procStatus(pid)
			jobs, stored, dicom := scrape(client, url)
			sm := sample{T: now.Sub(t0).Seconds(), RSSKiB: rss, HWMKiB: hwm, CPUSeconds: procCPU(pid), Jobs: jobs, Stored: stored, DICOMSeen: dicom,
				Outbox: countFiles(outbox), Load1: loadAvg()}
			s.mu.Lock()
			s.samples = append(s.samples, sm)
			s.mu.Unlock()
		}
		for {
			take()
			select {
			case <-s.stop:
				take() // the state at the end of the run
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// finish stops sampling and returns the samples.
func (s *sampler) finish() []sample {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples
}

// outboxDir is where the daemon keeps SEGs before export.
func outboxDir(state string) string { return filepath.Join(state, "outbox") }
