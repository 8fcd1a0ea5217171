package reports

import (
	"fmt"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MaxWordRunes is the longest word (in characters) that WordPiece splits;
// a longer word becomes a single [UNK], as in BERT.
const MaxWordRunes = 100

// Tokenizer is BERT's BasicTokenizer followed by greedy longest-match-first
// WordPiece, encoding a text as [CLS] tokens… [SEP] [PAD]… of a fixed length
// with its attention mask (docs/CONTRACTS.md). It is safe for concurrent use.
type Tokenizer struct {
	vocab        *Vocab
	lowerCase    bool
	stripAccents bool
	maxLen       int
	pad, unk     int64
	cls, sep     int64
	pool         sync.Pool // of *tokScratch
}

// tokScratch holds the buffers of one encoding, reused across calls so that
// EncodeInto does not allocate in steady state.
type tokScratch struct {
	word  []byte    // current whitespace-delimited word, cleaned
	lower []byte    // word lower-cased
	strip []byte    // word without nonspacing marks
	iter  norm.Iter // NFD iterator, kept here because it is large
	key   []byte    // "##" + sub-word, for vocabulary look-up
	offs  []int     // byte offsets of the runes of a piece
	sub   []int64   // ids of the current piece
	out   []int64   // ids produced so far
	limit int       // stop after this many ids
}

// NewTokenizer returns a tokenizer over vocab. lowerCase and stripAccents
// follow the model manifest's tokenizer settings; maxLen is the encoded
// length including [CLS] and [SEP] and must be at least 2.
func NewTokenizer(vocab *Vocab, lowerCase, stripAccents bool, maxLen int) (*Tokenizer, error) {
	if vocab == nil {
		return nil, fmt.Errorf("new tokenizer: nil vocab")
	}
	if maxLen < 2 {
		return nil, fmt.Errorf("new tokenizer: max length %d is below 2 (room for [CLS] and [SEP])", maxLen)
	}
	t := &Tokenizer{vocab: vocab, lowerCase: lowerCase, stripAccents: stripAccents, maxLen: maxLen}
	t.pad, _ = vocab.ID(TokenPad)
	t.unk, _ = vocab.ID(TokenUnk)
	t.cls, _ = vocab.ID(TokenCLS)
	t.sep, _ = vocab.ID(TokenSep)
	t.pool.New = func() any {
		return &tokScratch{out: make([]int64, 0, maxLen), offs: make([]int, 0, MaxWordRunes+1)}
	}
	return t, nil
}

// MaxLen returns the encoded length, [CLS] and [SEP] included.
func (t *Tokenizer) MaxLen() int { return t.maxLen }

// Vocab returns the tokenizer's vocabulary.
func (t *Tokenizer) Vocab() *Vocab { return t.vocab }

// Encode returns the input ids and attention mask of text, each of length
// MaxLen.
func (t *Tokenizer) Encode(text string) (ids []int64, mask []int64) {
	ids = make([]int64, t.maxLen)
	mask = make([]int64, t.maxLen)
	t.encode(text, ids, mask)
	return ids, mask
}

// EncodeInto writes the input ids and attention mask of text into ids and
// mask, which must both have length MaxLen (for example rows of a batch
// tensor), and returns the number of real tokens ([CLS] and [SEP]
// included). It does not allocate in steady state.
func (t *Tokenizer) EncodeInto(text string, ids, mask []int64) (int, error) {
	if len(ids) != t.maxLen || len(mask) != t.maxLen {
		return 0, fmt.Errorf("encode: ids and mask have lengths %d and %d, want %d (the manifest's max_length)", len(ids), len(mask), t.maxLen)
	}
	return t.encode(text, ids, mask), nil
}

// Tokenize returns the WordPiece tokens of text without special tokens,
// padding or truncation.
func (t *Tokenizer) Tokenize(text string) []string {
	s := &tokScratch{limit: -1}
	t.run(text, s)
	toks := make([]string, len(s.out))
	for i, id := range s.out {
		toks[i] = t.vocab.Token(id)
	}
	return toks
}

// encode fills ids and mask (both of length maxLen) and returns the number
// of real tokens.
func (t *Tokenizer) encode(text string, ids, mask []int64) int {
	s := t.pool.Get().(*tokScratch)
	s.out = s.out[:0]
	s.limit = t.maxLen - 2
	t.run(text, s)
	n := 0
	ids[n] = t.cls
	n++
	n += copy(ids[n:], s.out)
	ids[n] = t.sep
	n++
	for i := range ids {
		if i < n {
			mask[i] = 1
		} else {
			ids[i] = t.pad
			mask[i] = 0
		}
	}
	t.pool.Put(s)
	return n
}

// full reports whether the scratch has reached its output limit.
func (s *tokScratch) full() bool { return s.limit >= 0 && len(s.out) >= s.limit }

// run tokenizes text into s.out, stopping at s.limit ids (no limit when
// negative). It streams: clean text, CJK split and whitespace split happen
// rune by rune, and each word then goes through lower-casing, accent
// stripping, punctuation split and WordPiece.
func (t *Tokenizer) run(text string, s *tokScratch) {
	s.word = s.word[:0]
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		i += size
		switch {
		case r == 0 || r == utf8.RuneError || isBertControl(r):
			continue
		case isBertSpace(r):
			t.flushWord(s)
		case isBertCJK(r):
			t.flushWord(s)
			s.word = utf8.AppendRune(s.word, r)
			t.flushWord(s)
		default:
			s.word = utf8.AppendRune(s.word, r)
		}
		if s.full() {
			return
		}
	}
	t.flushWord(s)
}

// flushWord tokenizes the word accumulated in s.word and empties it.
func (t *Tokenizer) flushWord(s *tokScratch) {
	w := s.word
	if len(w) == 0 {
		return
	}
	ascii := isASCII(w)
	if t.lowerCase {
		s.lower = appendPyLower(s.lower[:0], w)
		w = s.lower
	}
	if t.stripAccents && !ascii {
		s.strip = s.strip[:0]
		s.iter.Init(norm.NFD, w)
		for !s.iter.Done() {
			s.strip = appendDropMn(s.strip, s.iter.Next())
		}
		w = s.strip
	}
	start := 0
	for i := 0; i < len(w); {
		r, size := utf8.DecodeRune(w[i:])
		if isBertPunct(r) {
			if i > start {
				t.wordPiece(s, w[start:i])
			}
			t.wordPiece(s, w[i:i+size])
			start = i + size
		}
		i += size
	}
	if start < len(w) {
		t.wordPiece(s, w[start:])
	}
	s.word = s.word[:0]
}

// wordPiece appends the WordPiece ids of one basic token to s.out (a single
// [UNK] when the token is too long or cannot be covered by the vocabulary).
func (t *Tokenizer) wordPiece(s *tokScratch, piece []byte) {
	if s.full() {
		return
	}
	s.offs = s.offs[:0]
	for i := 0; i < len(piece); {
		if len(s.offs) > MaxWordRunes {
			break
		}
		s.offs = append(s.offs, i)
		_, size := utf8.DecodeRune(piece[i:])
		i += size
	}
	n := len(s.offs)
	if n > MaxWordRunes {
		t.emit(s, t.unk)
		return
	}
	s.offs = append(s.offs, len(piece))
	s.sub = s.sub[:0]
	for start := 0; start < n; {
		end := n
		found := false
		var id int64
		for start < end {
			sub := piece[s.offs[start]:s.offs[end]]
			if start > 0 {
				s.key = append(append(s.key[:0], '#', '#'), sub...)
				sub = s.key
			}
			if id, found = t.vocab.ids[string(sub)]; found {
				break
			}
			end--
		}
		if !found {
			t.emit(s, t.unk)
			return
		}
		s.sub = append(s.sub, id)
		start = end
	}
	for _, id := range s.sub {
		t.emit(s, id)
	}
}

// emit appends one id unless the output is full.
func (t *Tokenizer) emit(s *tokScratch, id int64) {
	if !s.full() {
		s.out = append(s.out, id)
	}
}
