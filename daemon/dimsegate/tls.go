package dimsegate

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
)

// tlsRecordHandshake is the TLS record content type of a handshake
// message: the first byte a TLS client sends.
const tlsRecordHandshake = 0x16

// ServerTLSConfig returns the TLS configuration of a gate that terminates
// DICOM TLS (PS3.15 Annex B, the secure transport connection profiles):
// TLS 1.2 or later, the certificate and private key from the PEM files
// certFile and keyFile, and, when clientCAFile is not empty, mutual TLS:
// every client must present a certificate that chains to one of the CA
// certificates in that PEM bundle.
func ServerTLSConfig(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("dicom gate: TLS needs both a certificate and a private key file")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("dicom gate: TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}
	if clientCAFile != "" {
		pem, err := os.ReadFile(clientCAFile)
		if err != nil {
			return nil, fmt.Errorf("dicom gate: TLS client CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("dicom gate: TLS client CA bundle %s: no PEM certificate in it", clientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// replayConn is a connection whose first bytes, already read to tell TLS
// from plaintext, are read again before the rest.
type replayConn struct {
	net.Conn
	r io.Reader
}

// Read reads the replayed bytes, then the connection.
func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// startTLS reads the first byte of c (within the deadline already set)
// and, when it opens a TLS handshake, completes the handshake and returns
// the TLS connection. Anything else is refused: a plaintext
// A-ASSOCIATE-RQ is read to name its AE titles in the log and answered
// with A-ASSOCIATE-RJ, so that a sender configured without TLS sees a
// rejection instead of a reset. It returns nil when the connection was
// refused (logged and counted).
func (g *Gate) startTLS(c net.Conn) *tls.Conn {
	var first [1]byte
	if _, err := io.ReadFull(c, first[:]); err != nil {
		msg := errNoRequest.Error()
		if !errors.Is(err, io.EOF) {
			msg = "waiting for the TLS handshake: " + err.Error()
		}
		g.refuse(c, ReasonNoRequest, nil, msg)
		return nil
	}
	rc := &replayConn{Conn: c, r: io.MultiReader(bytes.NewReader(first[:]), c)}
	if first[0] != tlsRecordHandshake {
		var rq *AssociateRQ
		if first[0] == PDUAssociateRQ {
			rq, _ = ReadAssociateRQ(rc)
		}
		g.refuse(c, ReasonTLS, rq, "plaintext connection on the TLS port (the sender must use TLS)")
		if rq != nil {
			g.answer(c, AssociateRJ(RJRejectedPermanent, RJSourceServiceUser, RJReasonNoReason))
		}
		return nil
	}
	tc := tls.Server(rc, g.cfg.TLS)
	if err := tc.Handshake(); err != nil {
		g.refuse(c, ReasonTLS, nil, "TLS handshake failed: "+strings.TrimPrefix(err.Error(), "remote error: "))
		return nil
	}
	return tc
}

// clientSubject is the subject of the client's verified certificate, or
// "" without one.
func clientSubject(tc *tls.Conn) string {
	st := tc.ConnectionState()
	if len(st.PeerCertificates) == 0 {
		return ""
	}
	return st.PeerCertificates[0].Subject.String()
}
