package testpeers

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a throwaway certificate authority generated for one test and the
// server and client certificates it issued, written as PEM files into a
// temporary folder that is removed when the test ends.
type PKI struct {
	// CA is the path of the CA certificate.
	CA string
	// ServerCert and ServerKey are the paths of the server certificate
	// (for 127.0.0.1 and localhost) and of its PKCS #8 private key.
	ServerCert, ServerKey string
	// ClientCert and ClientKey are the paths of the client certificate
	// and of its PKCS #8 private key.
	ClientCert, ClientKey string
	// Pool holds the CA certificate, for a Go client's RootCAs.
	Pool *x509.CertPool
}

// NewPKI generates an ECDSA P-256 CA with common name ca, and issues from
// it a server certificate with common name server (serverAuth, valid for
// 127.0.0.1 and localhost) and a client certificate with common name
// client (clientAuth), valid from an hour ago for a day. Two PKIs from
// two calls share nothing, so one can play a CA the other does not trust.
func NewPKI(t testing.TB, ca, server, client string) *PKI {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(file, typ string, der []byte) string {
		p := filepath.Join(dir, file)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: ca},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, prefix string) (string, string) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(prefix+".pem", "CERTIFICATE", der), write(prefix+"-key.pem", "PRIVATE KEY", kder)
	}
	p := &PKI{CA: write("ca.pem", "CERTIFICATE", caDER), Pool: x509.NewCertPool()}
	p.Pool.AddCert(caCert)
	p.ServerCert, p.ServerKey = issue(2, server, x509.ExtKeyUsageServerAuth, "server")
	p.ClientCert, p.ClientKey = issue(3, client, x509.ExtKeyUsageClientAuth, "client")
	return p
}

// ClientTLS is a Go client configuration (TLS 1.2 or later) for a server
// at 127.0.0.1 that trusts p's CA and presents the client certificate of
// withCert, or none when withCert is nil.
func (p *PKI) ClientTLS(t testing.TB, withCert *PKI) *tls.Config {
	t.Helper()
	cfg := &tls.Config{RootCAs: p.Pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if withCert != nil {
		c, err := tls.LoadX509KeyPair(withCert.ClientCert, withCert.ClientKey)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg
}
