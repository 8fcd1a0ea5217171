package reports

import (
	"unicode"
	"unicode/utf8"
)

// This file holds the character classes of BERT's BasicTokenizer
// (google-research/bert tokenization.py, as in Hugging Face's
// BertTokenizer), written to give the same answers as the Python reference.

// isBertControl reports whether r is dropped by BERT's clean-text step:
// NUL, U+FFFD, and the characters of category Cc or Cf except tab, newline
// and carriage return (google-research/bert's _is_control; unassigned and
// private-use code points are kept).
func isBertControl(r rune) bool {
	if r < utf8.RuneSelf {
		return (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f
	}
	if r == utf8.RuneError {
		return true
	}
	return unicode.In(r, unicode.Cc, unicode.Cf)
}

// isBertSpace reports whether r separates words. BERT's clean-text step
// turns space, tab, newline, carriage return and every Zs character into a
// space; Python's str.split() then also splits on U+2028 and U+2029, which
// survive cleaning.
func isBertSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r', 0x2028, 0x2029:
		return true
	}
	return r >= 0x80 && unicode.Is(unicode.Zs, r)
}

// isBertPunct reports whether r is split off as its own token: the ASCII
// non-alphanumeric printable characters, and every Unicode "P*" character.
func isBertPunct(r rune) bool {
	if (r >= 33 && r <= 47) || (r >= 58 && r <= 64) || (r >= 91 && r <= 96) || (r >= 123 && r <= 126) {
		return true
	}
	return r >= 0x80 && unicode.In(r, unicode.P)
}

// isBertCJK reports whether r is in BERT's CJK Unified Ideographs blocks,
// each of which becomes a word of its own.
func isBertCJK(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) ||
		(r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) ||
		(r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) ||
		(r >= 0x2B820 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) ||
		(r >= 0x2F800 && r <= 0x2FA1F)
}

// isCased is Unicode's Cased property (Lowercase, Uppercase or Lt), used for
// Python's Final_Sigma rule in str.lower().
func isCased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) ||
		unicode.In(r, unicode.Other_Lowercase, unicode.Other_Uppercase)
}

// isCaseIgnorable is Unicode's Case_Ignorable property (Mn, Me, Cf, Lm, Sk,
// and the Word_Break classes MidLetter, MidNumLet and Single_Quote).
func isCaseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', 0x00B7, 0x0387, 0x055F, 0x05F4, 0x2018, 0x2019, 0x2024,
		0x2027, 0xFE13, 0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}

// appendPyLower appends Python's str.lower() of the UTF-8 word src to dst:
// simple lower-case mappings plus the two rules where Python differs, U+0130
// (to "i" + U+0307) and the final form of capital sigma.
func appendPyLower(dst, src []byte) []byte {
	for i := 0; i < len(src); {
		c := src[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(src[i:])
		switch r {
		case 0x0130:
			dst = append(dst, 'i', 0xCC, 0x87)
		case 0x03A3:
			dst = utf8.AppendRune(dst, sigmaLower(src, i, size))
		default:
			dst = utf8.AppendRune(dst, unicode.ToLower(r))
		}
		i += size
	}
	return dst
}

// sigmaLower returns the lower case of the capital sigma at src[i:i+size]:
// final sigma when a cased letter precedes it and none follows (skipping
// case-ignorable characters), as CPython's handle_capital_sigma does.
func sigmaLower(src []byte, i, size int) rune {
	final := false
	for j := i; j > 0; {
		r, n := utf8.DecodeLastRune(src[:j])
		j -= n
		if !isCaseIgnorable(r) {
			final = isCased(r)
			break
		}
	}
	if final {
		for j := i + size; j < len(src); {
			r, n := utf8.DecodeRune(src[j:])
			j += n
			if !isCaseIgnorable(r) {
				final = !isCased(r)
				break
			}
		}
	}
	if final {
		return 0x03C2
	}
	return 0x03C3
}

// appendDropMn appends src without its nonspacing marks (category Mn).
func appendDropMn(dst, src []byte) []byte {
	for i := 0; i < len(src); {
		if src[i] < utf8.RuneSelf {
			dst = append(dst, src[i])
			i++
			continue
		}
		r, size := utf8.DecodeRune(src[i:])
		if !unicode.Is(unicode.Mn, r) {
			dst = append(dst, src[i:i+size]...)
		}
		i += size
	}
	return dst
}

// isASCII reports whether b holds only ASCII bytes.
func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
