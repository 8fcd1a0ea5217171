"""QaTa-COV19 / MosMedData+ loaders on tiny fixtures in the LViT / GuideDecoder layouts."""
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tmca import datasets as D
from tmca.preprocess import DEFAULT_MANIFEST
from tmca.tokenizer import WordPieceTokenizer

FIX = Path(__file__).resolve().parent / "fixtures"
VOCAB = Path(__file__).resolve().parents[2] / "models/tmca-cxr-compact/vocab.txt"


def test_read_xlsx_written_by_openpyxl():
    rows = D.read_xlsx(FIX / "qata/Train_Folder/Train_text.xlsx")
    assert [r["Image"] for r in rows] == ["covid_1.png", "mask_covid_2.png", "covid_3.png"]
    assert rows[1]["Description"].startswith("Unilateral pulmonary infection")


def test_read_xlsx_inline_strings_and_gaps(tmp_path):
    ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    sheet = (f'<worksheet xmlns="{ns}"><sheetData>'
             '<row r="1"><c r="A1" t="inlineStr"><is><t>Image</t></is></c><c r="C1" t="inlineStr"><is><t>Description</t></is></c></row>'
             '<row r="2"><c r="A2" t="inlineStr"><is><t>a.png</t></is></c><c r="C2" t="inlineStr"><is><r><t>left </t></r><r><t>lung</t></r></is></c></row>'
             '<row r="3"><c r="A3"><v>42</v></c></row>'
             "</sheetData></worksheet>")
    p = tmp_path / "t.xlsx"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("xl/worksheets/sheet1.xml", sheet)
    rows = D.read_xlsx(p)
    assert rows == [{"Image": "a.png", "Description": "left lung"}, {"Image": "42", "Description": ""}]


def test_load_qata_xlsx_and_csv():
    train = D.load_qata(FIX / "qata", "train")
    assert [s.name for s in train] == ["covid_1", "covid_2", "covid_3"]
    assert train[0].mask_path.name == "mask_covid_1.png"
    assert "two infected areas" in train[0].text
    via_csv = D.load_qata(FIX / "qata", "train", text_file=FIX / "qata/train_annotations.csv")
    assert [(s.name, s.text) for s in via_csv] == [(s.name, s.text) for s in train]
    test = D.load_qata(FIX / "qata", "test")
    assert len(test) == 1 and test[0].text.endswith("middle left lung.")


def test_load_mosmed_csv_discovery_and_plain_mask_names():
    s = D.load_mosmed(FIX / "mosmed", "train")
    assert [x.name for x in s] == ["slice_001", "slice_002"]
    assert s[0].mask_path.name == "slice_001.png" and "right lung" in s[0].text


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="val split"):
        D.load_qata(FIX / "qata", "val")
    with pytest.raises(ValueError):
        D.load_qata(FIX / "qata", "dev")
    bad = tmp_path / "bad.csv"
    bad.write_text("File,Text\na.png,x\n")
    with pytest.raises(ValueError, match="Image and Description"):
        D.read_texts(bad)


def test_dataset_items():
    tok = WordPieceTokenizer.from_vocab(VOCAB)
    m = {**DEFAULT_MANIFEST, "image": {"height": 16, "width": 16}}
    ds = D.TextSegDataset(D.load_qata(FIX / "qata", "train"), tok, m, max_length=24)
    assert len(ds) == 3
    for i in range(3):  # item 2 is an RGB PNG
        it = ds[i]
        assert it["image"].shape == it["mask"].shape == (1, 16, 16)
        assert it["image"].dtype == np.float32 and set(np.unique(it["mask"])) <= {0.0, 1.0}
        assert it["mask"].sum() > 0
        assert it["input_ids"].dtype == np.int64 and it["input_ids"].shape == (24,) and it["input_ids"][0] == 2
