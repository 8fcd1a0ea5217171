package daemon

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"tmcad/config"
)

// unitPath is the shipped unit file, relative to this package.
var unitPath = filepath.Join("..", "systemd", "tmcad.service")

// receiverUnitPath is the shipped DICOM receiver's unit file.
var receiverUnitPath = filepath.Join("..", "systemd", "tmcad-receiver.service")

// shippedUnits are the unit files verified and rated below.
var shippedUnits = []string{unitPath, receiverUnitPath}

// systemdAnalyze runs systemd-analyze; a missing systemd-analyze fails the
// test (it is a build requirement, see scripts/deps.sh), never skips it.
func systemdAnalyze(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze is required to check %s (apt-get install systemd): %v", unitPath, err)
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

// TestUnitVerifies: `systemd-analyze verify` is clean on every shipped unit.
func TestUnitVerifies(t *testing.T) {
	for _, unit := range shippedUnits {
		out, err := systemdAnalyze(t, "verify", unit)
		if err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
		}
	}
}

// TestUnitExposure: `systemd-analyze security --offline=true` rates each
// shipped unit's overall exposure 2.0 or less.
func TestUnitExposure(t *testing.T) {
	for _, unit := range shippedUnits {
		out, err := systemdAnalyze(t, "security", "--offline=true", unit)
		if err != nil {
			t.Fatalf("systemd-analyze security %s: %v\n%s", unit, err, out)
		}
		m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no overall exposure for %s in:\n%s", unit, out)
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		if v > 2.0 {
			t.Errorf("%s: overall exposure %.1f > 2.0:\n%s", unit, v, out)
		}
		t.Logf("%s: overall exposure %.1f", filepath.Base(unit), v)
	}
}

// TestUnitSettings pins the settings the daemon relies on.
func TestUnitSettings(t *testing.T) {
	b, rerr := readFile(unitPath)
	if rerr != nil {
		t.Fatal(rerr)
	}
	for _, want := range []string{"Type=notify", "WatchdogSec=", "Restart=on-failure", "StateDirectory=tmcad", "User=tmcad",
		"ProtectSystem=strict", "ReadWritePaths=", "NoNewPrivileges=yes", "PrivateTmp=yes", "ProtectHome=yes",
		"CapabilityBoundingSet=", "SystemCallFilter=@system-service", "RestrictAddressFamilies=", "UMask=0027", "TimeoutStopSec=90s"} {
		if !strings.Contains(b, "\n"+want) {
			t.Errorf("%s lacks %s", unitPath, want)
		}
	}
}

// TestReceiverUnitSettings pins what the receiver relies on: its settings
// file, the shipped script, the tmcad user, restarts, the sandbox and the
// address restriction (storescp cannot restrict calling AE titles).
func TestReceiverUnitSettings(t *testing.T) {
	b, err := readFile(receiverUnitPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"EnvironmentFile=-/etc/tmcad/receiver.env", "Environment=TMCAD_AET=TMCAD TMCAD_PORT=11112",
		"ExecStart=/usr/bin/env tmcad-receiver\n", "Restart=on-failure", "User=tmcad", "Group=tmcad",
		"ProtectSystem=strict", "ReadWritePaths=/var/spool/tmcad\n", "NoNewPrivileges=yes", "PrivateTmp=yes", "ProtectHome=yes",
		"CapabilityBoundingSet=\n", "SystemCallFilter=@system-service", "RestrictAddressFamilies=", "UMask=0027",
		"IPAddressDeny=any", "IPAddressAllow="} {
		if !strings.Contains(b, "\n"+want) {
			t.Errorf("%s lacks %s", receiverUnitPath, strings.TrimSpace(want))
		}
	}
}

func readFile(p string) (string, error) {
	b, err := os.ReadFile(p)
	return string(b), err
}

// stopMargin is what Run may take beyond queue.drain_timeout when it
// stops: River's stop is bounded by drain_timeout + 10s, the HTTP server's
// shutdown by 5s.
const stopMargin = 15 * time.Second

// TestUnitStopTimeoutCoversDrain: the unit's TimeoutStopSec leaves the
// daemon its whole drain (queue.drain_timeout, default and shipped
// example) plus the stop margin, so that systemd never SIGKILLs a drain
// that is still within its configured time.
func TestUnitStopTimeoutCoversDrain(t *testing.T) {
	b, err := readFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^TimeoutStopSec=(\S+)\s*$`).FindStringSubmatch(b)
	if m == nil {
		t.Fatalf("%s sets no TimeoutStopSec", unitPath)
	}
	v := m[1]
	if _, err := strconv.Atoi(v); err == nil {
		v += "s" // a bare number is seconds
	}
	stopSec, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("TimeoutStopSec=%s: %v", m[1], err)
	}
	example, err := config.Load(filepath.Join("..", "systemd", "tmcad.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for name, drain := range map[string]time.Duration{
		"default queue.drain_timeout":            config.Default().Queue.DrainTimeout.Duration,
		"tmcad.example.toml queue.drain_timeout": example.Queue.DrainTimeout.Duration,
	} {
		if drain <= 0 {
			t.Errorf("%s is %v", name, drain)
			continue
		}
		if stopSec <= drain+stopMargin {
			t.Errorf("TimeoutStopSec=%v is not above %s (%v) + %v: systemd would kill a drain in progress", stopSec, name, drain, stopMargin)
		}
	}
}
