package guide

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"tmcad/reports"
)

// part is a stretch of report text under one heading ("" before the first
// heading, or in a report without headings).
type part struct {
	section string
	lines   []string
}

// splitParts cuts text at its section headings, keeping line breaks.
func splitParts(text string) []part {
	text = strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\r", "\n")
	parts := []part{{}}
	for _, line := range strings.Split(text, "\n") {
		if name, rest, ok := reports.ParseHeading(line); ok {
			parts = append(parts, part{section: name, lines: []string{rest}})
			continue
		}
		parts[len(parts)-1].lines = append(parts[len(parts)-1].lines, line)
	}
	return parts
}

// token is a word (lower case, accents removed) or one punctuation mark.
type token struct {
	word  string // "" for punctuation
	punct rune   // 0 for a word; '\n' for a line break
	upper bool   // the word starts with an upper-case letter in the report
	caps  bool   // the word is all upper case in the report (and has 2+ letters)
}

// tokenize splits text into words and punctuation. Letters and digits make
// words; a decimal point between digits stays in its number; "?" directly
// before a letter reads as the word "query" (the "?consolidation" of
// British reports); "r/o", "h/o" and "s/p" read as their phrases.
func tokenize(text string) []token {
	text = norm.NFD.String(text)
	var out []token
	rs := []rune(text)
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case unicode.Is(unicode.Mn, r):
			i++
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			j := i
			var b strings.Builder
			letters, uppers := 0, 0
			for j < len(rs) {
				c := rs[j]
				if unicode.Is(unicode.Mn, c) {
					j++
					continue
				}
				if c == '.' && j > i && j+1 < len(rs) && unicode.IsDigit(rs[j-1]) && unicode.IsDigit(rs[j+1]) {
					b.WriteRune(c)
					j++
					continue
				}
				if !unicode.IsLetter(c) && !unicode.IsDigit(c) {
					break
				}
				if unicode.IsLetter(c) {
					letters++
					if unicode.IsUpper(c) {
						uppers++
					}
				}
				b.WriteRune(unicode.ToLower(c))
				j++
			}
			w := b.String()
			out = append(out, token{word: w, upper: unicode.IsUpper(r), caps: letters >= 2 && uppers == letters})
			i = j
		case r == '?' && i+1 < len(rs) && unicode.IsLetter(rs[i+1]):
			out = append(out, token{word: "query"})
			i++
		case unicode.IsSpace(r) && r != '\n':
			i++
		default:
			out = append(out, token{punct: r})
			i++
		}
	}
	return expandShorthand(out)
}

// shorthand maps "x/y" abbreviations to their phrases.
var shorthand = map[string][]string{
	"r/o": {"rule", "out"}, "h/o": {"history", "of"}, "s/p": {"status", "post"},
}

func expandShorthand(ts []token) []token {
	out := ts[:0:0]
	for i := 0; i < len(ts); i++ {
		if i+2 < len(ts) && ts[i].word != "" && ts[i+1].punct == '/' && ts[i+2].word != "" {
			if ws, ok := shorthand[ts[i].word+"/"+ts[i+2].word]; ok {
				for _, w := range ws {
					out = append(out, token{word: w})
				}
				i += 2
				continue
			}
		}
		out = append(out, ts[i])
	}
	return out
}

// abbreviations end with a full stop that does not end the sentence.
var abbreviations = map[string]bool{
	"approx": true, "vs": true, "dr": true, "cf": true, "fig": true, "eg": true, "ie": true,
	"incl": true, "resp": true, "mr": true, "mrs": true, "ms": true, "prof": true, "st": true,
}

// sentences splits the tokens of one part into sentences. A sentence ends
// at ".", "!", "?" or ";", except a full stop after an abbreviation or a
// single letter ("e.g.") or one followed by a lower-case word in a report
// that uses lower case; and at a line break unless the next line continues
// in lower case. List markers ("1.", "2)", "-", "*", "•") at the start of
// a sentence are dropped.
func sentences(ts []token) [][]token {
	mixedCase := false
	for _, t := range ts {
		if t.word != "" && !t.caps && hasLetter(t.word) {
			mixedCase = true
			break
		}
	}
	var out [][]token
	var cur []token
	flush := func() {
		cur = dropListMarker(cur)
		if hasWord(cur) {
			out = append(out, cur)
		}
		cur = nil
	}
	for i, t := range ts {
		switch t.punct {
		case '.':
			if len(cur) == 1 && isNumber(cur[0].word) && len(cur[0].word) <= 2 {
				continue // "1." of a numbered list
			}
			prev := lastWord(cur)
			next, _ := nextWord(ts, i+1)
			if abbreviations[prev] || (len([]rune(prev)) == 1 && isLetters(prev)) ||
				(mixedCase && next.word != "" && !next.upper && !isNumber(next.word)) {
				continue
			}
			flush()
		case '!', '?', ';':
			flush()
		case '\n':
			next, ok := nextWord(ts, i+1)
			if ok && mixedCase && next.word != "" && !next.upper && !isNumber(next.word) {
				continue
			}
			flush()
		default:
			cur = append(cur, t)
		}
	}
	flush()
	return out
}

// nextWord returns the next token after i that is not a line break.
func nextWord(ts []token, i int) (token, bool) {
	for ; i < len(ts); i++ {
		if ts[i].punct != '\n' {
			return ts[i], true
		}
	}
	return token{}, false
}

func lastWord(ts []token) string {
	if len(ts) > 0 {
		return ts[len(ts)-1].word
	}
	return ""
}

// dropListMarker removes "1." / "2)" / "-" / "*" / "•" at the start of a
// sentence (the full stop of "1." has already ended the previous one).
func dropListMarker(ts []token) []token {
	for len(ts) > 0 {
		switch {
		case ts[0].punct == '-' || ts[0].punct == '*' || ts[0].punct == '•' || ts[0].punct == ')' || ts[0].punct == ':':
			ts = ts[1:]
		case len(ts) > 1 && isNumber(ts[0].word) && len(ts[0].word) <= 2 && (ts[1].punct == ')' || ts[1].punct == '.'):
			ts = ts[2:]
		case len(ts) > 0 && isNumber(ts[0].word) && len(ts[0].word) <= 2 && len(ts) > 1 && ts[1].word != "" && !isNumber(ts[1].word) && ts[1].upper:
			ts = ts[1:]
		default:
			return ts
		}
	}
	return ts
}

func hasWord(ts []token) bool {
	for _, t := range ts {
		if t.word != "" {
			return true
		}
	}
	return false
}

func hasLetter(s string) bool {
	for _, r := range s {
		if unicode.IsLetter(r) {
			return true
		}
	}
	return false
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !unicode.IsDigit(r) && r != '.' {
			return false
		}
	}
	return true
}
