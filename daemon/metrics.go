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
	// node is 1 with this node's name and roles as labels.
	node *prometheus.GaugeVec
	jobs *jobsCollector
	// exportFailures counts failed export attempts by class (transient:
	// tried again; permanent: the archive refused the object).
	exportFailures *prometheus.CounterVec
	retrying       *retryingCollector
	// hl7 are the HL7 listener's counters.
	hl7 *hl7Metrics
	// ingestPaused is 1 for the reason ingestion is paused for
	// (back-pressure), 0 otherwise.
	ingestPaused *prometheus.GaugeVec
}

// hl7Acks are the acknowledgement codes the HL7 listener answers with.
var hl7Acks = []string{"AA", "AE", "AR"}

// Reasons the HL7 listener refuses a message for (tmcad_hl7_rejected_total)
// or a connection for (tmcad_hl7_connections_refused_total).
const (
	hl7NoMSH         = "no_msh"
	hl7TooLarge      = "too_large"
	hl7MessageType   = "message_type"
	hl7Event         = "event"
	hl7Version       = "version"
	hl7ProcessingID  = "processing_id"
	hl7Parse         = "parse"
	hl7RefusedAddr   = "address"
	hl7RefusedMaxCon = "max_connections"
)

// hl7Metrics count what the HL7 MLLP listener received and answered. A
// hl7Metrics is a prometheus.Collector.
type hl7Metrics struct {
	// messages counts the messages answered, by acknowledgement code.
	messages *prometheus.CounterVec
	// rejected counts the messages refused for what they are (AE, AR),
	// by reason.
	rejected *prometheus.CounterVec
	// storeErrors counts accepted messages that could not be stored
	// (answered AR, so that the sender sends them again).
	storeErrors prometheus.Counter
	// refused counts connections closed unanswered, by reason.
	refused *prometheus.CounterVec
	// connections is the number of connections being served.
	connections prometheus.Gauge
}

// newHL7Metrics returns the HL7 listener's metrics, every label value
// present (0) from the start.
func newHL7Metrics() *hl7Metrics {
	m := &hl7Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tmcad_hl7_messages_total",
			Help: "HL7 messages answered by the MLLP listener, by acknowledgement code (AA stored, AE unreadable, AR refused or not stored).",
		}, []string{"ack"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tmcad_hl7_rejected_total",
			Help: "HL7 messages refused by the MLLP listener, by reason (no_msh, too_large, message_type, event, version, processing_id, parse).",
		}, []string{"reason"}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tmcad_hl7_store_errors_total",
			Help: "HL7 messages accepted but not stored in the reports folder (answered AR; the sender sends them again).",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tmcad_hl7_connections_refused_total",
			Help: "HL7 connections closed unanswered, by reason (address: not in hl7.allow; max_connections: hl7.max_connections reached).",
		}, []string{"reason"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tmcad_hl7_connections",
			Help: "HL7 connections being served.",
		}),
	}
	for _, a := range hl7Acks {
		m.messages.WithLabelValues(a)
	}
	for _, r := range []string{hl7NoMSH, hl7TooLarge, hl7MessageType, hl7Event, hl7Version, hl7ProcessingID, hl7Parse} {
		m.rejected.WithLabelValues(r)
	}
	for _, r := range []string{hl7RefusedAddr, hl7RefusedMaxCon} {
		m.refused.WithLabelValues(r)
	}
	return m
}

func (m *hl7Metrics) all() []prometheus.Collector {
	return []prometheus.Collector{m.messages, m.rejected, m.storeErrors, m.refused, m.connections}
}

// Describe sends the descriptions of every metric.
func (m *hl7Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.all() {
		c.Describe(ch)
	}
}

// Collect sends the current value of every metric.
func (m *hl7Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.all() {
		c.Collect(ch)
	}
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
		node: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tmcad_node_info",
			Help: "1, with this node's name (node, or the host name) and the roles it runs.",
		}, []string{"node", "roles"}),
		jobs: &jobsCollector{desc: prometheus.NewDesc("tmcad_jobs", "Process jobs in the queue by state.", []string{"state"}, nil)},
		exportFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tmcad_export_failures_total",
			Help: "Failed attempts to store an object in the archive, by class: transient (tried again without end) or permanent (the archive refused the object; the export failed).",
		}, []string{"class"}),
		retrying: &retryingCollector{desc: prometheus.NewDesc("tmcad_export_retrying",
			"SEGs in the outbox whose last export attempt failed for a reason that may pass (archive down, busy, unmounted, full); they are tried again. Alert when it stays above 0.", nil, nil)},
		hl7: newHL7Metrics(),
		ingestPaused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tmcad_ingest_paused",
			Help: "1 while ingestion is paused for the reason (queued_jobs: limits.max_queued_jobs reached; outbox: limits.max_outbox reached); new files wait in the drop folders.",
		}, []string{"reason"}),
	}
	for _, r := range pauseReasons {
		m.ingestPaused.WithLabelValues(r)
	}
	for _, c := range []pipeline.ErrorClass{pipeline.ClassTransient, pipeline.ClassPermanent} {
		m.exportFailures.WithLabelValues(c.String())
	}
	for _, k := range []string{"dicom", "report", "duplicate", "conflict", "unreadable", "ignored"} {
		m.filesSeen.WithLabelValues(k)
	}
	m.reg.MustRegister(m.filesSeen, m.seriesReady, m.seriesParked, m.inference, m.segsStored, m.errors, m.provider, m.node, m.jobs, m.exportFailures, m.retrying, m.hl7, m.ingestPaused,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// setModel sets the execution provider gauge.
func (m *metrics) setModel(mi pipeline.ModelInfo) {
	m.provider.Reset()
	m.provider.WithLabelValues(mi.ExecutionProvider, mi.Name, mi.Version).Set(1)
}

// setNode sets the node gauge.
func (m *metrics) setNode(name, roles string) {
	m.node.Reset()
	m.node.WithLabelValues(name, roles).Set(1)
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
