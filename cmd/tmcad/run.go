package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"syscall"

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
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	if *logLevel != "" {
		cfg.Log.Level = *logLevel
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
		doorDone := make(chan struct{})
		go func() {
			defer close(doorDone)
			if err := door.Run(); err != nil {
				log.Error().Err(err).Msg("the DICOMweb door stopped")
			}
		}()
		// On every way out (the daemon stopped, or failed), the door is
		// stopped and waited for, so that tmcad exits between two files.
		defer func() { stopDoor(); <-doorDone }()
	}

	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				next, err := config.Load(*cfgPath)
				if err != nil {
					// The error names the file and every bad key.
					log.Error().Err(err).Str("config", *cfgPath).Msg("reload: configuration invalid; keeping the running one")
					continue
				}
				if *logLevel != "" {
					// --log-level still overrides: not a change of log.level.
					next.Log.Level = *logLevel
				}
				applied, restart := d.Reload(next)
				ev := log.Info()
				if len(restart) > 0 {
					ev = log.Warn()
				}
				ev.Str("config", *cfgPath).Strs("applied", applied).Strs("need_restart", restart).Msg(daemon.DescribeReload(applied, restart))
			}
		}
	}()
	if err := d.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
