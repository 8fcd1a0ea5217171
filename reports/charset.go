package reports

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// utf8BOM is the byte order mark some editors put before UTF-8 text.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// decodeText decodes report bytes to a UTF-8 string: a UTF-8 BOM is
// dropped; valid UTF-8 is taken as is; otherwise CharsetLatin1 decodes as
// ISO 8859-1 and any other setting fails with an error naming the file and
// the offset of the first invalid byte.
func decodeText(name string, data []byte, cs Charset) (string, error) {
	data = bytes.TrimPrefix(data, utf8BOM)
	if utf8.Valid(data) {
		return string(data), nil
	}
	if cs == CharsetLatin1 {
		return decodeLatin1(data), nil
	}
	return "", fmt.Errorf("report %s: invalid UTF-8 at byte %d: save it as UTF-8, or set the reports charset to \"latin1\" if it is ISO 8859-1", name, invalidUTF8At(data))
}

// decodeLatin1 decodes ISO 8859-1 bytes, every one of which is valid.
func decodeLatin1(data []byte) string {
	out, err := charmap.ISO8859_1.NewDecoder().Bytes(data)
	if err != nil { // cannot happen: every byte is a Latin-1 character
		var b []rune
		for _, c := range data {
			b = append(b, rune(c))
		}
		return string(b)
	}
	return string(out)
}

// invalidUTF8At returns the offset of the first byte that is not part of
// valid UTF-8, or -1.
func invalidUTF8At(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return -1
}
