package dimsegate

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tmcad/internal/testpeers"
)

// serverTLS is the gate's TLS configuration from p's server certificate;
// mutual requires a client certificate from p's CA.
func serverTLS(t *testing.T, p *testpeers.PKI, mutual bool) *tls.Config {
	t.Helper()
	ca := ""
	if mutual {
		ca = p.CA
	}
	cfg, err := ServerTLSConfig(p.ServerCert, p.ServerKey, ca)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestGateTLSPassesAllowedAssociation: over mutual TLS, an allowed calling
// AE reaches the receiver with the request and what follows in
// plaintext, byte for byte; the receiver's answer comes back encrypted
// after the sender's close_notify.
func TestGateTLSPassesAllowedAssociation(t *testing.T) {
	pki := testpeers.NewPKI(t, "test CA", "tmcad receiver", "PACS")
	up := startFakeUpstream(t, []byte("answer from the receiver"))
	addr, reg := testGate(t, Config{Upstream: up.ln.Addr().String(), AllowAETs: []string{"PACS"}, CalledAET: "TMCAD", TLS: serverTLS(t, pki, true)})
	c, err := tls.Dial("tcp", addr, pki.ClientTLS(t, pki))
	if err != nil {
		t.Fatalf("TLS handshake with the gate: %v", err)
	}
	defer c.Close()
	checkPassesThrough(t, c, up, reg, "in plaintext")
}

// TestGateTLSChecksAETitles: behind TLS the calling AE title is still
// checked; the rejection comes back over TLS.
func TestGateTLSChecksAETitles(t *testing.T) {
	pki := testpeers.NewPKI(t, "test CA", "tmcad receiver", "PACS")
	up := startFakeUpstream(t, nil)
	addr, _ := testGate(t, Config{Upstream: up.ln.Addr().String(), AllowAETs: []string{"PACS"}, TLS: serverTLS(t, pki, false)})
	c, err := tls.Dial("tcp", addr, pki.ClientTLS(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(buildRQ("TMCAD", "INTRUDER", appContextItem)); err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(c)
	if want := AssociateRJ(RJRejectedPermanent, RJSourceServiceUser, RJReasonCallingAENotRecognized); !bytes.Equal(got, want) {
		t.Errorf("got % x, want A-ASSOCIATE-RJ % x", got, want)
	}
	if n := up.connections(); n != 0 {
		t.Errorf("%d rejected association(s) reached the receiver", n)
	}
}

// TestGateTLSOnlyRefusesPlaintext: a gate with TLS and no allow-list is
// valid; a plaintext A-ASSOCIATE-RQ on it gets A-ASSOCIATE-RJ and does not
// reach the receiver, and other plaintext is closed unanswered.
func TestGateTLSOnlyRefusesPlaintext(t *testing.T) {
	pki := testpeers.NewPKI(t, "test CA", "tmcad receiver", "PACS")
	up := startFakeUpstream(t, nil)
	addr, reg := testGate(t, Config{Upstream: up.ln.Addr().String(), TLS: serverTLS(t, pki, false)})
	got := exchange(t, addr, buildRQ("TMCAD", "PACS", appContextItem))
	if want := AssociateRJ(RJRejectedPermanent, RJSourceServiceUser, RJReasonNoReason); !bytes.Equal(got, want) {
		t.Errorf("plaintext request: got % x, want A-ASSOCIATE-RJ % x", got, want)
	}
	if got := exchange(t, addr, []byte("GET / HTTP/1.0\r\n\r\n")); len(got) != 0 {
		t.Errorf("plaintext HTTP: got %q, want nothing", got)
	}
	if n := up.connections(); n != 0 {
		t.Errorf("%d plaintext connection(s) reached the receiver", n)
	}
	if v := metricValue(t, reg, "tmcad_dicom_gate_refused_total", ReasonTLS); v != 2 {
		t.Errorf("refused{tls} = %v, want 2", v)
	}
	// A TLS client with the right trust gets through the TLS-only gate.
	c, err := tls.Dial("tcp", addr, pki.ClientTLS(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	_, _ = c.Write(buildRQ("TMCAD", "ANY", appContextItem))
	_ = c.CloseWrite()
	_, _ = io.ReadAll(c)
	<-up.done
	if v := metricValue(t, reg, "tmcad_dicom_gate_accepted_total", ""); v != 1 {
		t.Errorf("accepted counter %v, want 1", v)
	}
}

// TestGateTLSRequiresClientCert: with a client CA, a client without a
// certificate, or with one from another CA, fails the handshake and
// never reaches the receiver.
func TestGateTLSRequiresClientCert(t *testing.T) {
	pki := testpeers.NewPKI(t, "test CA", "tmcad receiver", "PACS")
	other := testpeers.NewPKI(t, "other CA", "tmcad receiver", "PACS")
	up := startFakeUpstream(t, nil)
	addr, reg := testGate(t, Config{Upstream: up.ln.Addr().String(), AllowAETs: []string{"PACS"}, TLS: serverTLS(t, pki, true)})
	for _, tc := range []struct {
		name string
		cert *testpeers.PKI
	}{{"no client certificate", nil}, {"certificate from another CA", other}} {
		c, err := tls.Dial("tcp", addr, pki.ClientTLS(t, tc.cert))
		if err == nil {
			// TLS 1.3: the client learns of the refusal on its first read.
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			_, _ = c.Write(buildRQ("TMCAD", "PACS", appContextItem))
			var got []byte
			got, err = io.ReadAll(c)
			c.Close()
			if err == nil {
				t.Errorf("%s: the connection ended cleanly with % x, want a TLS alert", tc.name, got)
			}
		}
		if err != nil && !strings.Contains(err.Error(), "tls") {
			t.Errorf("%s: %v, want a TLS error", tc.name, err)
		}
	}
	waitFor(t, func() bool { return metricValue(t, reg, "tmcad_dicom_gate_refused_total", ReasonTLS) == 2 })
	if n := up.connections(); n != 0 {
		t.Errorf("%d connection(s) without a valid client certificate reached the receiver", n)
	}
}

func TestServerTLSConfigValidates(t *testing.T) {
	pki := testpeers.NewPKI(t, "test CA", "tmcad receiver", "PACS")
	notPEM := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cert, key, ca, want string
	}{
		{"", pki.ServerKey, "", "both a certificate and a private key"},
		{pki.ServerCert, filepath.Join(t.TempDir(), "missing.pem"), "", "missing.pem"},
		{pki.ServerCert, pki.ClientKey, "", "private key does not match"},
		{pki.ServerCert, pki.ServerKey, filepath.Join(t.TempDir(), "missing-ca.pem"), "client CA bundle"},
		{pki.ServerCert, pki.ServerKey, notPEM, "no PEM certificate"},
	} {
		_, err := ServerTLSConfig(tc.cert, tc.key, tc.ca)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ServerTLSConfig(%q, %q, %q): %v, want an error with %q", tc.cert, tc.key, tc.ca, err, tc.want)
		}
	}
	cfg := serverTLS(t, pki, true)
	if cfg.MinVersion != tls.VersionTLS12 || cfg.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Errorf("MinVersion %x, ClientAuth %v: want TLS 1.2+ and verified client certificates", cfg.MinVersion, cfg.ClientAuth)
	}
	if _, err := New(Config{Upstream: "127.0.0.1:1", TLS: &tls.Config{}}); err == nil || !strings.Contains(err.Error(), "no server certificate") {
		t.Errorf("New with an empty TLS configuration: %v, want an error", err)
	}
}

// TestPeersTLS: dcmtk's echoscu and storescu with a client certificate
// (+tls) reach a real storescp through a mutual-TLS gate and the
// instances are stored; storescu without TLS, or with TLS but no client
// certificate (+tla), stores nothing.
func TestPeersTLS(t *testing.T) {
	pki := testpeers.NewPKI(t, "test CA", "tmcad receiver", "PACS")
	port, dir := startStorescp(t)
	addr, reg := testGate(t, Config{Upstream: fmt.Sprintf("127.0.0.1:%d", port), AllowAETs: []string{"PACS"}, CalledAET: "TMCAD", TLS: serverTLS(t, pki, true)})
	files := exampleFiles(t)[:3]
	withCert := []string{"+tls", pki.ClientKey, pki.ClientCert, "+cf", pki.CA}

	if out, err := scuOpts(t, "echoscu", withCert, "PACS", addr); err != nil {
		t.Fatalf("echoscu over TLS through the gate: %v\n%s", err, out)
	}
	if out, err := scuOpts(t, "storescu", withCert, "PACS", addr, files...); err != nil {
		t.Fatalf("storescu over TLS through the gate: %v\n%s", err, out)
	}
	if n := countDCM(t, dir); n != len(files) {
		t.Fatalf("storescp stored %d instance(s), want %d", n, len(files))
	}

	out, err := scuOpts(t, "storescu", nil, "PACS", addr, files...)
	if err == nil || !strings.Contains(out, "Association Rejected") {
		t.Errorf("plaintext storescu on the TLS gate: %v, want the association rejected:\n%s", err, out)
	}
	if out, err := scuOpts(t, "storescu", []string{"+tla", "+cf", pki.CA}, "PACS", addr, files...); err == nil {
		t.Errorf("storescu over TLS without a client certificate exited 0:\n%s", out)
	}
	if n := countDCM(t, dir); n != len(files) {
		t.Errorf("storescp holds %d instance(s) after the refused associations, want still %d", n, len(files))
	}
	if v := metricValue(t, reg, "tmcad_dicom_gate_accepted_total", ""); v != 2 {
		t.Errorf("accepted counter %v, want 2 (echo and store)", v)
	}
	waitFor(t, func() bool { return metricValue(t, reg, "tmcad_dicom_gate_refused_total", ReasonTLS) == 2 })
}

// scuOpts runs a dcmtk client with extra options (TLS) from calling AE
// aet to TMCAD at addr and returns its combined output and error.
func scuOpts(t *testing.T, tool string, opts []string, aet, addr string, files ...string) (string, error) {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	args := append(append(append([]string{}, opts...), "-aet", aet, "-aec", "TMCAD", host, port), files...)
	out, err := exec.Command(testpeers.RequireTool(t, tool), args...).CombinedOutput()
	return string(out), err
}
