// Package webclient holds what the DICOMweb clients (the STOW-RS archive
// sink and the QIDO/WADO puller) share about reaching a server: its base
// URL checked, basic or bearer authentication, TLS with extra trusted CAs,
// and short descriptions of network errors. Credentials never appear in
// its errors.
package webclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
)

// Endpoint is a server's base URL and how to authenticate to it.
type Endpoint struct {
	// BaseURL is the server's root, e.g. "https://pacs.example/dicom-web";
	// it must not hold credentials.
	BaseURL string
	// Username and Password select HTTP basic authentication.
	Username, Password string
	// BearerToken selects bearer authentication (not with Username).
	BearerToken string
	// CAFile is a PEM bundle of CAs trusted beside the system's.
	CAFile string
	// InsecureSkipVerify accepts any server certificate (testing only).
	InsecureSkipVerify bool
	// Transport replaces the HTTP transport (tests); CAFile and
	// InsecureSkipVerify are then ignored.
	Transport http.RoundTripper
}

// Check validates the base URL and the authentication settings and
// returns the parsed URL. Its errors name the URL without user
// information or query.
func (e Endpoint) Check() (*url.URL, error) {
	u, err := url.Parse(e.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("base URL %q must be an http(s) URL", RedactURL(e.BaseURL))
	}
	if u.User != nil {
		return nil, errors.New("the base URL must not hold credentials; give a username and password, or a bearer token")
	}
	if e.BearerToken != "" && (e.Username != "" || e.Password != "") {
		return nil, errors.New("give either a username and password or a bearer token, not both")
	}
	if e.Password != "" && e.Username == "" {
		return nil, errors.New("a password is set without a username")
	}
	return u, nil
}

// RoundTripper returns e.Transport, or a clone of the default transport
// that requires TLS 1.2 and trusts CAFile's certificates beside the
// system pool.
func (e Endpoint) RoundTripper() (http.RoundTripper, error) {
	if e.Transport != nil {
		return e.Transport, nil
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: e.InsecureSkipVerify}
	if e.CAFile != "" {
		pem, err := os.ReadFile(e.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %q holds no PEM certificate", e.CAFile)
		}
		tc.RootCAs = pool
	}
	t.TLSClientConfig = tc
	return t, nil
}

// Authorize sets req's Authorization header: bearer when a token is set,
// else basic when a username is.
func (e Endpoint) Authorize(req *http.Request) {
	switch {
	case e.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+e.BearerToken)
	case e.Username != "":
		req.SetBasicAuth(e.Username, e.Password)
	}
}

// RedactURL drops user information and the query from a URL, for
// messages and names.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	u.User = nil
	u.RawQuery = ""
	return u.String()
}

// DescribeNetError is a connection error in a few words: "timed out", or
// the cause inside a *url.Error (which would repeat the method and URL).
func DescribeNetError(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}
