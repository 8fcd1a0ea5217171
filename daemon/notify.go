package daemon

import (
	"context"
	"time"

	sdd "github.com/coreos/go-systemd/v22/daemon"
	"github.com/rs/zerolog"
)

// notify sends a state to systemd when NOTIFY_SOCKET is set.
func notify(log zerolog.Logger, state string) {
	if _, err := sdd.SdNotify(false, state); err != nil {
		log.Warn().Err(err).Msg("systemd notify failed")
	}
}

// watchdogLoop sends WATCHDOG=1 at half the WatchdogSec interval while the
// daemon's loops are alive; when they stall it stops, and systemd restarts
// the service.
func (d *Daemon) watchdogLoop(ctx context.Context) error {
	interval, err := sdd.SdWatchdogEnabled(false)
	if err != nil || interval <= 0 {
		return nil
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		if d.alive(interval) {
			notify(d.log, "WATCHDOG=1")
		} else {
			d.log.Error().Msg("a daemon loop stalled; not feeding the systemd watchdog")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
