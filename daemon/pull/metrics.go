package pull

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the puller's Prometheus counters. They carry no UIDs. A
// Metrics is a prometheus.Collector: register it on the registry that
// serves /metrics.
type Metrics struct {
	// SeriesFetched counts series retrieved completely (and recorded).
	SeriesFetched prometheus.Counter
	// InstancesFetched counts instances written into the drop folder.
	InstancesFetched prometheus.Counter
	// InstancesSkipped counts instances of fetched series that the drop
	// folder already had, not written again (a series fetched again after
	// a restart, or because it grew).
	InstancesSkipped prometheus.Counter
	// PollErrors counts polls that failed, and series that could not be
	// fetched.
	PollErrors prometheus.Counter
	// LastCompletePoll is the Unix time of the last complete poll.
	LastCompletePoll prometheus.Gauge
}

// NewMetrics returns unregistered counters.
func NewMetrics() *Metrics {
	return &Metrics{
		SeriesFetched: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tmcad_pull_series_fetched_total",
			Help: "Series retrieved completely from the PACS over DICOMweb.",
		}),
		InstancesFetched: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tmcad_pull_instances_fetched_total",
			Help: "Instances retrieved over DICOMweb and written into the drop folder.",
		}),
		InstancesSkipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tmcad_pull_instances_skipped_total",
			Help: "Instances of series fetched over DICOMweb that the drop folder already had (not written again).",
		}),
		PollErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tmcad_pull_errors_total",
			Help: "DICOMweb polls that failed, and series that could not be fetched.",
		}),
		LastCompletePoll: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tmcad_pull_last_complete_poll_timestamp_seconds",
			Help: "Unix time at which the last complete DICOMweb poll ended.",
		}),
	}
}

func (m *Metrics) all() []prometheus.Collector {
	return []prometheus.Collector{m.SeriesFetched, m.InstancesFetched, m.InstancesSkipped, m.PollErrors, m.LastCompletePoll}
}

// Describe sends the descriptions of every metric.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.all() {
		c.Describe(ch)
	}
}

// Collect sends the current value of every metric.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.all() {
		c.Collect(ch)
	}
}
