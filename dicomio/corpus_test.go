package dicomio

import (
	"strconv"
	"strings"
)

// decodeCorpusEntry reads a "go test fuzz v1" file holding one []byte.
func decodeCorpusEntry(b []byte) ([]byte, bool) {
	s := strings.TrimSpace(string(b))
	s, ok := strings.CutPrefix(s, "go test fuzz v1\n")
	if !ok {
		return nil, false
	}
	s, ok = strings.CutPrefix(strings.TrimSpace(s), "[]byte(")
	if !ok || !strings.HasSuffix(s, ")") {
		return nil, false
	}
	v, err := strconv.Unquote(strings.TrimSuffix(s, ")"))
	if err != nil {
		return nil, false
	}
	return []byte(v), true
}
