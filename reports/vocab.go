package reports

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Special token strings of a BERT WordPiece vocabulary.
const (
	TokenPad  = "[PAD]"
	TokenUnk  = "[UNK]"
	TokenCLS  = "[CLS]"
	TokenSep  = "[SEP]"
	TokenMask = "[MASK]"
)

// Vocab is a WordPiece vocabulary: one token per line, the id of a token is
// its 0-based line number (docs/CONTRACTS.md). It is immutable after
// construction and safe for concurrent use.
type Vocab struct {
	tokens []string
	ids    map[string]int64
}

// LoadVocab reads a vocab.txt file.
func LoadVocab(path string) (*Vocab, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load vocab: %w", err)
	}
	defer f.Close()
	v, err := ReadVocab(f)
	if err != nil {
		return nil, fmt.Errorf("load vocab %s: %w", path, err)
	}
	return v, nil
}

// ReadVocab reads a vocabulary in vocab.txt format from r. Like the Python
// reference (tmca/tokenizer.py), only the line terminator is removed from
// each line ("\n", and a "\r" before it).
func ReadVocab(r io.Reader) (*Vocab, error) {
	var tokens []string
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if len(line) > 0 {
			line = strings.TrimSuffix(line, "\n")
			line = strings.TrimSuffix(line, "\r")
			tokens = append(tokens, line)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read vocab line %d: %w", len(tokens)+1, err)
		}
	}
	return NewVocab(tokens)
}

// NewVocab builds a vocabulary from tokens in id order. It fails when a
// token appears twice or a special token ([PAD], [UNK], [CLS], [SEP],
// [MASK]) is missing, as the Python side does.
func NewVocab(tokens []string) (*Vocab, error) {
	v := &Vocab{tokens: append([]string(nil), tokens...), ids: make(map[string]int64, len(tokens))}
	for i, t := range v.tokens {
		if prev, dup := v.ids[t]; dup {
			return nil, fmt.Errorf("vocab line %d repeats the token of line %d", i+1, prev+1)
		}
		v.ids[t] = int64(i)
	}
	for _, s := range []string{TokenPad, TokenUnk, TokenCLS, TokenSep, TokenMask} {
		if _, ok := v.ids[s]; !ok {
			return nil, fmt.Errorf("vocab has no %s token: a BERT vocab must contain [PAD], [UNK], [CLS], [SEP] and [MASK]", s)
		}
	}
	return v, nil
}

// Size returns the number of lines (ids) in the vocabulary.
func (v *Vocab) Size() int { return len(v.tokens) }

// ID returns the id of token and whether the vocabulary contains it.
func (v *Vocab) ID(token string) (int64, bool) {
	id, ok := v.ids[token]
	return id, ok
}

// Token returns the token with the given id, or "" when id is out of range.
func (v *Vocab) Token(id int64) string {
	if id < 0 || id >= int64(len(v.tokens)) {
		return ""
	}
	return v.tokens[id]
}
