package config

import (
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
)

// HL7AllowPrefixes parses hl7.allow: CIDR ranges, or single addresses
// (taken as /32 or /128). IPv4-mapped IPv6 forms are unmapped, so that
// "127.0.0.1/32" matches a client the kernel reports as ::ffff:127.0.0.1.
func HL7AllowPrefixes(allow []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(allow))
	for _, a := range allow {
		s := strings.TrimSpace(a)
		var p netip.Prefix
		if strings.Contains(s, "/") {
			v, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, errors.New("hl7.allow: " + quote(a) + " is not an address range (CIDR, e.g. \"10.1.2.0/24\") nor an address")
			}
			p = v.Masked()
		} else {
			ip, err := netip.ParseAddr(s)
			if err != nil {
				return nil, errors.New("hl7.allow: " + quote(a) + " is not an address range (CIDR, e.g. \"10.1.2.0/24\") nor an address")
			}
			p = netip.PrefixFrom(ip, ip.BitLen())
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p)
	}
	return out, nil
}

// quote writes s in double quotes for an error.
func quote(s string) string { return "\"" + strings.ReplaceAll(s, "\"", "\\\"") + "\"" }

// validateHL7 checks the [hl7] keys.
func (c *Config) validateHL7(bad func(key, want string, got any), add func(error)) {
	h := c.HL7
	add(h.IdleTimeout.check("hl7.idle_timeout", false))
	if h.MaxConnections < 1 {
		bad("hl7.max_connections", "must be >= 1", h.MaxConnections)
	}
	if h.MaxMessageBytes < 1024 || h.MaxMessageBytes > 256<<20 {
		bad("hl7.max_message_bytes", "must be between 1024 and 268435456", h.MaxMessageBytes)
	}
	if _, err := HL7AllowPrefixes(h.Allow); err != nil {
		add(err)
	}
	if (h.TLSCert == "") != (h.TLSKey == "") {
		bad("hl7.tls_cert, hl7.tls_key", "give both (PEM files) to turn on TLS, or neither", h.TLSCert+", "+h.TLSKey)
	}
	if h.Listen == "" {
		return
	}
	if _, _, err := net.SplitHostPort(h.Listen); err != nil {
		bad("hl7.listen", "must be host:port (e.g. \"127.0.0.1:2575\")", h.Listen)
	}
	if len(h.Allow) == 0 {
		bad("hl7.allow", "must list at least one address range when hl7.listen is set (every sender would be refused)", "[]")
	}
	// Messages are stored as report files in the reports folder; a folder
	// shared with DICOM files would read them as unreadable DICOM.
	if c.Watch.ReportsDir == "" || filepath.Clean(c.Watch.ReportsDir) == filepath.Clean(c.Watch.DICOMDir) {
		bad("watch.reports_dir", "must be set, and differ from watch.dicom_dir, when hl7.listen is set (received reports are stored there)", c.Watch.ReportsDir)
	}
}

// validAETitle reports whether s is a usable DICOM AE title: 1 to 16
// characters of the default repertoire without backslash, not only spaces.
func validAETitle(s string) bool {
	if len(s) == 0 || len(s) > 16 || strings.TrimSpace(s) == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' || s[i] == '\\' {
			return false
		}
	}
	return true
}
