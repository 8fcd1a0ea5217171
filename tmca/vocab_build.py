"""Build the compact model's WordPiece vocab deterministically.

No pretrained vocabulary (e.g. CXR-BERT's ``vocab.txt``) can be downloaded in this
build environment, so the compact model ships its own. The paper-size preset would
point the manifest at CXR-BERT's vocab and use exactly the same tokenizer code.

Layout of the produced ``vocab.txt`` (id = line number):

1. ``[PAD]`` 0, ``[UNK]`` 1, ``[CLS]`` 2, ``[SEP]`` 3, ``[MASK]`` 4
2. every printable ASCII character (33..126), then each as a ``##`` piece
3. Latin-1 / Greek letters and signs that survive lower-casing and accent
   stripping (ß, æ, ø, µ, °, ...), then each as a ``##`` piece
4. whole words: every phantom-report word, QaTa-COV19 / MosMedData+-style
   radiology phrases, anatomy, number words, a few hundred common words
5. frequent subword pieces: common English/medical suffixes, then the most
   frequent word-initial and continuation character n-grams of the word list

Because every ASCII character and its ``##`` form are present, any ASCII word
tokenizes without ``[UNK]``; CJK, emoji and uncommon scripts map to ``[UNK]``.

Command: ``/usr/bin/python3 -m tmca.vocab_build [--out models/tmca-cxr-compact/vocab.txt]``
"""
from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from .report_text import NUMBER_WORDS, all_report_words
from .tokenizer import SPECIAL_TOKENS, basic_tokenize

DEFAULT_OUT = Path("models/tmca-cxr-compact/vocab.txt")

# Sentences in the styles of QaTa-COV19 / MosMedData+ annotations and of typical
# chest X-ray / chest CT reports. They feed both whole words and n-gram counts.
RADIOLOGY_PHRASES = """
Bilateral pulmonary infection, two infected areas, all left lung and all right lung.
Unilateral pulmonary infection, one infected area, lower left lung.
Bilateral pulmonary infection, four infected areas, upper middle left lung and upper middle lower right lung.
Bilateral ground-glass opacities with peripheral and basal predominance, consistent with COVID-19 pneumonia.
Patchy consolidation in the right lower lobe, air bronchograms present.
Multifocal ground glass opacification, crazy paving pattern, subpleural distribution.
No pleural effusion or pneumothorax. Heart size is normal. Mediastinum is unremarkable.
Cardiomegaly with mild pulmonary vascular congestion and interstitial edema.
Small left pleural effusion with adjacent atelectasis at the left base.
Reticular and nodular opacities, mostly in the lower zones, suggestive of fibrosis.
Endotracheal tube tip is 4 cm above the carina; nasogastric tube in the stomach.
Central venous catheter terminates in the superior vena cava.
Hyperinflated lungs with flattened diaphragms, in keeping with emphysema.
Right upper lobe mass with hilar lymphadenopathy; further evaluation with CT recommended.
Findings are unchanged compared with the prior examination.
Impression: no acute cardiopulmonary process.
Lung involvement less than 25 percent, moderate severity, CT-2 category.
Opacities in the lingula and the left lower lobe, posterior segments.
Linear scarring in the right middle lobe; the costophrenic angles are sharp.
Degenerative changes of the thoracic spine; no displaced rib fracture.
Portable AP chest radiograph, patient supine; limited inspiration.
PA and lateral views of the chest were obtained.
Interval improvement of the airspace disease in both lungs.
Diffuse alveolar opacities, likely pulmonary edema or ARDS.
Nodule measuring 8 mm in the left upper lobe, follow-up in 6 months.
""".strip().splitlines()

ANATOMY = """
lung lungs lobe lobes lobar segment segmental apex apical apices base basal bases hilum hilar hila
trachea tracheal carina bronchus bronchi bronchial bronchiole bronchioles alveolar alveoli pleura pleural
fissure fissures diaphragm diaphragmatic hemidiaphragm costophrenic cardiophrenic angle angles mediastinum
mediastinal heart cardiac aorta aortic arch ventricle ventricular atrium atrial pericardial pericardium
chest thorax thoracic rib ribs clavicle clavicles scapula sternum spine spinal vertebra vertebral
shoulder neck abdomen abdominal stomach liver esophagus azygos vena cava superior inferior lingula
lingular upper middle lower right left anterior posterior lateral medial central peripheral
subpleural perihilar retrocardiac paratracheal zone zones field fields region regions side sides
""".split()

RADIOLOGY_WORDS = """
opacity opacities opacification consolidation consolidations infiltrate infiltrates infiltration
ground glass nodule nodules nodular mass masses lesion lesions effusion effusions pneumothorax
atelectasis edema oedema congestion cardiomegaly emphysema fibrosis fibrotic scarring scar
reticular reticulation interstitial airspace alveolar patchy diffuse focal multifocal bilateral
unilateral infection infected infectious pneumonia pneumonitis covid coronavirus viral bacterial
sars cov involvement involved extent severity severe mild moderate minimal small large
crazy paving pattern halo reversed bronchogram bronchograms thickening thickened distribution
predominance predominant consistent suggestive compatible likely possible probable unlikely
normal abnormal unremarkable stable unchanged improved improving worsening worse new
increased decreased resolved resolving residual acute chronic prior previous comparison
finding findings impression history indication technique examination exam study radiograph
radiography xray ray ct cxr scan axial coronal sagittal slice slices contrast view views
pa ap supine erect portable frontal inspiration expiration tube catheter line lines
tip position device pacemaker wire wires sternotomy clips fracture fractures degenerative
calcified calcification granuloma size mm cm percent category grade score
""".split()

COMMON_WORDS = """
the a an and or of in on at to for with without from by as is are was were be been being has have
had no not there this that these those it its which who than then also but if both all any each
other some such more most less least very only same further follow up down out over under into
within between above below near adjacent along across about after before during since again
one two three four five six seven eight nine ten first second third fourth last per
day days week weeks month months year years old male female patient patients man woman
see seen noted note shows show showing demonstrated identified present absent evidence
suggest suggests recommend recommended clinical correlation evaluation assess assessment
left right upper lower middle total partial part parts area areas volume volumes case
image images series report reports result results value values level levels high low
may can could would should will must due because however otherwise compared relative
""".split()

SUFFIXES = """
##s ##es ##ed ##ing ##ly ##er ##ers ##est ##ion ##ions ##tion ##tions ##ation ##al ##ally
##ity ##ic ##ical ##ous ##ment ##ments ##ness ##able ##ible ##ive ##ize ##ized ##ism ##ist
##ia ##ias ##itis ##osis ##oma ##omas ##ectomy ##ostomy ##otomy ##ular ##ary ##ory ##ent
##ence ##ance ##ant ##ate ##ated ##ating ##y ##ies ##ful ##less ##ward ##graphy ##gram
##scopy ##logy ##pathy ##plasty ##emia ##uria ##al ##ar ##um ##us ##i ##a ##ae
""".split()

PREFIXES = """
pre post sub inter intra peri para hyper hypo pneumo cardio broncho pleuro thoraco
trans retro anti non multi bi uni micro macro
""".split()

# Letters and signs outside ASCII that survive lower-casing + accent stripping.
EXTRA_CHARS = (
    "ßæøðþœłđıħµªº"
    "¡¿«»°±×÷§¶·²³¹¼½¾©®¬¦¨¯´¸£¥¢¤"
    "αβγδεζηθικλμνξοπρστυφχψω"
    "–—‘’“”…•€"
)


def _dedupe(tokens: list[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for t in tokens:
        if t and t not in seen:
            seen.add(t)
            out.append(t)
    return out


def ngram_pieces(words: list[str], n_initial: int = 150, n_cont: int = 350) -> list[str]:
    """Most frequent word-initial (``ab``) and continuation (``##ab``) n-grams, n = 2..4.

    Ties break alphabetically, so the result is deterministic.
    """
    init: Counter[str] = Counter()
    cont: Counter[str] = Counter()
    for w in words:
        if not w.isalpha() or len(w) < 4:
            continue
        for n in (2, 3, 4):
            if len(w) > n:
                init[w[:n]] += 1
            for i in range(1, len(w) - n + 1):
                cont["##" + w[i : i + n]] += 1
    top_init = [t for t, _ in sorted(init.items(), key=lambda kv: (-kv[1], kv[0]))[:n_initial]]
    top_cont = [t for t, _ in sorted(cont.items(), key=lambda kv: (-kv[1], kv[0]))[:n_cont]]
    return top_init + top_cont


def build_vocab() -> list[str]:
    """The full token list, in id order."""
    ascii_chars = [chr(c) for c in range(33, 127)]
    extra = list(EXTRA_CHARS)
    chars = ascii_chars + extra
    phrase_words: list[str] = []
    for line in RADIOLOGY_PHRASES:
        phrase_words.extend(basic_tokenize(line))
    words = _dedupe(
        all_report_words()
        + list(NUMBER_WORDS)
        + phrase_words
        + [w.lower() for w in ANATOMY + RADIOLOGY_WORDS + COMMON_WORDS]
        + ["19", "25", "50", "75", "100", "10", "20", "30", "40", "60", "70", "80", "90"]
        + PREFIXES
    )
    # Keep only word-like entries (punctuation is already a single char token).
    words = [w for w in words if len(w) > 1]
    tokens = list(SPECIAL_TOKENS) + chars + ["##" + c for c in chars] + words + SUFFIXES
    tokens += ngram_pieces(words)
    return _dedupe(tokens)


def write_vocab(path: Path = DEFAULT_OUT) -> int:
    """Write ``vocab.txt``; returns the number of tokens."""
    tokens = build_vocab()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return len(tokens)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    n = write_vocab(args.out)
    print(f"wrote {n} tokens to {args.out}")


if __name__ == "__main__":
    main()
