package guide

// A report word that is no lexicon word may be a typo of one: "lfet",
// "lwoer", "opacty". It is read as the lexicon word it is closest to when
// that word is unique, the distance is small for the word's length, and the
// report word is not an English word of its own (the lexicon's stop list:
// "light" is no typo of "right", "basis" none of "bases") and keeps the
// word's first letter.

// maxTypoDistance is the largest edit distance accepted for a lexicon word
// of n letters: none below 4 letters, 1 up to 7, 2 from 8.
func maxTypoDistance(n int) int {
	switch {
	case n < 4:
		return 0
	case n < 8:
		return 1
	}
	return 2
}

// correct returns the one-word lexicon entries that word is a typo of, and
// the lexicon word; nil when it is none, or when two different meanings
// are equally close (a typo never decides between them, so never invents a
// side).
func (l *lexicon) correct(word string) ([]entry, string) {
	if len(word) < 4 || l.stop[word] || !isLetters(word) {
		return nil, ""
	}
	best, bestWord, ambiguous := 3, "", false
	for cand := range l.single {
		max := maxTypoDistance(len(cand))
		if max == 0 || abs(len(cand)-len(word)) > max {
			continue
		}
		d := editDistance(word, cand, max)
		if d > max || d == 0 || !sameStart(word, cand) {
			continue
		}
		switch {
		case d < best:
			best, bestWord, ambiguous = d, cand, false
		case d == best && !sameMeaning(l.single[cand], l.single[bestWord]):
			ambiguous = true
		case d == best && cand < bestWord:
			bestWord = cand
		}
	}
	if bestWord == "" || ambiguous {
		return nil, ""
	}
	return l.single[bestWord], bestWord
}

// sameStart reports whether a typo keeps its word's first letter, or
// swaps its first two ("lfet" for "left" keeps it, "elft" swaps): a typo
// that changes the first letter is too often another word ("lateral" is no
// "bilateral").
func sameStart(word, cand string) bool {
	if word[0] == cand[0] {
		return true
	}
	return len(word) > 1 && len(cand) > 1 && word[0] == cand[1] && word[1] == cand[0]
}

// sameMeaning reports whether two lists of entries mean the same thing
// ("opacity" and "opacities" are both a finding).
func sameMeaning(a, b []entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].kind != b[i].kind || a[i].side != b[i].side || a[i].level != b[i].level {
			return false
		}
	}
	return true
}

// editDistance is the optimal-string-alignment distance (insertions,
// deletions, substitutions and transpositions of adjacent letters) between
// a and b, or max+1 once it is certain to exceed max.
func editDistance(a, b string, max int) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			v := min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				v = min(v, prev2[j-2]+1)
			}
			cur[j] = v
			rowMin = min(rowMin, v)
		}
		if rowMin > max {
			return max + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

func isLetters(s string) bool {
	for _, r := range s {
		if r < 'a' || r > 'z' {
			return false
		}
	}
	return true
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
