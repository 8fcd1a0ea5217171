package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"tmcad/config"
	"tmcad/daemon"
	"tmcad/daemon/pipeline"
	"tmcad/logging"
)

func runRun(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", "--config FILE",
		"Runs the daemon: watches the drop folders, queues and processes series, exports SEGs,\nruns the schedules and serves /healthz, /readyz and /metrics. SIGTERM drains and stops;\nSIGHUP reloads the configuration where that is safe.", stderr)
	cfgPath := fs.String("config", "/etc/tmcad/tmcad.toml", "configuration file")
	logLevel := fs.String("log-level", "", "trace, debug, info, warn or error (overrides log.level)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	// SIGHUP is caught from the start: loading the model takes a while, and
	// a reload sent meanwhile (systemctl reload) must not kill the daemon
	// (Go's default for SIGHUP). It is applied once the daemon exists.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	cfg, err := loadDaemonConfig(*cfgPath, *logLevel)
	if err != nil {
		return err
	}
	log, err := logging.New(stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	// The DICOMweb door is built before the model loads, so that a bad
	// [source.dicomweb] (folders, state file, modalities) fails at once.
	// It polls on its own context, ended when the daemon stops.
	doorCtx, stopDoor := context.WithCancel(ctx)
	defer stopDoor()
	door, err := newPullDoor(doorCtx, cfg, log)
	if err != nil {
		return err
	}
	pipe, err := pipeline.New(pipelineOptions(cfg), log)
	if err != nil {
		return err
	}
	defer pipe.Close()
	sink, _, err := newSink(cfg, log)
	if err != nil {
		return err
	}
	opts := daemon.Options{Config: cfg, Processor: pipe, Sink: sink, Logger: log, Reports: reportOptions(cfg)}
	if door != nil {
		opts.Collectors = append(opts.Collectors, door.Metrics)
	}
	d, err := daemon.New(ctx, opts)
	if err != nil {
		return err
	}
	defer d.Close()
	if door != nil {
		waitDoor := startDoor(door, log)
		// On every way out (the daemon stopped, or failed), the door is
		// stopped and waited for, so that tmcad exits between two files.
		defer func() { stopDoor(); waitDoor() }()
	}

	go reloadOnHUP(ctx, hup, d, *cfgPath, *logLevel, log)
	if err := d.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// loadDaemonConfig loads the configuration file; a --log-level given on
// the command line overrides its log.level.
func loadDaemonConfig(path, logLevel string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if logLevel != "" {
		cfg.Log.Level = logLevel
	}
	return cfg, nil
}

// startDoor runs the DICOMweb door in the background, logging why it
// stopped if it failed; wait returns once it has stopped.
func startDoor(door *pullDoor, log zerolog.Logger) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := door.Run(); err != nil {
			log.Error().Err(err).Msg("the DICOMweb door stopped")
		}
	}()
	return func() { <-done }
}

// reloadOnHUP reloads the configuration into d on every SIGHUP until ctx
// ends; an invalid file is logged and the running configuration kept.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, d *daemon.Daemon, cfgPath, logLevel string, log zerolog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			// --log-level still overrides: not a change of log.level.
			next, err := loadDaemonConfig(cfgPath, logLevel)
			if err != nil {
				// The error names the file and every bad key.
				log.Error().Err(err).Str("config", cfgPath).Msg("reload: configuration invalid; keeping the running one")
				continue
			}
			applied, restart := d.Reload(next)
			ev := log.Info()
			if len(restart) > 0 {
				ev = log.Warn()
			}
			ev.Str("config", cfgPath).Strs("applied", applied).Strs("need_restart", restart).Msg(daemon.DescribeReload(applied, restart))
		}
	}
}
