package reports

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// tinyVocab is a small vocabulary for tests that do not need the model's.
func tinyVocab(t testing.TB) *Vocab {
	t.Helper()
	v, err := NewVocab([]string{
		"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
		"left", "right", "lower", "lobe", "opacity", "run", "##ning", "##s", "un", "##aff", "##able",
		".", ",", ":", "-", "cafe", "the", "中", "国", "i", "##̇", "οδος", "οδοσ", "σ", "ς", "x", "##x", "no", "effusion",
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestTokenizeBasic(t *testing.T) {
	v := tinyVocab(t)
	tok, err := NewTokenizer(v, true, true, 12)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		in   string
		want []string
	}{
		{"Left lower lobe opacity.", []string{"left", "lower", "lobe", "opacity", "."}},
		{"running", []string{"run", "##ning"}},
		{"unaffable", []string{"un", "##aff", "##able"}},
		{"Café", []string{"cafe"}},
		{"CAFE\u0301", []string{"cafe"}},
		{"lobes,opacity", []string{"lobe", "##s", ",", "opacity"}},
		{"unknownword", []string{"[UNK]"}},
		{"中国", []string{"中", "国"}},
		{"a\x00b", []string{"[UNK]"}},
		{"left\u00a0right\u2028lobe", []string{"left", "right", "lobe"}},
		{"ri\x01ght", []string{"right"}},
		{"ΟΔΟΣ", []string{"οδος"}},
		{"Σ", []string{"σ"}},
		{"\u0130", []string{"i"}},
		{"  \t\n ", []string{}},
		{strings.Repeat("x", 100), append([]string{"x"}, repeatStr("##x", 99)...)},
		{strings.Repeat("x", 101), []string{"[UNK]"}},
		{"no-effusion", []string{"no", "-", "effusion"}},
	}
	for _, c := range cases {
		got := tok.Tokenize(c.in)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Tokenize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func repeatStr(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestTokenizeNoLowerCase(t *testing.T) {
	v := tinyVocab(t)
	tok, _ := NewTokenizer(v, false, false, 8)
	if got := tok.Tokenize("Left left"); !reflect.DeepEqual(got, []string{"[UNK]", "left"}) {
		t.Errorf("got %q", got)
	}
	// Without lower-casing, accents are kept unless stripAccents is set.
	if got := tok.Tokenize("café"); !reflect.DeepEqual(got, []string{"[UNK]"}) {
		t.Errorf("got %q", got)
	}
	tok2, _ := NewTokenizer(v, false, true, 8)
	if got := tok2.Tokenize("café"); !reflect.DeepEqual(got, []string{"cafe"}) {
		t.Errorf("strip only: got %q", got)
	}
	// With lower-casing but no accent stripping, U+0130 keeps its dot.
	tok3, _ := NewTokenizer(v, true, false, 8)
	if got := tok3.Tokenize("\u0130"); !reflect.DeepEqual(got, []string{"i", "##̇"}) {
		t.Errorf("lower only: got %q", got)
	}
}

func TestEncodeTruncatePad(t *testing.T) {
	v := tinyVocab(t)
	tok, _ := NewTokenizer(v, true, true, 6)
	ids, mask := tok.Encode("left lower")
	wantIDs := []int64{2, 5, 7, 3, 0, 0}
	wantMask := []int64{1, 1, 1, 1, 0, 0}
	if !reflect.DeepEqual(ids, wantIDs) || !reflect.DeepEqual(mask, wantMask) {
		t.Errorf("Encode = %v %v, want %v %v", ids, mask, wantIDs, wantMask)
	}
	ids, mask = tok.Encode("left lower lobe opacity right left")
	wantIDs = []int64{2, 5, 7, 8, 9, 3}
	if !reflect.DeepEqual(ids, wantIDs) || !reflect.DeepEqual(mask, []int64{1, 1, 1, 1, 1, 1}) {
		t.Errorf("truncated Encode = %v %v, want %v", ids, mask, wantIDs)
	}
	// Truncation in the middle of a word keeps only the pieces that fit.
	ids, _ = tok.Encode("left lower lobe running")
	if !reflect.DeepEqual(ids, []int64{2, 5, 7, 8, 10, 3}) {
		t.Errorf("mid-word truncation = %v", ids)
	}
	ids, mask = tok.Encode("")
	if !reflect.DeepEqual(ids, []int64{2, 3, 0, 0, 0, 0}) || !reflect.DeepEqual(mask, []int64{1, 1, 0, 0, 0, 0}) {
		t.Errorf("empty Encode = %v %v", ids, mask)
	}
	if _, err := tok.EncodeInto("x", make([]int64, 5), make([]int64, 6)); err == nil {
		t.Error("EncodeInto with a short ids slice: want error")
	}
	if _, err := NewTokenizer(v, true, true, 1); err == nil {
		t.Error("max length 1: want error")
	}
}

func TestEncodeIntoNoAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector (sync.Pool drops items)")
	}
	v := tinyVocab(t)
	tok, _ := NewTokenizer(v, true, true, 24)
	ids := make([]int64, 24)
	mask := make([]int64, 24)
	text := "FINDINGS: Left lower lobe opacity, running Café 中国 ΟΔΟΣ unaffable. No effusion."
	tok.EncodeInto(text, ids, mask) // warm the pool
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := tok.EncodeInto(text, ids, mask); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Errorf("EncodeInto allocates %.1f times per call, want 0", allocs)
	}
}

func TestLoadVocab(t *testing.T) {
	p := filepath.Join(t.TempDir(), "vocab.txt")
	if err := os.WriteFile(p, []byte("[PAD]\r\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nlung\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := LoadVocab(p)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := v.ID("lung"); !ok || id != 5 || v.Size() != 6 || v.Token(0) != "[PAD]" {
		t.Errorf("vocab: lung=%d,%v size=%d tok0=%q", id, ok, v.Size(), v.Token(0))
	}
	if err := os.WriteFile(p, []byte("[PAD]\n[UNK]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadVocab(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("vocab without [CLS]: err = %v, want one naming the file", err)
	}
}

// tokenizerVector is one line of testdata/vectors/tokenizer.jsonl.
type tokenizerVector struct {
	Text          string   `json:"text"`
	Tokens        []string `json:"tokens"`
	InputIDs      []int64  `json:"input_ids"`
	AttentionMask []int64  `json:"attention_mask"`
}

// TestSharedTokenizerVectors reproduces every vector written by the Python
// side (tmca): with the shipped vocabulary, and with a vocabulary of
// BERT-base's size (30522 entries), the size a paper-preset model's text
// checkpoint brings.
func TestSharedTokenizerVectors(t *testing.T) {
	vectors := filepath.Join("..", "testdata", "vectors")
	shipped := filepath.Join("..", "models", "tmca-cxr-compact", "vocab.txt")
	if p := os.Getenv("TMCAD_TOKENIZER_VECTORS"); p != "" {
		// extra vectors, e.g. generated with tmca.tokenizer for a differential run
		checkTokenizerVectors(t, p, shipped)
		return
	}
	checkTokenizerVectors(t, filepath.Join(vectors, "tokenizer.jsonl"), shipped)
	checkTokenizerVectors(t, filepath.Join(vectors, "tokenizer_30522.jsonl"), filepath.Join(vectors, "vocab_30522.txt"))
}

// checkTokenizerVectors encodes every text of the vectors file with the
// vocabulary and compares ids, mask and tokens.
func checkTokenizerVectors(t *testing.T, vecPath, vocabPath string) {
	t.Helper()
	f, err := os.Open(vecPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vocab, err := LoadVocab(vocabPath)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var toks map[int]*Tokenizer = map[int]*Tokenizer{}
	n := 0
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var vec tokenizerVector
		if err := json.Unmarshal(sc.Bytes(), &vec); err != nil {
			t.Fatalf("%s:%d: %v", vecPath, line, err)
		}
		L := len(vec.InputIDs)
		tok := toks[L]
		if tok == nil {
			if tok, err = NewTokenizer(vocab, true, true, L); err != nil {
				t.Fatal(err)
			}
			toks[L] = tok
		}
		ids, mask := tok.Encode(vec.Text)
		gotTokens := make([]string, 0, L)
		for _, id := range ids {
			gotTokens = append(gotTokens, vocab.Token(id))
		}
		wantTokens := vec.Tokens
		if len(wantTokens) < L { // vectors may list tokens without padding
			gotTokens = gotTokens[:len(wantTokens)]
		}
		if !reflect.DeepEqual(ids, vec.InputIDs) || !reflect.DeepEqual(mask, vec.AttentionMask) || !reflect.DeepEqual(gotTokens, wantTokens) {
			t.Errorf("%s:%d: text %q\n got tokens %q ids %v mask %v\nwant tokens %q ids %v mask %v",
				vecPath, line, vec.Text, gotTokens, ids, mask, wantTokens, vec.InputIDs, vec.AttentionMask)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("%s has no vectors", vecPath)
	}
	t.Logf("%s: %d shared vectors reproduced with a vocabulary of %d", filepath.Base(vecPath), n, vocab.Size())
}

// BenchmarkEncodeInto measures the hot path with the shipped vocabulary
// when present, else the tiny test vocabulary.
func BenchmarkEncodeInto(b *testing.B) {
	v, err := LoadVocab(filepath.Join("..", "models", "tmca-cxr-compact", "vocab.txt"))
	if err != nil {
		v = tinyVocab(b)
	}
	tok, _ := NewTokenizer(v, true, true, 24)
	ids, mask := make([]int64, 24), make([]int64, 24)
	text := "Bilateral pulmonary infection, two infected areas, lower left lung and middle right lung."
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		tok.EncodeInto(text, ids, mask)
	}
}
