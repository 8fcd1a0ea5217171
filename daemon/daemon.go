// Package daemon is tmcad's long-running service: it catalogues what the
// watcher sends (daemon/watch, daemon/catalog), decides when a series is
// ready, queues one job per (series, model version) on River, runs the jobs
// through a pipeline.Processor, keeps SEGs in an outbox until the export
// window sends them to the archive (writer/archive), runs the schedules,
// serves /healthz, /readyz and /metrics, receives HL7 reports and talks to
// systemd.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"tmcad/config"
	"tmcad/daemon/catalog"
	"tmcad/daemon/pipeline"
	"tmcad/daemon/watch"
	"tmcad/reports"
	"tmcad/writer/archive"
)

// Options are what New needs.
type Options struct {
	// Config is the validated configuration.
	Config *config.Config
	// Processor runs one series (the model is already loaded).
	Processor pipeline.Processor
	// Sink is the archive.
	Sink archive.Sink
	// Logger for the daemon; series lines go through logging.Series.
	Logger zerolog.Logger
	// Reports are the report readers' options (reports.charset), for the
	// report files of the drop folders and the HL7 listener's messages.
	Reports reports.Options
	// Collectors are more metrics to serve on /metrics beside the
	// daemon's own (the DICOMweb door's counters).
	Collectors []prometheus.Collector
	// DrainTimeout bounds the graceful stop: running jobs get this long to
	// finish, then they are cancelled and handed back to the queue. Keep it
	// below the unit's TimeoutStopSec. Zero means queue.drain_timeout
	// (default 60s).
	DrainTimeout time.Duration
	// RetryBase is the first retry delay of a failed process job (doubling
	// up to 30 minutes). Default 10s.
	RetryBase time.Duration
	// PollInterval is how often the queue is polled for new jobs (SQLite
	// has no LISTEN/NOTIFY). Default 500ms.
	PollInterval time.Duration
}

// Daemon is tmcad's long-running service. New prepares it, Run runs it until
// its context is cancelled, Close releases what New opened.
type Daemon struct {
	opts   Options
	cfg    atomic.Pointer[config.Config]
	log    zerolog.Logger
	proc   pipeline.Processor
	model  pipeline.ModelInfo
	sink   archive.Sink
	reader *reports.Reader
	store  *catalog.Store
	lock   *stateLock
	// outboxLock holds this node's folder of a shared outbox
	// (archive.outbox_dir), so that two nodes of one name cannot share it.
	outboxLock *stateLock
	// jobs are the jobs this node works now (nodeLoop).
	jobs    jobTracker
	cat     *catalog.Catalog
	client  catalog.QueueClient
	metrics *metrics
	watcher *watch.Watcher
	now     func() time.Time

	ready    atomic.Bool
	httpAddr atomic.Value
	// reconsider asks the ready loop to judge skipped series again (the
	// selection rules changed on reload).
	reconsider atomic.Bool
	beatMu     sync.Mutex
	schedBeat  time.Time
	closeOnce  sync.Once

	// incomplete holds the files found truncated, by path, with when that
	// was first seen (watch.incomplete_wait).
	incompleteMu sync.Mutex
	incomplete   map[string]time.Time

	// reportKeys name report files without their (PHI) file names.
	reportKeys *catalog.ReportKeys

	// faults are why the daemon is not ready although it runs, by kind
	// (faultCatalog, faultArchive).
	faultMu sync.Mutex
	faults  map[string]string

	// gate pauses the ingest loop while the queue or the outbox is over
	// its limit (pressureLoop).
	gate ingestGate
}

// New opens the queue database (running River's and the catalog's
// migrations), builds the River client and the watcher. Nothing runs until
// Run.
func New(ctx context.Context, opts Options) (*Daemon, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	cfg := opts.Config
	// Every line says which node wrote it: nodes sharing a queue log to
	// one place.
	log := opts.Logger.With().Str("node", cfg.NodeName()).Logger()
	d := &Daemon{opts: opts, log: log, proc: opts.Processor, sink: opts.Sink, now: time.Now}
	d.cfg.Store(cfg)
	d.model = opts.Processor.Model()
	if d.model.Version == "" {
		return nil, errors.New("daemon: the processor's model has no version (manifest \"version\")")
	}
	rd, err := reports.NewReader(opts.Reports)
	if err != nil {
		return nil, fmt.Errorf("reports.charset: %w", err)
	}
	d.reader = rd
	for _, dir := range []string{cfg.StateDir, d.outboxDir(), cfg.QuarantineDir()} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("daemon: creating %s: %w", dir, err)
		}
	}
	lock, err := lockStateDir(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	d.lock = lock
	if cfg.Archive.OutboxDir != "" {
		ol, err := lockStateDir(d.outboxDir())
		if err != nil {
			lock.release()
			return nil, fmt.Errorf("archive.outbox_dir: node %q: another node of this name uses its outbox folder; give each node its own name (node): %w", cfg.NodeName(), err)
		}
		d.outboxLock = ol
	}
	if err := d.open(ctx, cfg); err != nil {
		d.outboxLock.release()
		lock.release()
		return nil, err
	}
	return d, nil
}

// check reports the first of the configuration, the processor and the
// sink that is missing.
func (o Options) check() error {
	if o.Config == nil {
		return errors.New("daemon: no configuration")
	}
	if o.Processor == nil {
		return errors.New("daemon: no processor (model not loaded)")
	}
	if o.Sink == nil {
		return errors.New("daemon: no archive sink")
	}
	return nil
}

// withDefaults fills in the durations left at zero.
func (o Options) withDefaults() Options {
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = o.Config.Queue.DrainTimeout.Duration
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 60 * time.Second
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 10 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 500 * time.Millisecond
	}
	return o
}

// open builds what the daemon holds under the state_dir lock: the metrics,
// the catalog, the watcher and the River client. On an error it closes
// what it opened; the caller releases the lock.
func (d *Daemon) open(ctx context.Context, cfg *config.Config) error {
	d.metrics = newMetrics()
	d.metrics.setModel(d.model)
	d.metrics.setNode(cfg.NodeName(), rolesString(cfg.Roles))
	for _, c := range d.opts.Collectors {
		if err := d.metrics.reg.Register(c); err != nil {
			return fmt.Errorf("daemon: metrics: %w", err)
		}
	}
	if err := d.openCatalog(ctx, cfg); err != nil {
		return err
	}
	var err error
	if cfg.Roles.Ingest {
		if d.watcher, err = d.newWatcher(cfg); err != nil {
			d.store.Close()
			return err
		}
	}
	if d.client, err = d.newQueueClient(cfg); err != nil {
		d.store.Close()
		return err
	}
	return nil
}

// openCatalog opens the queue database and the catalog on it, loads the
// report keys and points the metrics that read them at it.
func (d *Daemon) openCatalog(ctx context.Context, cfg *config.Config) error {
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	d.store = st
	d.cat = catalog.New(st, d.now)
	if d.reportKeys, err = catalog.LoadReportKeys(ctx, st); err != nil {
		st.Close()
		return err
	}
	d.metrics.jobs.s = st
	d.metrics.retrying.cat = d.cat
	return nil
}

// newWatcher watches the DICOM drop folder, and the reports folder when
// it is another one.
func (d *Daemon) newWatcher(cfg *config.Config) (*watch.Watcher, error) {
	roots := []string{cfg.Watch.DICOMDir}
	if cfg.Watch.ReportsDir != "" && cfg.Watch.ReportsDir != cfg.Watch.DICOMDir {
		roots = append(roots, cfg.Watch.ReportsDir)
	}
	return watch.New(watch.Options{
		Roots:         roots,
		SizeStableFor: cfg.Watch.SizeStableFor.Duration,
		RescanEvery:   cfg.Watch.RescanEvery.Duration,
		Logger:        d.log.With().Str("component", "watcher").Logger(),
	})
}

// newQueueClient builds the River client on the open store.
func (d *Daemon) newQueueClient(cfg *config.Config) (catalog.QueueClient, error) {
	rc, err := d.riverConfig(cfg)
	if err != nil {
		return nil, err
	}
	return d.store.QueueClient(rc)
}

// openStore opens the database the configuration names (state_dir,
// queue.database_url).
func openStore(ctx context.Context, cfg *config.Config) (*catalog.Store, error) {
	st, err := catalog.Open(ctx, catalog.Options{StateDir: cfg.StateDir, DatabaseURL: cfg.Queue.DatabaseURL.Value})
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	return st, nil
}

// config returns the current configuration (SIGHUP may replace it).
func (d *Daemon) config() *config.Config { return d.cfg.Load() }

// outboxDir is where the SEGs this node makes wait for the archive:
// state_dir/outbox, or the node's own folder in the shared
// archive.outbox_dir (each node sweeps only its own folder at start).
func (d *Daemon) outboxDir() string {
	cfg := d.config()
	if cfg.Archive.OutboxDir != "" {
		return filepath.Join(cfg.Archive.OutboxDir, cfg.NodeName())
	}
	return filepath.Join(cfg.StateDir, "outbox")
}

// riverConfig builds the River client configuration: workers, queues and
// the periodic jobs (which only the elected leader runs).
func (d *Daemon) riverConfig(cfg *config.Config) (*river.Config, error) {
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &processWorker{d: d}); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	if err := river.AddWorkerSafely(workers, &exportWorker{d: d}); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	if err := river.AddWorkerSafely(workers, &reprocessWorker{d: d}); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	if err := river.AddWorkerSafely(workers, &exportWindowWorker{d: d}); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	periodic, err := d.periodicJobs(cfg)
	if err != nil {
		return nil, err
	}
	return &river.Config{
		ID:                   clientID(cfg),
		Logger:               newSlog(d.log),
		JobTimeout:           -1,
		MaxAttempts:          cfg.Queue.MaxAttempts,
		FetchPollInterval:    d.opts.PollInterval,
		FetchCooldown:        50 * time.Millisecond,
		SoftStopTimeout:      d.opts.DrainTimeout,
		RescueStuckJobsAfter: 2 * time.Hour,
		PeriodicJobs:         periodic,
		Queues:               queuesFor(cfg),
		Workers:              workers,
	}, nil
}

// queuesFor are the queues a node works, by its roles. Every node works
// the maintenance queue (the schedules' jobs, which only touch the
// database), and so takes part in electing the leader that inserts them.
func queuesFor(cfg *config.Config) map[string]river.QueueConfig {
	q := map[string]river.QueueConfig{queueMaintenance: {MaxWorkers: 1}}
	if cfg.Roles.Process {
		q[queueProcess] = river.QueueConfig{MaxWorkers: cfg.Queue.Workers}
	}
	if cfg.Roles.Export {
		q[queueExport] = river.QueueConfig{MaxWorkers: 2}
	}
	return q
}

// Run runs the daemon until ctx is cancelled, then drains: it tells systemd
// STOPPING=1, stops watching, lets running jobs finish for DrainTimeout and
// hands the rest back to the queue.
func (d *Daemon) Run(ctx context.Context) error {
	cfg := d.config()
	n, err := d.store.RescueOrphans(ctx, clientID(cfg))
	if err != nil {
		return err
	}
	if n > 0 {
		d.log.Warn().Int64("jobs", n).Msg("jobs left running by an earlier crash are queued again")
	}
	if cfg.Queue.DatabaseURL.Value != "" && cfg.Archive.OutboxDir == "" {
		d.log.Warn().Msg("archive.outbox_dir is empty: the SEGs this node makes wait in its state_dir, where the export jobs other nodes on this queue take cannot read them; set it to a folder on shared storage (README \"Several nodes\")")
	}
	if n, err := d.sweepOutbox(ctx); err != nil {
		return err
	} else if n > 0 {
		d.log.Warn().Int("files", n).Msg("outbox files an earlier crash left unrecorded were removed; their jobs make their SEGs again")
	}
	// River runs on its own context: cancelling ctx must not hard-stop it,
	// the drain below stops it softly.
	if err := d.client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("queue: starting: %w", err)
	}
	if err := d.requeueQueued(ctx); err != nil {
		d.log.Error().Err(err).Msg("re-queueing series after restart")
	}

	loopCtx, stopLoops := context.WithCancel(ctx)
	defer stopLoops()
	g, gctx := errgroup.WithContext(loopCtx)
	if cfg.Roles.Ingest {
		g.Go(func() error { return d.watcher.Run(gctx) })
		g.Go(func() error { return d.ingestLoop(gctx) })
		g.Go(func() error { return d.readyLoop(gctx) })
		g.Go(func() error { return d.pressureLoop(gctx) })
	} else {
		d.heartbeat()
	}
	g.Go(func() error { return d.nodeLoop(gctx) })
	srv, err := d.startHTTP()
	if err != nil {
		stopLoops()
		_ = g.Wait()
		_ = d.client.StopAndCancel(context.Background())
		return err
	}
	var hl7 *hl7Server
	if cfg.Roles.Ingest {
		hl7, err = d.startHL7()
	}
	if err != nil {
		if srv != nil {
			srv.close()
		}
		stopLoops()
		_ = g.Wait()
		_ = d.client.StopAndCancel(context.Background())
		return err
	}

	d.ready.Store(true)
	status := "STATUS=watching " + cfg.Watch.DICOMDir
	if !cfg.Roles.Ingest {
		status = "STATUS=working the queue (" + rolesString(cfg.Roles) + ")"
	}
	notify(d.log, "READY=1\n"+status)
	g.Go(func() error { return d.watchdogLoop(gctx) })
	d.log.Info().Str("model_version", d.model.Version).Str("execution_provider", d.model.ExecutionProvider).
		Str("queue", d.store.Kind()).Str("archive", d.sink.Name()).Str("roles", rolesString(cfg.Roles)).Msg("tmcad ready")

	<-gctx.Done()
	loopErr := context.Cause(gctx)
	if ctx.Err() != nil {
		loopErr = nil
	}
	d.ready.Store(false)
	if hl7 != nil {
		hl7.close()
	}
	notify(d.log, "STOPPING=1\nSTATUS=draining jobs")
	d.log.Info().Dur("drain_timeout", d.opts.DrainTimeout).Msg("stopping: no new jobs; running jobs finish or are handed back")
	stopLoops()
	_ = g.Wait()

	stopCtx, cancel := context.WithTimeout(context.Background(), d.opts.DrainTimeout+10*time.Second)
	defer cancel()
	if err := d.client.Stop(stopCtx); err != nil {
		d.log.Warn().Err(err).Msg("queue did not stop cleanly; running jobs are handed back at next start")
	}
	if srv != nil {
		srv.close()
	}
	d.log.Info().Msg("tmcad stopped")
	if loopErr != nil && !errors.Is(loopErr, context.Canceled) {
		return loopErr
	}
	return nil
}

// Ready reports whether the daemon is ready (model loaded, queue up).
func (d *Daemon) Ready() bool { return d.ready.Load() }

// Close closes the database and releases the state_dir lock; call it after
// Run returned. The Processor and the Sink belong to the caller.
func (d *Daemon) Close() error {
	var err error
	d.closeOnce.Do(func() {
		err = errors.Join(d.store.Close(), d.outboxLock.release(), d.lock.release())
	})
	return err
}

// heartbeat records that the ready loop went round.
func (d *Daemon) heartbeat() {
	d.beatMu.Lock()
	d.schedBeat = time.Now()
	d.beatMu.Unlock()
}

// alive reports whether the daemon's loops went round within within.
func (d *Daemon) alive(within time.Duration) bool {
	d.beatMu.Lock()
	sb := d.schedBeat
	d.beatMu.Unlock()
	now := time.Now()
	if d.watcher == nil {
		return now.Sub(sb) < within
	}
	return now.Sub(sb) < within && now.Sub(d.watcher.Heartbeat()) < within
}
