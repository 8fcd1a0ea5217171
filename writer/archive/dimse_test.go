package archive

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"tmcad/internal/testpeers"
)

// startStoreSCP starts dcmtk's storescp as AE ARCHIVE on a free loopback
// port with extra options, writing what it receives into outDir.
func startStoreSCP(t *testing.T, outDir string, extra ...string) int {
	t.Helper()
	bin := testpeers.RequireTool(t, "storescp")
	port := testpeers.FreePort(t)
	args := append([]string{"--output-directory", outDir, "--filename-extension", ".dcm", "-aet", "ARCHIVE"}, extra...)
	c := testpeers.StartChild(t, exec.Command(bin, append(args, strconv.Itoa(port))...), filepath.Join(t.TempDir(), "storescp.log"))
	testpeers.WaitTCP(t, c, fmt.Sprintf("127.0.0.1:%d", port), 20*time.Second)
	return port
}

// dimseSink returns a sink sending to 127.0.0.1:port with fast retries.
func dimseSink(t *testing.T, called string, port, attempts int) *DIMSESink {
	t.Helper()
	testpeers.RequireTool(t, "dcmsend")
	s, err := NewDIMSESink(DIMSEConfig{CalledAE: called, CallingAE: "TMCAD", Host: "127.0.0.1", Port: port,
		Timeout: 10 * time.Second, MaxAttempts: attempts, InitialBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDIMSEStoreSCP: the SEG reaches storescp byte for byte in its data
// set, and storing it again succeeds.
func TestDIMSEStoreSCP(t *testing.T) {
	out := t.TempDir()
	port := startStoreSCP(t, out)
	sink := dimseSink(t, "ARCHIVE", port, 1)
	if want := fmt.Sprintf("dimse:ARCHIVE@127.0.0.1:%d", port); sink.Name() != want {
		t.Errorf("Name() = %q, want %q", sink.Name(), want)
	}
	seg := testSEG(t)
	for i := 0; i < 2; i++ {
		if err := PutSEG(context.Background(), sink, seg); err != nil {
			t.Fatalf("C-STORE #%d: %v", i+1, err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(out, "*"+seg.SOPInstanceUID+"*.dcm"))
	if len(files) == 0 {
		ents, _ := os.ReadDir(out)
		t.Fatalf("storescp's folder has no file for SOP %s (%d entries)", seg.SOPInstanceUID, len(ents))
	}
	dump, err := exec.Command(testpeers.RequireTool(t, "dcmdump"), "+P", "0008,0018", "+P", "0008,0016", files[0]).CombinedOutput()
	if err != nil {
		t.Fatalf("dcmdump: %v\n%s", err, dump)
	}
	if !strings.Contains(string(dump), seg.SOPInstanceUID) || !strings.Contains(string(dump), "SegmentationStorage") {
		t.Errorf("stored file is not the SEG:\n%s", dump)
	}
	// The temporary files dcmsend read are gone.
	if left, _ := filepath.Glob(filepath.Join(os.TempDir(), "tmcad-cstore-*")); len(left) > 0 {
		t.Errorf("temporary folders left: %v", left)
	}
}

// TestDIMSEOrthanc: Orthanc's DICOM port stores the SEG (its REST API
// lists the instance); a wrong called AE title is an association rejected
// with the reason named, retried, not a refusal of the object.
func TestDIMSEOrthanc(t *testing.T) {
	o := testpeers.StartOrthanc(t)
	seg := testSEG(t)
	sink := dimseSink(t, o.AET, o.DICOMPort, 1)
	if err := PutSEG(context.Background(), sink, seg); err != nil {
		t.Fatalf("C-STORE to Orthanc: %v", err)
	}
	var instances []map[string]any
	if code := o.Get("/dicom-web/studies/"+seg.StudyInstanceUID+"/series/"+seg.SeriesInstanceUID+"/instances", &instances); code != http.StatusOK || len(instances) != 1 {
		t.Fatalf("Orthanc lists %d instances of the SEG series (HTTP %d), want 1", len(instances), code)
	}
	if v := fmt.Sprint(instances[0]["00080018"]); !strings.Contains(v, seg.SOPInstanceUID) {
		t.Errorf("Orthanc's instance has SOP Instance UID %s, want %s", v, seg.SOPInstanceUID)
	}

	retries := 0
	wrong := dimseSink(t, "NOT_ORTHANC", o.DICOMPort, 2)
	wrong.cfg.OnRetry = func(int, time.Duration, error) { retries++ }
	err := PutSEG(context.Background(), wrong, seg)
	var de *DIMSEError
	if !errors.As(err, &de) || de.Rejected || errors.Is(err, ErrRejected) {
		t.Fatalf("wrong called AE: %v, want a DIMSEError that is not a refusal of the object", err)
	}
	for _, want := range []string{"association rejected", "Called AE Title Not Recognized", "archive.called_ae", "NOT_ORTHANC@127.0.0.1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("wrong called AE: error %q does not say %q", err, want)
		}
	}
	if retries != 1 {
		t.Errorf("wrong called AE: %d retries, want 1 (2 attempts)", retries)
	}
}

// TestDIMSEFailures: each way a real peer fails a store gives a clear
// error, classified as passing (retried) or a refusal of the object.
func TestDIMSEFailures(t *testing.T) {
	seg := testSEG(t)
	ctx := context.Background()

	t.Run("out of resources", func(t *testing.T) {
		// storescp answers 0xA700 when it cannot write the object.
		out := filepath.Join(t.TempDir(), "gone")
		if err := os.Mkdir(out, 0o755); err != nil {
			t.Fatal(err)
		}
		port := startStoreSCP(t, out)
		if err := os.Remove(out); err != nil {
			t.Fatal(err)
		}
		err := PutSEG(ctx, dimseSink(t, "ARCHIVE", port, 1), seg)
		var de *DIMSEError
		if !errors.As(err, &de) || !de.HasStatus || de.Status != 0xA700 || de.Rejected {
			t.Fatalf("%v: want status 0xA700, not a refusal", err)
		}
		if !strings.Contains(err.Error(), "status 0xA700 (Refused: OutOfResources)") {
			t.Errorf("error %q does not name the status", err)
		}
	})

	t.Run("SOP class not accepted", func(t *testing.T) {
		// A storescp that accepts CT images only refuses the SEG's
		// presentation context: a refusal of the object.
		cfg := filepath.Join(t.TempDir(), "ct-only.cfg")
		if err := os.WriteFile(cfg, []byte(`[[TransferSyntaxes]]
[Uncompressed]
TransferSyntax1 = LocalEndianExplicit
TransferSyntax2 = LittleEndianImplicit

[[PresentationContexts]]
[CTOnly]
PresentationContext1 = CTImageStorage\Uncompressed

[[Profiles]]
[Default]
PresentationContexts = CTOnly
`), 0o644); err != nil {
			t.Fatal(err)
		}
		port := startStoreSCP(t, t.TempDir(), "-xf", cfg, "Default")
		err := PutSEG(ctx, dimseSink(t, "ARCHIVE", port, 3), seg)
		if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "presentation context") {
			t.Fatalf("%v: want a refusal naming the presentation context", err)
		}
	})

	t.Run("association refused", func(t *testing.T) {
		port := startStoreSCP(t, t.TempDir(), "--refuse")
		err := PutSEG(ctx, dimseSink(t, "ARCHIVE", port, 1), seg)
		if err == nil || errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "association rejected (Rejected Permanent by the service user") {
			t.Fatalf("%v: want an association rejection, retried", err)
		}
	})

	t.Run("aborted", func(t *testing.T) {
		port := startStoreSCP(t, t.TempDir(), "--abort-after")
		err := PutSEG(ctx, dimseSink(t, "ARCHIVE", port, 1), seg)
		if err == nil || errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "aborted the association") {
			t.Fatalf("%v: want an abort, retried", err)
		}
	})

	t.Run("connection refused", func(t *testing.T) {
		err := PutSEG(ctx, dimseSink(t, "ARCHIVE", testpeers.FreePort(t), 2), seg)
		if err == nil || errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "after 2 attempts") {
			t.Fatalf("%v: want connection refused after 2 attempts", err)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		port := startStoreSCP(t, t.TempDir(), "--sleep-during", "30")
		s := dimseSink(t, "ARCHIVE", port, 1)
		s.cfg.Timeout = 2 * time.Second
		start := time.Now()
		err := PutSEG(ctx, s, seg)
		if err == nil || errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "timed out") || time.Since(start) > 15*time.Second {
			t.Fatalf("%v after %v: want a timeout within the limit, retried", err, time.Since(start))
		}
	})
}

func TestNewDIMSESinkValidates(t *testing.T) {
	for _, c := range []DIMSEConfig{
		{CalledAE: "", CallingAE: "A", Host: "h", Port: 104},
		{CalledAE: "TOO_LONG_AE_TITLE_X", CallingAE: "A", Host: "h", Port: 104},
		{CalledAE: "A\\B", CallingAE: "A", Host: "h", Port: 104},
		{CalledAE: "A", CallingAE: "-x", Host: "h", Port: 104},
		{CalledAE: "A", CallingAE: "B", Host: "", Port: 104},
		{CalledAE: "A", CallingAE: "B", Host: "h", Port: 0},
	} {
		if _, err := NewDIMSESink(c); err == nil {
			t.Errorf("NewDIMSESink(%+v) accepted", c)
		}
	}
}

// storeSCPTLS is storescp's options for TLS with f's server certificate;
// mutual requires a client certificate from f's CA.
func storeSCPTLS(f *testpeers.PKI, mutual bool) []string {
	if mutual {
		return []string{"+tls", f.ServerKey, f.ServerCert, "+cf", f.CA, "-rc"}
	}
	return []string{"+tls", f.ServerKey, f.ServerCert, "-ic"}
}

// tlsSink returns a sink sending over TLS to 127.0.0.1:port, trusting
// ca, with f's client certificate when f is not nil.
func tlsSink(t *testing.T, port, attempts int, ca string, f *testpeers.PKI) *DIMSESink {
	t.Helper()
	testpeers.RequireTool(t, "storescu")
	cfg := &DIMSETLS{CAFile: ca}
	if f != nil {
		cfg.CertFile, cfg.KeyFile = f.ClientCert, f.ClientKey
	}
	s, err := NewDIMSESink(DIMSEConfig{CalledAE: "ARCHIVE", CallingAE: "TMCAD", Host: "127.0.0.1", Port: port,
		Timeout: 10 * time.Second, MaxAttempts: attempts, InitialBackoff: 50 * time.Millisecond, TLS: cfg})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDIMSETLS: over mutual TLS the SEG reaches storescp; without a
// client certificate it reaches a storescp that asks for none; a CA that
// did not issue the PACS's certificate, or a PACS without TLS, is a
// clear TLS error, retried, not a refusal of the object.
func TestDIMSETLS(t *testing.T) {
	f := testpeers.NewPKI(t, "archive CA", "archive", "TMCAD")
	other := testpeers.NewPKI(t, "other CA", "archive", "TMCAD")
	seg := testSEG(t)
	ctx := context.Background()

	out := t.TempDir()
	port := startStoreSCP(t, out, storeSCPTLS(f, true)...)
	if err := PutSEG(ctx, tlsSink(t, port, 1, f.CA, f), seg); err != nil {
		t.Fatalf("C-STORE over mutual TLS: %v", err)
	}
	if files, _ := filepath.Glob(filepath.Join(out, "*"+seg.SOPInstanceUID+"*.dcm")); len(files) != 1 {
		t.Fatalf("storescp holds %d file(s) of SOP %s, want 1", len(files), seg.SOPInstanceUID)
	}

	anonOut := t.TempDir()
	anonPort := startStoreSCP(t, anonOut, storeSCPTLS(f, false)...)
	if err := PutSEG(ctx, tlsSink(t, anonPort, 1, f.CA, nil), seg); err != nil {
		t.Fatalf("C-STORE over TLS without a client certificate: %v", err)
	}
	if files, _ := filepath.Glob(filepath.Join(anonOut, "*.dcm")); len(files) != 1 {
		t.Errorf("storescp holds %d file(s), want 1", len(files))
	}

	for _, tc := range []struct {
		name, want string
		sink       *DIMSESink
	}{
		{"wrong CA", "certificate verify failed", tlsSink(t, port, 2, other.CA, f)},
		{"client certificate from another CA", "client certificate", tlsSink(t, port, 1, f.CA, other)},
		{"PACS without TLS", "DICOM TLS with the PACS failed", tlsSink(t, startStoreSCP(t, t.TempDir()), 1, f.CA, f)},
	} {
		err := PutSEG(ctx, tc.sink, seg)
		var de *DIMSEError
		if !errors.As(err, &de) || de.Rejected || errors.Is(err, ErrRejected) {
			t.Errorf("%s: %v, want a DIMSEError that is not a refusal of the object", tc.name, err)
			continue
		}
		for _, want := range []string{tc.want, "archive.ca_file"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not say %q", tc.name, err, want)
			}
		}
	}
	if files, _ := filepath.Glob(filepath.Join(out, "*.dcm")); len(files) != 1 {
		t.Errorf("storescp holds %d file(s) after the failed handshakes, want still 1", len(files))
	}
}

// TestDIMSETLSStatus: over TLS, the C-STORE response status and the
// association's failures are classified as without TLS.
func TestDIMSETLSStatus(t *testing.T) {
	f := testpeers.NewPKI(t, "archive CA", "archive", "TMCAD")
	seg := testSEG(t)
	ctx := context.Background()

	gone := filepath.Join(t.TempDir(), "gone")
	if err := os.Mkdir(gone, 0o755); err != nil {
		t.Fatal(err)
	}
	port := startStoreSCP(t, gone, storeSCPTLS(f, false)...)
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	err := PutSEG(ctx, tlsSink(t, port, 1, f.CA, nil), seg)
	var de *DIMSEError
	if !errors.As(err, &de) || !de.HasStatus || de.Status != 0xA700 || de.Rejected || !strings.Contains(err.Error(), "status 0xA700") {
		t.Errorf("out of resources: %v, want status 0xA700, not a refusal", err)
	}

	cfg := filepath.Join(t.TempDir(), "ct-only.cfg")
	if err := os.WriteFile(cfg, []byte("[[TransferSyntaxes]]\n[Uncompressed]\nTransferSyntax1 = LocalEndianExplicit\nTransferSyntax2 = LittleEndianImplicit\n\n"+
		"[[PresentationContexts]]\n[CTOnly]\nPresentationContext1 = CTImageStorage\\Uncompressed\n\n[[Profiles]]\n[Default]\nPresentationContexts = CTOnly\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	port = startStoreSCP(t, t.TempDir(), append(storeSCPTLS(f, false), "-xf", cfg, "Default")...)
	if err := PutSEG(ctx, tlsSink(t, port, 3, f.CA, nil), seg); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "presentation context") {
		t.Errorf("SOP class not accepted: %v, want a refusal naming the presentation context", err)
	}

	port = startStoreSCP(t, t.TempDir(), append(storeSCPTLS(f, false), "--refuse")...)
	if err := PutSEG(ctx, tlsSink(t, port, 1, f.CA, nil), seg); err == nil || errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "association rejected (Rejected Permanent by the service user") {
		t.Errorf("association refused: %v, want an association rejection, retried", err)
	}

	if err := PutSEG(ctx, tlsSink(t, testpeers.FreePort(t), 1, f.CA, nil), seg); err == nil || errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("connection refused: %v, want connection refused, retried", err)
	}
}

func TestNewDIMSESinkValidatesTLS(t *testing.T) {
	f := testpeers.NewPKI(t, "archive CA", "archive", "TMCAD")
	base := DIMSEConfig{CalledAE: "A", CallingAE: "B", Host: "h", Port: 104}
	for _, tc := range []struct {
		tls  DIMSETLS
		want string
	}{
		{DIMSETLS{}, "CAs that issue the PACS's certificate"},
		{DIMSETLS{CAFile: f.CA, CertFile: f.ClientCert}, "give both, or neither"},
		{DIMSETLS{CAFile: filepath.Join(t.TempDir(), "missing.pem")}, "missing.pem"},
		{DIMSETLS{CAFile: "-rc"}, "must not start with"},
	} {
		cfg := base
		cfg.TLS = &tc.tls
		if _, err := NewDIMSESink(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("TLS %+v: %v, want an error with %q", tc.tls, err, tc.want)
		}
	}
}
