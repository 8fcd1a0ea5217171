package daemon

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"tmcad/config"
	"tmcad/internal/testpeers"
	"tmcad/reports"
	"tmcad/reports/mllp"
)

// startTestHL7 starts the MLLP listener of a daemon configured by edit
// (on a free loopback port, reports into a temporary folder) and returns
// it with the reports folder.
func startTestHL7(t *testing.T, edit func(*config.Config)) (*hl7Server, string) {
	t.Helper()
	cfg := config.Default()
	dir := t.TempDir()
	cfg.Watch.DICOMDir = filepath.Join(dir, "dicom")
	cfg.Watch.ReportsDir = filepath.Join(dir, "reports")
	if err := os.MkdirAll(cfg.Watch.ReportsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.HL7.Listen = "127.0.0.1:" + strconv.Itoa(testpeers.FreePort(t))
	if edit != nil {
		edit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d := &Daemon{log: zerolog.New(zerolog.NewTestWriter(t)), metrics: newMetrics()}
	d.cfg.Store(cfg)
	s, err := d.startHL7()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return s, cfg.Watch.ReportsDir
}

// checkHL7Metrics compares samples of the listener's metrics (name, or
// name{label="value"}, as /metrics shows them) with want.
func checkHL7Metrics(t *testing.T, s *hl7Server, want map[string]float64) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s.metrics)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			name := mf.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				got[name] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				got[name] = m.GetGauge().GetValue()
			}
		}
	}
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("no sample %s among the HL7 metrics", k)
			continue
		}
		if g != v {
			t.Errorf("%s = %v, want %v", k, g, v)
		}
	}
}

// mllpSend runs python3-hl7's mllp_send on file (--loose: segments may
// end in \r or \n, several messages per file, all on one connection) and
// returns its output: the acknowledgements as received.
func mllpSend(t *testing.T, addr, file string) (string, error) {
	t.Helper()
	bin := testpeers.RequireTool(t, "mllp_send")
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command(bin, "--loose", "-f", file, "-p", port, host).CombinedOutput()
	return string(out), err
}

// hl7Files lists the .hl7 files of dir by name.
func hl7Files(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

// acks splits mllp_send's output into the MSA segments it received.
func msaSegments(out string) []string {
	var msa []string
	for _, seg := range strings.FieldsFunc(out, func(r rune) bool { return r == '\r' || r == '\n' || r == mllp.StartBlock || r == mllp.EndBlock }) {
		if strings.HasPrefix(seg, "MSA|") {
			msa = append(msa, seg)
		}
	}
	return msa
}

// TestHL7MLLPSend: mllp_send delivers the repository's ORU^R01; the
// listener answers AA with the message's control ID only once the message
// is stored as <sha256>.hl7 in the reports folder, where the report reader
// finds the same report as in the file; sending it again is acknowledged
// and leaves one file.
func TestHL7MLLPSend(t *testing.T) {
	s, dir := startTestHL7(t, nil)
	src := filepath.Join("..", "reports", "testdata", "oru_final.hl7")
	for i := 0; i < 2; i++ {
		out, err := mllpSend(t, s.addr, src)
		if err != nil {
			t.Fatalf("mllp_send: %v\n%s", err, out)
		}
		if msa := msaSegments(out); len(msa) != 1 || !strings.HasPrefix(msa[0], "MSA|AA|MSG00001") {
			t.Fatalf("send #%d: acknowledgements %q, want one MSA|AA|MSG00001", i+1, msa)
		}
	}
	orig, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.TrimRight(orig, "\r\n") // mllp_send --loose strips the trailing segment end
	sum := sha256.Sum256(want)
	files := hl7Files(t, dir)
	name := hex.EncodeToString(sum[:]) + ".hl7"
	if len(files) != 1 || !bytes.Equal(files[name], want) {
		t.Fatalf("reports folder holds %d files, want only %s with the message's bytes", len(files), name)
	}
	rd, err := reports.NewReader(reports.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := rd.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := rd.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(ref) != 1 || got[0].AccessionNumber != ref[0].AccessionNumber || got[0].StudyInstanceUID != ref[0].StudyInstanceUID ||
		got[0].Text != ref[0].Text || got[0].Status != ref[0].Status {
		t.Fatalf("stored report reads differently from the file")
	}
	checkHL7Metrics(t, s, map[string]float64{
		`tmcad_hl7_messages_total{ack="AA"}`: 2,
		`tmcad_hl7_messages_total{ack="AR"}`: 0,
		`tmcad_hl7_store_errors_total`:       0,
	})

	// With the reports folder gone the message cannot be stored: AR, so
	// that the sender sends it again.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if code := sendRaw(t, conn, string(orig)); code != mllp.AR {
		t.Fatalf("reports folder gone: %s, want AR", code)
	}
	checkHL7Metrics(t, s, map[string]float64{
		`tmcad_hl7_messages_total{ack="AA"}`: 2,
		`tmcad_hl7_messages_total{ack="AR"}`: 1,
		`tmcad_hl7_store_errors_total`:       1,
	})
}

// TestHL7Answers: several messages on one connection are each answered:
// AA for ORU^R01 of every accepted version, AR with ERR code for another
// type, event or version, AE for an ORU without result text; AR too for a
// message without MSH, a training message and one over
// hl7.max_message_bytes. The metrics count every answer and reason.
func TestHL7Answers(t *testing.T) {
	s, dir := startTestHL7(t, func(c *config.Config) { c.HL7.MaxMessageBytes = 1024 })
	oru := func(id, typ, version, obx string) string {
		return "MSH|^~\\&|RIS|H|TMCAD|H|20240315101500||" + typ + "|" + id + "|P|" + version + "\r" +
			"PID|1||P1^^^H^MR\rOBR|1|PLC|ACC" + id + "|71046^XR CHEST^CPT4|||20240315093000|||||||||||||||||F\r" + obx
	}
	text := "OBX|1|TX|18782-3^Study observation^LN||IMPRESSION: Left lower lobe opacity.||||||F\r"
	msgs := []struct{ msg, want string }{
		{oru("M1", "ORU^R01", "2.3", text), "MSA|AA|M1"},
		{oru("M2", "ORU^R01^ORU_R01", "2.4", text), "MSA|AA|M2"},
		{oru("M3", "ADT^A01", "2.5.1", text), "MSA|AR|M3|message type ADT is not accepted"},
		{oru("M4", "ORU^R30", "2.5.1", text), "MSA|AR|M4|event R30 is not accepted"},
		{oru("M5", "ORU^R01", "2.6", text), "MSA|AR|M5|HL7 version 2.6 is not accepted"},
		{oru("M6", "ORU^R01", "2.5", "OBX|1|NM|8867-4^Heart rate^LN||42||||||F\r"), "MSA|AE|M6|no result text"},
		{oru("M7", "ORU^R01", "2.3.1", text), "MSA|AA|M7"},
	}
	var file strings.Builder
	for _, m := range msgs {
		file.WriteString(m.msg + "\n")
	}
	path := filepath.Join(t.TempDir(), "batch.hl7")
	if err := os.WriteFile(path, []byte(file.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := mllpSend(t, s.addr, path)
	if err != nil {
		t.Fatalf("mllp_send: %v\n%s", err, out)
	}
	msa := msaSegments(out)
	if len(msa) != len(msgs) {
		t.Fatalf("%d acknowledgements, want %d: %q", len(msa), len(msgs), msa)
	}
	for i, m := range msgs {
		if !strings.HasPrefix(msa[i], m.want) {
			t.Errorf("message %d: %q, want %q…", i+1, msa[i], m.want)
		}
	}
	if strings.Count(out, "ERR|||200^") != 1 || strings.Count(out, "ERR|^^^203&") != 0 || !strings.Contains(out, "ERR|||203^") {
		t.Errorf("ERR segments do not carry the table 0357 codes:\n%q", out)
	}
	if n := len(hl7Files(t, dir)); n != 3 {
		t.Errorf("%d files stored, want 3 (the accepted messages only)", n)
	}

	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	long := "OBX|1|TX|18782-3^Study observation^LN||IMPRESSION: " + strings.Repeat("Left lower lobe opacity. ", 60) + "||||||F\r"
	for _, m := range []string{
		"PID|1||P1^^^H^MR\r",
		strings.Replace(oru("M8", "ORU^R01", "2.5", text), "|P|2.5", "|T|2.5", 1),
		oru("M9", "ORU^R01", "2.5", long),
	} {
		if code := sendRaw(t, conn, m); code != mllp.AR {
			t.Errorf("%.20q…: %s, want AR", m, code)
		}
	}
	checkHL7Metrics(t, s, map[string]float64{
		`tmcad_hl7_messages_total{ack="AA"}`:               3,
		`tmcad_hl7_messages_total{ack="AE"}`:               1,
		`tmcad_hl7_messages_total{ack="AR"}`:               6,
		`tmcad_hl7_rejected_total{reason="message_type"}`:  1,
		`tmcad_hl7_rejected_total{reason="event"}`:         1,
		`tmcad_hl7_rejected_total{reason="version"}`:       1,
		`tmcad_hl7_rejected_total{reason="parse"}`:         1,
		`tmcad_hl7_rejected_total{reason="no_msh"}`:        1,
		`tmcad_hl7_rejected_total{reason="processing_id"}`: 1,
		`tmcad_hl7_rejected_total{reason="too_large"}`:     1,
		`tmcad_hl7_store_errors_total`:                     0,
	})
}

// TestHL7AllowList: a sender outside hl7.allow is disconnected at once,
// unanswered, and nothing is stored; so is one over hl7.max_connections.
// The metrics count both refusals and the connection served.
func TestHL7AllowList(t *testing.T) {
	s, dir := startTestHL7(t, func(c *config.Config) {
		c.HL7.Allow = []string{"127.0.0.2/32"}
		c.HL7.MaxConnections = 1
	})
	out, _ := mllpSend(t, s.addr, filepath.Join("..", "reports", "testdata", "oru_final.hl7"))
	if len(msaSegments(out)) != 0 {
		t.Fatalf("a sender outside the allow-list was answered: %q", out)
	}
	if n := len(hl7Files(t, dir)); n != 0 {
		t.Fatalf("%d files stored from a refused sender", n)
	}
	// From an allowed address (loopback is 127.0.0.0/8) it is answered.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if code := sendRaw(t, conn, "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X1|P|2.5.1\r"); code != mllp.AR {
		t.Fatalf("allowed sender: %s, want AR", code)
	}
	// A second connection while the first is served is one too many.
	second, err := d.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	_ = second.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := second.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("connection over hl7.max_connections: read %d bytes, %v; want it closed (EOF)", n, err)
	}
	checkHL7Metrics(t, s, map[string]float64{
		`tmcad_hl7_connections_refused_total{reason="address"}`:         1,
		`tmcad_hl7_connections_refused_total{reason="max_connections"}`: 1,
		`tmcad_hl7_connections`:                           1,
		`tmcad_hl7_messages_total{ack="AR"}`:              1,
		`tmcad_hl7_rejected_total{reason="message_type"}`: 1,
	})
}

// sendRaw sends one message on conn and returns the acknowledgement code.
func sendRaw(t *testing.T, conn net.Conn, msg string) mllp.Code {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := mllp.WriteMessage(conn, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	ack, err := mllp.NewReader(conn, 0).ReadMessage()
	if err != nil {
		t.Fatalf("reading the acknowledgement: %v", err)
	}
	code, _, _, err := mllp.ParseAck(ack)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// TestHL7Connections: a sender that disconnects inside a message leaves
// nothing stored and the listener serving; an idle connection is closed
// after hl7.idle_timeout; many connections at once are all answered.
func TestHL7Connections(t *testing.T) {
	s, dir := startTestHL7(t, func(c *config.Config) { c.HL7.IdleTimeout = config.D(500 * time.Millisecond) })
	msg, err := os.ReadFile(filepath.Join("..", "reports", "testdata", "oru_final.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	// Mid-frame disconnect.
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(append([]byte{mllp.StartBlock}, msg[:len(msg)/2]...)); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	time.Sleep(200 * time.Millisecond)
	if n := len(hl7Files(t, dir)); n != 0 {
		t.Fatalf("%d files stored from a half message", n)
	}
	// Idle timeout.
	conn, err = net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err != io.EOF || time.Since(start) > 5*time.Second {
		t.Fatalf("idle connection: read %v after %v, want EOF after about 500ms", err, time.Since(start))
	}
	conn.Close()
	// Many connections, each with its own messages.
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := net.Dial("tcp", s.addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for j := 0; j < 3; j++ {
				m := bytes.Replace(msg, []byte("MSG00001"), []byte(fmt.Sprintf("C%02dM%d", i, j)), 1)
				_ = c.SetDeadline(time.Now().Add(20 * time.Second))
				if err := mllp.WriteMessage(c, m); err != nil {
					errs <- err
					return
				}
				ack, err := mllp.NewReader(c, 0).ReadMessage()
				if err != nil {
					errs <- err
					return
				}
				if code, id, _, err := mllp.ParseAck(ack); err != nil || code != mllp.AA || id != fmt.Sprintf("C%02dM%d", i, j) {
					errs <- fmt.Errorf("connection %d message %d: %s %s %v", i, j, code, id, err)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(hl7Files(t, dir)); n != 60 {
		t.Errorf("%d files stored, want 60", n)
	}
	// The half message was neither answered nor counted.
	checkHL7Metrics(t, s, map[string]float64{
		`tmcad_hl7_messages_total{ack="AA"}`: 60,
		`tmcad_hl7_messages_total{ack="AR"}`: 0,
	})
}

// TestHL7TLS: with hl7.tls_cert and hl7.tls_key the listener speaks MLLP
// over TLS only.
func TestHL7TLS(t *testing.T) {
	certPEM, keyPEM := selfSigned(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	s, rdir := startTestHL7(t, func(c *config.Config) { c.HL7.TLSCert, c.HL7.TLSKey = cert, key })
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	conn, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg, err := os.ReadFile(filepath.Join("..", "reports", "testdata", "oru_final.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	if code := sendRaw(t, conn, string(msg)); code != mllp.AA {
		t.Fatalf("over TLS: %s, want AA", code)
	}
	if n := len(hl7Files(t, rdir)); n != 1 {
		t.Fatalf("%d files stored, want 1", n)
	}
	// Plain MLLP gets no answer.
	plain, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	_ = plain.SetDeadline(time.Now().Add(5 * time.Second))
	_ = mllp.WriteMessage(plain, msg)
	if ack, err := mllp.NewReader(plain, 0).ReadMessage(); err == nil {
		t.Fatalf("plain MLLP answered on the TLS port: %q", ack)
	}
}

// selfSigned makes a certificate for 127.0.0.1 and its key, PEM.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tmcad test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}
