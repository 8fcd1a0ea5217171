package dimsegate

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"tmcad/internal/testpeers"
)

// exampleFiles returns the example DICOM files of the repository
// (examples/dicom), sorted by path.
func exampleFiles(t *testing.T) []string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		if filepath.Dir(dir) == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = filepath.Dir(dir)
	}
	files, err := filepath.Glob(filepath.Join(dir, "examples", "dicom", "*", "*", "*.dcm"))
	if err != nil || len(files) < 8 {
		t.Fatalf("examples/dicom: %d files (%v); the test needs at least 8", len(files), err)
	}
	return files
}

// startStorescp runs dcmtk's storescp on a free loopback port writing into
// a new folder, with extra options; it returns the port and the folder.
func startStorescp(t *testing.T, extra ...string) (int, string) {
	t.Helper()
	bin := testpeers.RequireTool(t, "storescp")
	dir := t.TempDir()
	port := testpeers.FreePort(t)
	args := append([]string{"-aet", "TMCAD", "--output-directory", dir, "--filename-extension", ".dcm", "--disable-host-lookup"}, extra...)
	c := testpeers.StartChild(t, exec.Command(bin, append(args, strconv.Itoa(port))...), filepath.Join(t.TempDir(), "storescp.log"))
	testpeers.WaitTCP(t, c, fmt.Sprintf("127.0.0.1:%d", port), 20*time.Second)
	return port, dir
}

// scu runs a dcmtk client (storescu, echoscu) from calling AE aet to
// TMCAD at addr and returns its combined output and error.
func scu(t *testing.T, tool, aet, addr string, files ...string) (string, error) {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	args := append([]string{"-aet", aet, "-aec", "TMCAD", host, port}, files...)
	out, err := exec.Command(testpeers.RequireTool(t, tool), args...).CombinedOutput()
	return string(out), err
}

func countDCM(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// TestPeersThroughGate: echoscu and storescu with an allowed calling AE
// reach a real storescp through the gate (C-ECHO answered, instances
// stored); a calling AE not in the list gets "Association Rejected" from
// storescu, which fails, and nothing is stored.
func TestPeersThroughGate(t *testing.T) {
	port, dir := startStorescp(t)
	addr, reg := testGate(t, Config{Upstream: fmt.Sprintf("127.0.0.1:%d", port), AllowAETs: []string{"PACS"}, CalledAET: "TMCAD"})
	files := exampleFiles(t)[:5]

	if out, err := scu(t, "echoscu", "PACS", addr); err != nil {
		t.Fatalf("echoscu through the gate: %v\n%s", err, out)
	}
	if out, err := scu(t, "storescu", "PACS", addr, files...); err != nil {
		t.Fatalf("storescu through the gate: %v\n%s", err, out)
	}
	if n := countDCM(t, dir); n != len(files) {
		t.Fatalf("storescp stored %d instance(s), want %d", n, len(files))
	}

	out, err := scu(t, "storescu", "INTRUDER", addr, files...)
	if err == nil {
		t.Errorf("storescu with a calling AE not allowed exited 0:\n%s", out)
	}
	if !strings.Contains(out, "Association Rejected") || !strings.Contains(out, "Calling AE Title Not Recognized") {
		t.Errorf("storescu's output does not report the rejection of the calling AE title:\n%s", out)
	}
	if n := countDCM(t, dir); n != len(files) {
		t.Errorf("storescp holds %d instance(s) after the rejected association, want still %d", n, len(files))
	}
	if v := metricValue(t, reg, "tmcad_dicom_gate_accepted_total", ""); v != 2 {
		t.Errorf("accepted counter %v, want 2 (echo and store)", v)
	}
	if v := metricValue(t, reg, "tmcad_dicom_gate_refused_total", ReasonCallingAE); v != 1 {
		t.Errorf("refused{calling_ae} = %v, want 1", v)
	}
}

// TestPeerRefusedAddress: the gate listens on 127.0.0.1 and allows only
// 10.0.0.0/8; echoscu and storescu from loopback, with an allowed calling
// AE, are refused and nothing is stored.
func TestPeerRefusedAddress(t *testing.T) {
	port, dir := startStorescp(t)
	addr, reg := testGate(t, Config{
		Upstream:  fmt.Sprintf("127.0.0.1:%d", port),
		AllowAETs: []string{"PACS"},
		AllowNets: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	})
	if out, err := scu(t, "echoscu", "PACS", addr); err == nil {
		t.Errorf("echoscu from an address not allowed exited 0:\n%s", out)
	}
	if out, err := scu(t, "storescu", "PACS", addr, exampleFiles(t)[:2]...); err == nil {
		t.Errorf("storescu from an address not allowed exited 0:\n%s", out)
	}
	if n := countDCM(t, dir); n != 0 {
		t.Errorf("storescp stored %d instance(s) from an address not allowed", n)
	}
	if v := metricValue(t, reg, "tmcad_dicom_gate_refused_total", ReasonAddress); v != 2 {
		t.Errorf("refused{address} = %v, want 2", v)
	}
}

// TestPeersConcurrent: several storescu associations through the gate at
// once, to storescp forking a process per association, all store every
// instance.
func TestPeersConcurrent(t *testing.T) {
	port, dir := startStorescp(t, "--fork")
	addr, reg := testGate(t, Config{Upstream: fmt.Sprintf("127.0.0.1:%d", port), AllowAETs: []string{"PACS1", "PACS2", "PACS3", "PACS4"}})
	files := exampleFiles(t)
	const senders = 4
	var wg sync.WaitGroup
	errs := make([]error, senders)
	outs := make([]string, senders)
	per := len(files) / senders
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = scu(t, "storescu", fmt.Sprintf("PACS%d", i+1), addr, files[i*per:(i+1)*per]...)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("storescu %d: %v\n%s", i+1, err, outs[i])
		}
	}
	// storescp's forked children write the last file before they answer
	// it; the files are all there once every storescu has finished.
	if n := countDCM(t, dir); n != senders*per {
		t.Errorf("storescp stored %d instance(s), want %d", n, senders*per)
	}
	if v := metricValue(t, reg, "tmcad_dicom_gate_accepted_total", ""); v != senders {
		t.Errorf("accepted counter %v, want %d", v, senders)
	}

	// An association held open (accepted, then idle) does not stop the
	// next one: storescu completes while it is still open.
	held, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	_ = held.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := held.Write(verificationRQ("TMCAD", "PACS1")); err != nil {
		t.Fatal(err)
	}
	var hdr [6]byte
	if _, err := io.ReadFull(held, hdr[:]); err != nil || hdr[0] != 0x02 {
		t.Fatalf("the held association: got PDU type 0x%02x (%v), want A-ASSOCIATE-AC (0x02)", hdr[0], err)
	}
	if out, err := scu(t, "storescu", "PACS2", addr, files[:1]...); err != nil {
		t.Errorf("storescu while another association is open: %v\n%s", err, out)
	}
}

// verificationRQ is an A-ASSOCIATE-RQ that proposes the Verification SOP
// class in Implicit VR Little Endian, as echoscu sends it.
func verificationRQ(called, calling string) []byte {
	item := func(typ byte, body []byte) []byte {
		return append([]byte{typ, 0, byte(len(body) >> 8), byte(len(body))}, body...)
	}
	pc := append([]byte{1, 0, 0, 0}, item(0x30, []byte("1.2.840.10008.1.1"))...)
	pc = append(pc, item(0x40, []byte("1.2.840.10008.1.2"))...)
	user := append(item(0x51, []byte{0, 0, 0x40, 0}), item(0x52, []byte("1.2.3.4"))...)
	items := append(append(append([]byte{}, appContextItem...), item(0x20, pc)...), item(0x50, user)...)
	return buildRQ(called, calling, items)
}
