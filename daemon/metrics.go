package daemon

import (
	"context"
	"time"

	"tmcad/daemon/catalog"
	"tmcad/daemon/pipeline"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the Prometheus metrics served on /metrics. They carry UIDs
// nowhere: labels are kinds, states and reasons.
type metrics struct {
	reg          *prometheus.Registry
	filesSeen    *prometheus.CounterVec
	seriesReady  prometheus.Counter
	seriesParked prometheus.Counter
	inference    prometheus.Histogram
	segsStored   prometheus.Counter
	errors       *prometheus.CounterVec
	provider     *prometheus.GaugeVec
	jobs         *jobsCollector
	// exportFailures counts failed export attempts by class (transient:
	// tried again; permanent: the archive refused the object).
	exportFailures *prometheus.CounterVec
	retrying       *retryingCollector
}

// newMetrics registers every metric on a registry of its own.
func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		filesSeen: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tmcad_files_seen_total",
			Help: "Files read from the drop folders, by kind (dicom, report, duplicate, conflict, unreadable, ignored).",
		}, []string{"kind"}),
		seriesReady: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tmcad_series_ready_total",
			Help: "Series that became stable (no new instance for watch.stable_after) and were selected.",
		}),
		seriesParked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tmcad_series_parked_total",
			Help: "Series parked as awaiting_report after reports.wait.",
		}),
		inference: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tmcad_inference_seconds",
			Help:    "Time spent in the model per series.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 16),
		}),
		segsStored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tmcad_segs_stored_total",
			Help: "SEG objects confirmed stored in the archive.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tmcad_errors_total",
			Help: "Errors by reason (decode, limits, archive, conflict, unreadable, ...).",
		}, []string{"reason"}),
		provider: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tmcad_execution_provider",
			Help: "1 for the ONNX Runtime execution provider in use, with the model's name and version.",
		}, []string{"provider", "model", "version"}),
		jobs: &jobsCollector{desc: prometheus.NewDesc("tmcad_jobs", "Process jobs in the queue by state.", []string{"state"}, nil)},
		exportFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tmcad_export_failures_total",
			Help: "Failed attempts to store an object in the archive, by class: transient (tried again without end) or permanent (the archive refused the object; the export failed).",
		}, []string{"class"}),
		retrying: &retryingCollector{desc: prometheus.NewDesc("tmcad_export_retrying",
			"SEGs in the outbox whose last export attempt failed for a reason that may pass (archive down, busy, unmounted, full); they are tried again. Alert when it stays above 0.", nil, nil)},
	}
	for _, c := range []pipeline.ErrorClass{pipeline.ClassTransient, pipeline.ClassPermanent} {
		m.exportFailures.WithLabelValues(c.String())
	}
	for _, k := range []string{"dicom", "report", "duplicate", "conflict", "unreadable", "ignored"} {
		m.filesSeen.WithLabelValues(k)
	}
	m.reg.MustRegister(m.filesSeen, m.seriesReady, m.seriesParked, m.inference, m.segsStored, m.errors, m.provider, m.jobs, m.exportFailures, m.retrying,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// setModel sets the execution provider gauge.
func (m *metrics) setModel(mi pipeline.ModelInfo) {
	m.provider.Reset()
	m.provider.WithLabelValues(mi.ExecutionProvider, mi.Name, mi.Version).Set(1)
}

// jobStates are River's job states, all exported (0 when none).
var jobStates = []string{"available", "cancelled", "completed", "discarded", "pending", "retryable", "running", "scheduled"}

// jobsCollector counts process jobs by state at scrape time.
type jobsCollector struct {
	desc *prometheus.Desc
	s    *catalog.Store
}

// Describe sends the one descriptor.
func (c *jobsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect queries the queue.
func (c *jobsCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]float64{}
	if c.s != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if byState, err := c.s.JobCounts(ctx, kindProcess); err == nil {
			for k, v := range byState {
				counts[k] = float64(v)
			}
		}
	}
	for _, st := range jobStates {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, counts[st], st)
	}
}

// retryingCollector exports tmcad_export_retrying at scrape time, from the
// catalogue, so that it is right after a restart too.
type retryingCollector struct {
	desc *prometheus.Desc
	cat  *catalog.Catalog
}

// Describe sends the one descriptor.
func (c *retryingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect queries the catalogue.
func (c *retryingCollector) Collect(ch chan<- prometheus.Metric) {
	n := 0
	if c.cat != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if v, err := c.cat.ExportRetrying(ctx, pipeline.ClassTransient.String()); err == nil {
			n = v
		}
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n))
}
