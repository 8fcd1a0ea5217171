package daemon

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// unitPath is the shipped unit file, relative to this package.
var unitPath = filepath.Join("..", "systemd", "tmcad.service")

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

// TestUnitVerifies: `systemd-analyze verify systemd/tmcad.service` is clean.
func TestUnitVerifies(t *testing.T) {
	out, err := systemdAnalyze(t, "verify", unitPath)
	if err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", unitPath, err, out)
	}
}

// TestUnitExposure: `systemd-analyze security --offline=true` rates the
// unit's overall exposure 2.0 or less.
func TestUnitExposure(t *testing.T) {
	out, err := systemdAnalyze(t, "security", "--offline=true", unitPath)
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no overall exposure in:\n%s", out)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	if v > 2.0 {
		t.Fatalf("overall exposure %.1f > 2.0:\n%s", v, out)
	}
	t.Logf("overall exposure %.1f", v)
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

func readFile(p string) (string, error) {
	b, err := os.ReadFile(p)
	return string(b), err
}
