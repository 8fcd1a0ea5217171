package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// dist is a few quantiles of a set of durations in seconds.
type dist struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// quantiles returns the distribution of vs (nearest rank).
func quantiles(vs []float64) dist {
	if len(vs) == 0 {
		return dist{}
	}
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return dist{N: len(s), P50: q(0.50), P95: q(0.95), P99: q(0.99), Max: s[len(s)-1]}
}

// summary is what the table shows of a run.
type summary struct {
	Done, Failed int
	CR, CT       int
	// WallS runs from the first arrival to the last SEG stored.
	WallS          float64
	StudiesPerHour float64
	// SustainedPerHour counts SEGs from the first "series stable" to the
	// last SEG stored: the processing rate, without the first series'
	// wait for stability.
	SustainedPerHour float64
	// ServicePerHour is queue.workers × 3600 / the mean process job run
	// (River attempted → finalized): the rate the workers could keep up
	// with were they never idle, waiting for series to become stable.
	ServicePerHour float64
	ArrivalS       float64 // first to last arrival
	// Latency from the last instance renamed in to the SEG stored, split
	// at "series stable".
	Latency, Waiting, AfterStable dist
	AfterStableCR, AfterStableCT  dist
	// Queue timings: stable → process job created; created → started
	// (includes waiting for a busy worker); process run; SEG made →
	// export job started (the hop through the queue with the export
	// workers idle); export run; SEG made → "SEG stored".
	StableToEnqueue, EnqueueToStart, ProcessRun dist
	MadeToExportStart, ExportRun, MadeToStored  dist
	Inference                                   dist
	PeakRSSMiB                                  float64
	DaemonCPUS                                  float64 // CPU seconds of the daemon during the run
	MaxQueued, MaxOutbox                        float64
	LoadMean                                    float64
	// Incomplete counts series whose SEG was made from fewer frames than
	// the series has (judged stable before all its instances were
	// catalogued); LateInstances their instances left out.
	Incomplete, LateInstances int
	// IngestPerS is the fastest rate instances were catalogued at over any
	// 5 s of samples; IngestS the time until the last was catalogued.
	IngestPerS, IngestS float64
}

// summarize computes the summary of a run.
func summarize(r *result) summary {
	var s summary
	s.setRates(s.countSeries(r.Series))
	s.setLatencies(r.Series, r.Config.Workers)
	s.setSamples(r.Samples)
	s.setIngest(r)
	return s
}

// seriesExtent is when a run's series first and last arrived, first became
// stable and last had their SEG stored, in seconds.
type seriesExtent struct {
	first, lastArr, firstStable, last float64
}

// countSeries counts the series by kind and outcome into s, and returns
// their extent (first is 0 when none arrived).
func (s *summary) countSeries(series []seriesTiming) seriesExtent {
	e := seriesExtent{first: math.Inf(1), firstStable: math.Inf(1)}
	for _, t := range series {
		if t.Kind == "CT" {
			s.CT++
		} else {
			s.CR++
		}
		if t.ArriveFirst != nil {
			e.first = math.Min(e.first, *t.ArriveFirst)
		}
		if t.ArriveLast != nil {
			e.lastArr = math.Max(e.lastArr, *t.ArriveLast)
		}
		if t.Failed {
			s.Failed++
		}
		if t.Stable != nil {
			e.firstStable = math.Min(e.firstStable, *t.Stable)
		}
		s.LateInstances += t.LateInstances
		if t.Made != nil && t.SEGFrames < t.Files && t.Kind == "CT" {
			s.Incomplete++
		}
		if t.Stored != nil {
			s.Done++
			e.last = math.Max(e.last, *t.Stored)
		}
	}
	if math.IsInf(e.first, 1) {
		e.first = 0
	}
	return e
}

// setRates sets the arrival span, the wall time and the studies per hour
// (overall, and sustained from the first series stable) of the extent.
func (s *summary) setRates(e seriesExtent) {
	s.ArrivalS = e.lastArr - e.first
	s.WallS = e.last - e.first
	if s.WallS > 0 {
		s.StudiesPerHour = float64(s.Done) / s.WallS * 3600
	}
	if span := e.last - e.firstStable; s.Done > 1 && span > 0 {
		s.SustainedPerHour = float64(s.Done) / span * 3600
	}
}

// addSpan appends b − a to *to when both happened.
func addSpan(to *[]float64, a, b *float64) {
	if a != nil && b != nil {
		*to = append(*to, *b-*a)
	}
}

// setLatencies sets the latency and queue timing distributions of the
// series whose SEG was stored, and the workers' service rate from their
// process job runs.
func (s *summary) setLatencies(series []seriesTiming, workers int) {
	var lat, wait, after, afterCR, afterCT, se, es, pr, mes, er, ms, inf []float64
	for _, t := range series {
		if t.Stored == nil {
			continue
		}
		addSpan(&lat, t.ArriveLast, t.Stored)
		addSpan(&wait, t.ArriveLast, t.Stable)
		addSpan(&after, t.Stable, t.Stored)
		if t.Kind == "CT" {
			addSpan(&afterCT, t.Stable, t.Stored)
		} else {
			addSpan(&afterCR, t.Stable, t.Stored)
		}
		addSpan(&se, t.Stable, t.Enqueued)
		if t.Attempts <= 1 {
			addSpan(&es, t.Enqueued, t.Started)
		}
		addSpan(&pr, t.Started, t.ProcessDone)
		addSpan(&mes, t.Made, t.ExportStarted)
		addSpan(&er, t.ExportStarted, t.ExportDone)
		addSpan(&ms, t.Made, t.Stored)
		if t.InferenceS > 0 {
			inf = append(inf, t.InferenceS)
		}
	}
	s.Latency, s.Waiting, s.AfterStable = quantiles(lat), quantiles(wait), quantiles(after)
	s.AfterStableCR, s.AfterStableCT = quantiles(afterCR), quantiles(afterCT)
	s.StableToEnqueue, s.EnqueueToStart, s.ProcessRun = quantiles(se), quantiles(es), quantiles(pr)
	s.MadeToExportStart, s.ExportRun, s.MadeToStored = quantiles(mes), quantiles(er), quantiles(ms)
	s.Inference = quantiles(inf)
	if len(pr) > 0 {
		sum := 0.0
		for _, v := range pr {
			sum += v
		}
		s.ServicePerHour = float64(max(1, workers)) * 3600 / (sum / float64(len(pr)))
	}
}

// setSamples sets the peaks (RSS, jobs queued, SEGs in the outbox), the
// daemon's CPU seconds and the mean load average over the wall time from
// the per-second samples; setRates must have set WallS.
func (s *summary) setSamples(samples []sample) {
	var cpu0, cpu1 float64
	var loads []float64
	for i, sm := range samples {
		s.PeakRSSMiB = math.Max(s.PeakRSSMiB, float64(sm.HWMKiB)/1024)
		q := sm.Jobs["available"] + sm.Jobs["running"] + sm.Jobs["pending"] + sm.Jobs["scheduled"] + sm.Jobs["retryable"]
		s.MaxQueued = math.Max(s.MaxQueued, q)
		s.MaxOutbox = math.Max(s.MaxOutbox, float64(sm.Outbox))
		if i == 0 {
			cpu0 = sm.CPUSeconds
		}
		cpu1 = sm.CPUSeconds
		if sm.T <= s.WallS+1 {
			loads = append(loads, sm.Load1)
		}
	}
	s.DaemonCPUS = cpu1 - cpu0
	for _, l := range loads {
		s.LoadMean += l / float64(len(loads))
	}
}

// setIngest sets the fastest rate instances were catalogued at over any
// 5 s of samples, and when the last of the run's instances was.
func (s *summary) setIngest(r *result) {
	total := 0
	for _, t := range r.Series {
		total += t.Files
	}
	for i, sm := range r.Samples {
		for j := i + 1; j < len(r.Samples); j++ {
			if dt := r.Samples[j].T - sm.T; dt >= 5 {
				s.IngestPerS = math.Max(s.IngestPerS, (r.Samples[j].DICOMSeen-sm.DICOMSeen)/dt)
				break
			}
		}
		if s.IngestS == 0 && total > 0 && sm.DICOMSeen >= float64(total) {
			s.IngestS = sm.T
		}
	}
}

// ms formats seconds as milliseconds, or seconds when large.
func ms(v float64) string {
	if v >= 10 {
		return fmt.Sprintf("%.1f s", v)
	}
	return fmt.Sprintf("%.0f ms", v*1000)
}

// tri formats p50 / p95 / p99.
func tri(d dist) string {
	if d.N == 0 {
		return "–"
	}
	return ms(d.P50) + " / " + ms(d.P95) + " / " + ms(d.P99)
}

// duo formats p50 / p95.
func duo(d dist) string {
	if d.N == 0 {
		return "–"
	}
	return ms(d.P50) + " / " + ms(d.P95)
}

// tableHeader is the header of the runs table.
func tableHeader() string {
	return "| run | queue DB | arrival | series (CR + CT) | done | wall | studies/hour (first arrival → last SEG) | sustained (first stable → last SEG) | workers' service rate | last instance → SEG stored p50 / p95 / p99 | of which waiting for stable p50 / p95 | stable → SEG stored p50 / p95 / p99 (CR · CT p95) | peak RSS | daemon CPU (cores) | most jobs queued · SEGs in outbox | instances catalogued: all by · fastest 5 s | CT SEGs missing instances (instances late) | load avg (mean) |\n" +
		"|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
}

// tableRow is one run's row of the runs table.
func tableRow(r *result) string {
	s, c := r.Summary, r.Config
	arrival := "burst"
	if c.Mode == "steady" {
		arrival = fmt.Sprintf("steady, %.0f/h", c.Rate)
		if c.RateFrom != "" {
			arrival = fmt.Sprintf("steady, %.0f/h (%.0f%% of burst)", c.Rate, c.RateFraction*100)
		}
	}
	cores := 0.0
	if s.WallS > 0 {
		cores = s.DaemonCPUS / s.WallS
	}
	return fmt.Sprintf("| %s | %s | %s | %d + %d | %d%s | %.1f s | %.0f | **%.0f** | %.0f | %s | %s | %s (%s · %s) | %.0f MiB | %.2f | %.0f · %.0f | %.1f s · %.0f/s | %d (%d) | %.2f |\n",
		c.Name, c.DB, arrival, s.CR, s.CT, s.Done, failedNote(s), s.WallS, s.StudiesPerHour, s.SustainedPerHour, s.ServicePerHour,
		tri(s.Latency), duo(s.Waiting), tri(s.AfterStable), ms(s.AfterStableCR.P95), ms(s.AfterStableCT.P95),
		s.PeakRSSMiB, cores, s.MaxQueued, s.MaxOutbox, s.IngestS, s.IngestPerS, s.Incomplete, s.LateInstances, s.LoadMean)
}

// failedNote says how many series failed, if any.
func failedNote(s summary) string {
	if s.Failed == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d failed)", s.Failed)
}

// queueHeader is the header of the queue-cost table.
func queueHeader() string {
	return "| run | stable → job created p50 / p95 | job created → started p50 / p95 / p99 | job run p50 / p95 | model time (inference_s, summed over concurrent runs) p50 / p95 | SEG made → export started p50 / p95 / p99 | export run p50 / p95 | SEG made → SEG stored p50 / p95 |\n" +
		"|---|---|---|---|---|---|---|---|\n"
}

// queueRow is one run's row of the queue-cost table.
func queueRow(r *result) string {
	s := r.Summary
	return fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Config.Name,
		duo(s.StableToEnqueue), tri(s.EnqueueToStart), duo(s.ProcessRun), duo(s.Inference),
		tri(s.MadeToExportStart), duo(s.ExportRun), duo(s.MadeToStored))
}

// reportMain writes the "load" section of RESULTS.md from run JSONs and a
// plot per run.
func reportMain(args []string) error {
	fs := flag.NewFlagSet("load report", flag.ExitOnError)
	resultsMD := fs.String("results-md", "", "rewrite the section between <!-- load:begin --> and <!-- load:end --> of this file")
	pngDir := fs.String("png-dir", "bench", "folder of the plots (load-<run>.png)")
	python := fs.String("python", "/usr/bin/python3", "Python with matplotlib")
	intro := fs.String("intro", "", "text put before the tables (a file)")
	fs.Parse(args)
	if fs.NArg() == 0 {
		return fmt.Errorf("report: name the run JSON files")
	}
	var runs []*result
	for _, p := range fs.Args() {
		r, err := readResult(p)
		if err != nil {
			return err
		}
		r.Summary = summarize(r)
		runs = append(runs, r)
	}
	var pngs []string
	if *pngDir != "" {
		for i, r := range runs {
			png := filepath.Join(*pngDir, "load-"+r.Config.Name+".png")
			c := exec.Command(*python, "bench/load/plot.py", fs.Arg(i), png)
			if out, err := c.CombinedOutput(); err != nil {
				return fmt.Errorf("plotting %s: %w\n%s", fs.Arg(i), err, out)
			}
			pngs = append(pngs, png)
		}
	}
	var b strings.Builder
	b.WriteString("## load: the daemon end to end (`go run ./bench/load`)\n\n")
	if *intro != "" {
		t, err := os.ReadFile(*intro)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		b.Write(t)
		b.WriteString("\n")
	}
	b.WriteString(describeRuns(runs))
	b.WriteString("\n" + tableHeader())
	for _, r := range runs {
		b.WriteString(tableRow(r))
	}
	b.WriteString("\nThe queue's own cost per job (River's job rows: created, attempted, finalized; and the daemon's log lines as the harness read them):\n\n" + queueHeader())
	for _, r := range runs {
		b.WriteString(queueRow(r))
	}
	b.WriteString("\n" + goals(runs))
	if len(pngs) > 0 {
		b.WriteString("\nPlots (latency per series over its arrival time, split at \"series stable\"; jobs queued, SEGs in the outbox and RSS over time):\n\n")
		for _, p := range pngs {
			fmt.Fprintf(&b, "![%s](%s)\n", filepath.Base(p), strings.TrimPrefix(p, "bench/"))
		}
	}
	section := b.String()
	if *resultsMD == "" {
		fmt.Print(section)
		return nil
	}
	return replaceSection(*resultsMD, "load", section)
}

// describeRuns states the settings the runs share (or each run's).
func describeRuns(runs []*result) string {
	var b strings.Builder
	for _, r := range runs {
		c, h := r.Config, r.Host
		fmt.Fprintf(&b, "- `%s`: %s, %d series (CT fraction %.2f, CT %d slices of %d², CR from `tmca.dicom_writer`), reports %s their instances; "+
			"queue.workers = %d, model.batch_size = %d, model.intra_op_threads = %d, model.concurrent_runs = %d (0 = automatic), stable_after = %s, size_stable_for = %s, model `%s`; "+
			"%d CPUs, load average before %s, after %s; %d warning and %d error log lines.\n",
			c.Name, r.Started.Format("2006-01-02 15:04"), c.N, c.CTFraction, c.CTSlices, c.CTSize, c.Reports,
			c.Workers, c.BatchSize, c.IntraOpThreads, c.ConcurrentRuns, c.StableAfter, c.SizeStableFor, c.Model,
			h.CPUs, h.LoadBefore, h.LoadAfter, r.WarnCount, r.ErrCount)
	}
	return b.String()
}

// goals states the throughput, latency, memory and PostgreSQL goals as met
// or missed by these runs.
func goals(runs []*result) string {
	var b strings.Builder
	b.WriteString("Goals, as measured by these runs:\n\n")
	bursts := map[string]*result{}
	for _, r := range runs {
		s := r.Summary
		if s.Incomplete > 0 {
			fmt.Fprintf(&b, "- `%s`: %d CT SEGs were made from incomplete series (%d instances catalogued after their series was queued): not a measure of the goals.\n", r.Config.Name, s.Incomplete, s.LateInstances)
			continue
		}
		if r.Config.Mode == "burst" {
			if bursts[r.Config.DB] == nil {
				bursts[r.Config.DB] = r
			}
			fmt.Fprintf(&b, "- `%s`: ≥ 15,000 studies/hour sustained: %.0f, %s (%.0f counting the first series' wait for stability).", r.Config.Name, s.SustainedPerHour, verdict(s.SustainedPerHour >= 15000), s.StudiesPerHour)
			fmt.Fprintf(&b, " The workers' service rate (never idle): %.0f.", s.ServicePerHour)
		} else {
			fmt.Fprintf(&b, "- `%s`: p95 stable → SEG stored ≤ 5 s: %s, %s. Arrivals at %.0f/hour, SEGs stored at %.0f/hour (first arrival → last SEG), at most %.0f jobs queued or running.",
				r.Config.Name, ms(s.AfterStable.P95), verdict(s.AfterStable.N > 0 && s.AfterStable.P95 <= 5), r.Config.Rate, s.StudiesPerHour, s.MaxQueued)
		}
		fmt.Fprintf(&b, " Peak RSS < 1 GiB: %.0f MiB, %s.\n", s.PeakRSSMiB, verdict(s.PeakRSSMiB < 1024))
	}
	if sq, pg := bursts["sqlite"], bursts["postgres"]; sq != nil && pg != nil && sq.Summary.SustainedPerHour > 0 {
		ratio := pg.Summary.SustainedPerHour / sq.Summary.SustainedPerHour
		fmt.Fprintf(&b, "- PostgreSQL within 20%% of SQLite (burst, sustained studies/hour): PostgreSQL / SQLite = %.2f, %s.\n", ratio, verdict(ratio >= 0.8))
	}
	return b.String()
}

// verdict says whether a goal was met.
func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// replaceSection rewrites the text between <!-- name:begin --> and
// <!-- name:end --> of path (appending both markers when absent).
func replaceSection(path, name, section string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	begin, end := "<!-- "+name+":begin -->", "<!-- "+name+":end -->"
	text := string(b)
	block := begin + "\n" + section + end
	i, j := strings.Index(text, begin), strings.Index(text, end)
	if i >= 0 && j > i {
		text = text[:i] + block + text[j+len(end):]
	} else {
		text = strings.TrimRight(text, "\n") + "\n\n" + block + "\n"
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}
