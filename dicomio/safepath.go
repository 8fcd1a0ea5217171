package dicomio

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// MaxPathComponent is the longest string SafePathComponent returns.
const MaxPathComponent = 64

// SafePathComponent turns a DICOM attribute (a UID, an accession number, a
// series description) into one safe file or directory name: only ASCII
// letters, digits, '.', '-' and '_' survive (anything else, including '/',
// '\', NUL and control characters, becomes '_'); a name that would be empty,
// "." or "..", or start with '.', is prefixed with '_'; and a name longer
// than MaxPathComponent bytes is cut and suffixed with a hash of the
// original, so that distinct long values stay distinct. The result never
// escapes the directory it is joined to.
func SafePathComponent(s string) string {
	var b strings.Builder
	b.Grow(min(len(s), MaxPathComponent+1))
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := b.String()
	if out == "" || out[0] == '.' {
		out = "_" + out
	}
	if len(out) > MaxPathComponent {
		sum := sha256.Sum256([]byte(s))
		out = out[:MaxPathComponent-17] + "-" + hex.EncodeToString(sum[:8])
	}
	return out
}
