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
