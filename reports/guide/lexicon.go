package guide

import (
	_ "embed"
	"fmt"
	"slices"
	"sort"
	"strings"
)

//go:embed lexicon.txt
var lexiconText string

// kind is what a lexicon phrase means to the normaliser.
type kind uint8

const (
	kindNegPre kind = iota + 1
	kindNegPost
	kindUncPre
	kindUncPost
	kindHistPre
	kindPersist
	kindHedge
	kindPseudo
	kindTerm
	kindFinding
	kindOther
	kindSide
	kindLevel
	kindZone
	kindLungword
)

var kindNames = map[string]kind{
	"neg-pre": kindNegPre, "neg-post": kindNegPost, "unc-pre": kindUncPre, "unc-post": kindUncPost,
	"hist-pre": kindHistPre, "persist": kindPersist, "hedge": kindHedge, "pseudo": kindPseudo,
	"term": kindTerm, "finding": kindFinding, "other": kindOther, "side": kindSide,
	"level": kindLevel, "zone": kindZone, "lungword": kindLungword,
}

// entry is one lexicon line: a phrase and its meaning.
type entry struct {
	kind  kind
	side  Side
	level Level
	words []string
}

// lexicon indexes the entries by their first word, longest phrase first.
type lexicon struct {
	byFirst map[string][]entry
	// single holds the one-word entries, the candidates of typo matching.
	single map[string][]entry
	// stop holds English words that look like typos of lexicon words.
	stop map[string]bool
}

// lex is the lexicon of lexicon.txt, parsed once.
var lex = mustParseLexicon(lexiconText)

func mustParseLexicon(text string) *lexicon {
	l, err := parseLexicon(text)
	if err != nil {
		panic(err)
	}
	return l
}

// parseLexicon reads the KIND <tab> [VALUE <tab>] phrase lines.
func parseLexicon(text string) (*lexicon, error) {
	l := &lexicon{byFirst: map[string][]entry{}, single: map[string][]entry{}, stop: map[string]bool{}}
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if f[0] == "stop" && len(f) == 2 {
			l.stop[f[1]] = true
			continue
		}
		k, ok := kindNames[f[0]]
		if !ok {
			return nil, fmt.Errorf("lexicon.txt:%d: unknown kind %q", n+1, f[0])
		}
		e := entry{kind: k}
		phrase := f[len(f)-1]
		switch k {
		case kindSide, kindLevel, kindZone:
			if len(f) != 3 {
				return nil, fmt.Errorf("lexicon.txt:%d: %s needs a value and a phrase", n+1, f[0])
			}
			for _, v := range strings.Fields(f[1]) {
				if s, ok := parseSide(v); ok {
					e.side = s
				} else if lv, ok := parseLevel(v); ok {
					e.level = lv
				} else {
					return nil, fmt.Errorf("lexicon.txt:%d: unknown value %q", n+1, v)
				}
			}
		default:
			if len(f) != 2 {
				return nil, fmt.Errorf("lexicon.txt:%d: want KIND<tab>phrase", n+1)
			}
		}
		e.words = strings.Fields(phrase)
		if len(e.words) == 0 {
			return nil, fmt.Errorf("lexicon.txt:%d: empty phrase", n+1)
		}
		l.byFirst[e.words[0]] = append(l.byFirst[e.words[0]], e)
		if len(e.words) == 1 {
			l.single[e.words[0]] = append(l.single[e.words[0]], e)
		}
	}
	for w, es := range l.byFirst {
		sort.SliceStable(es, func(i, j int) bool { return len(es[i].words) > len(es[j].words) })
		l.byFirst[w] = es
	}
	return l, nil
}

// match returns the entries of the longest phrase that starts at words[i]
// (all entries of that length: a phrase can have several meanings), and
// its length in words; 0 when no phrase starts there.
func (l *lexicon) match(words []string, i int) ([]entry, int) {
	for _, e := range l.byFirst[words[i]] {
		n := len(e.words)
		if i+n > len(words) {
			continue
		}
		ok := true
		for k := 1; k < n; k++ {
			if words[i+k] != e.words[k] {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		var out []entry
		for _, e2 := range l.byFirst[words[i]] {
			if slices.Equal(e2.words, words[i:i+n]) {
				out = append(out, e2)
			}
		}
		return out, n
	}
	return nil, 0
}
