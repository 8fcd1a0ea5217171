package guide

import "slices"

// item is one unit of a sentence after lexicon matching: a phrase with its
// meanings, an unknown word, or a punctuation mark.
type item struct {
	words   []string
	entries []entry
	punct   rune
	typo    string // "lfet → left": a misspelt word and the lexicon word it was read as

	negated, uncertain, historical bool
}

func (it *item) is(k kind) bool {
	return slices.ContainsFunc(it.entries, func(e entry) bool { return e.kind == k })
}

func (it *item) get(k kind) (entry, bool) {
	for _, e := range it.entries {
		if e.kind == k {
			return e, true
		}
	}
	return entry{}, false
}

func (it *item) location() bool {
	return it.is(kindSide) || it.is(kindLevel) || it.is(kindZone)
}

// dropped reports whether a trigger's scope covers the item.
func (it *item) dropped() bool { return it.negated || it.uncertain || it.historical }

// items matches a sentence's words against the lexicon, longest phrase
// first, reading a misspelt word as the lexicon word it is a typo of.
func items(ts []token) []item {
	var out []item
	var words []string
	flushWords := func() {
		for i := 0; i < len(words); {
			es, n := lex.match(words, i)
			if n > 0 {
				out = append(out, item{words: words[i : i+n], entries: es})
				i += n
				continue
			}
			if es, w := lex.correct(words[i]); es != nil {
				// A corrected word may start a phrase ("lfet lower lobe").
				fixed := append([]string{w}, words[i+1:]...)
				if es2, n2 := lex.match(fixed, 0); n2 > 1 {
					out = append(out, item{words: words[i : i+n2], entries: es2, typo: words[i] + " → " + w})
					i += n2
					continue
				}
				out = append(out, item{words: words[i : i+1], entries: es, typo: words[i] + " → " + w})
				i++
				continue
			}
			// A misspelt word inside a phrase ("left lwoer lobe").
			if i+1 < len(words) {
				if es2, n2, typo := lex.matchWithTypo(words, i); n2 > 1 {
					out = append(out, item{words: words[i : i+n2], entries: es2, typo: typo})
					i += n2
					continue
				}
			}
			out = append(out, item{words: words[i : i+1]})
			i++
		}
		words = nil
	}
	for _, t := range ts {
		if t.word != "" {
			words = append(words, t.word)
			continue
		}
		flushWords()
		out = append(out, item{punct: t.punct})
	}
	flushWords()
	return out
}

// matchWithTypo finds the longest phrase starting at words[i] that matches
// after one of its later words is read as a typo; the typo is returned as
// "misspelt → lexicon word" for the explanation.
func (l *lexicon) matchWithTypo(words []string, i int) ([]entry, int, string) {
	for k := i + 1; k < len(words) && k < i+4; k++ {
		if _, ok := l.byFirst[words[k]]; ok {
			continue
		}
		if _, exact := l.single[words[k]]; exact {
			continue
		}
		_, w := l.correct(words[k])
		if w == "" {
			continue
		}
		fixed := slices.Clone(words[i:])
		fixed[k-i] = w
		if es, n := l.match(fixed, 0); n > k-i {
			return es, n, words[k] + " → " + w
		}
	}
	return nil, 0, ""
}

// scope marks the items each trigger covers. A pre-trigger covers what
// follows it up to a terminator or the end of the sentence (history up to
// a comma too); a post-trigger covers what precedes it back to a
// terminator, the start of the sentence, or a comma that ends a clause
// naming its own subject. A sentence that says a finding persists is not
// historical.
func scope(its []item) {
	persists := slices.ContainsFunc(its, func(it item) bool { return it.is(kindPersist) })
	for i := range its {
		switch {
		case its[i].is(kindNegPre):
			forward(its, i, false, func(it *item) { it.negated = true })
		case its[i].is(kindUncPre):
			forward(its, i, false, func(it *item) { it.uncertain = true })
		case its[i].is(kindHistPre) && !persists:
			forward(its, i, true, func(it *item) { it.historical = true })
		}
		switch {
		case its[i].is(kindNegPost):
			backward(its, i, func(it *item) { it.negated = true })
		case its[i].is(kindUncPost):
			backward(its, i, func(it *item) { it.uncertain = true })
		}
	}
}

func forward(its []item, i int, stopAtComma bool, mark func(*item)) {
	for j := i + 1; j < len(its); j++ {
		if its[j].is(kindTerm) || (stopAtComma && its[j].punct == ',') {
			return
		}
		mark(&its[j])
	}
}

func backward(its []item, i int, mark func(*item)) {
	subject := false
	for j := i - 1; j >= 0; j-- {
		it := &its[j]
		if it.is(kindTerm) {
			return
		}
		if it.punct == ',' && subject {
			return
		}
		if it.location() || it.is(kindFinding) || it.is(kindOther) || it.is(kindLungword) {
			subject = true
		}
		mark(it)
	}
}
