"""Loaders for the public text-guided segmentation sets: QaTa-COV19 and MosMedData+.

Neither set can be downloaded here; these loaders read them where users of LViT
and GuideDecoder (Ariadne's Thread) already keep them::

    <root>/Train_Folder/img/<name>.png          (also: Images/, images/)
    <root>/Train_Folder/labelcol/mask_<name>.png (also: labelcol/<name>.png, GTs/, masks/)
    <root>/Train_Folder/Train_text.xlsx          (LViT: columns Image, Description)
    <root>/train_annotations.csv                 (GuideDecoder: columns Image, Description)
    <root>/Val_Folder/...  <root>/Test_Folder/... (Val_text.xlsx, Test_text.xlsx, ...)

The ``Image`` column may name the image (``covid_1.png``) or its mask
(``mask_covid_1.png``); both are matched by stem with the ``mask_`` prefix
removed. XLSX is read with ``zipfile`` + ``xml.etree`` (no openpyxl needed):
first worksheet, first row = header, shared and inline strings.

``TextSegDataset`` turns samples into model inputs with the same
``preprocess.prepare_frame`` used at inference: 8-bit PNGs go through the
manifest's window for ``modality`` (default ``"PNG"`` → the ``default`` window,
minmax), masks are binarised (> 127) then resized like predictions (bilinear,
``>= 0.5``).
"""
from __future__ import annotations

import csv
import re
import zipfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from PIL import Image

from . import preprocess
from .tokenizer import WordPieceTokenizer

SPLIT_DIRS: dict[str, tuple[str, ...]] = {
    "train": ("Train_Folder", "Train Set", "train"),
    "val": ("Val_Folder", "Val Set", "val"),
    "test": ("Test_Folder", "Test Set", "test"),
}
IMAGE_DIRS = ("img", "Images", "images")
MASK_DIRS = ("labelcol", "GTs", "masks", "Ground-truths")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
_REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


@dataclass(frozen=True)
class Sample:
    """One image with its mask and text."""

    name: str  # image stem, e.g. "covid_1"
    image_path: Path
    mask_path: Path
    text: str


# ----------------------------------------------------------------------------- tables


def _col_index(ref: str) -> int:
    """``"C7"`` → 2 (0-based column)."""
    letters = re.match(r"[A-Z]+", ref.upper())
    if not letters:
        raise ValueError(f"bad cell reference {ref!r}")
    n = 0
    for ch in letters.group(0):
        n = n * 26 + (ord(ch) - 64)
    return n - 1


def _text_of(el: ET.Element) -> str:
    """Concatenated ``<t>`` text of a shared/inline string (plain or rich)."""
    return "".join(t.text or "" for t in el.iter(f"{{{_NS['m']}}}t"))


def read_xlsx(path: str | Path) -> list[dict[str, str]]:
    """Rows of the first worksheet as dicts keyed by the header row."""
    path = Path(path)
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        shared: list[str] = []
        if "xl/sharedStrings.xml" in names:
            root = ET.fromstring(z.read("xl/sharedStrings.xml"))
            shared = [_text_of(si) for si in root.findall("m:si", _NS)]
        sheet = "xl/worksheets/sheet1.xml"
        if "xl/workbook.xml" in names and "xl/_rels/workbook.xml.rels" in names:
            wb = ET.fromstring(z.read("xl/workbook.xml"))
            first = wb.find("m:sheets/m:sheet", _NS)
            rels = ET.fromstring(z.read("xl/_rels/workbook.xml.rels"))
            if first is not None:
                rid = first.get(_REL_NS)
                for rel in rels:
                    if rel.get("Id") == rid:
                        target = rel.get("Target", "")
                        sheet = target.lstrip("/") if target.startswith("/") else "xl/" + target
        if sheet not in names:
            raise ValueError(f"{path}: worksheet {sheet} not found in the workbook")
        root = ET.fromstring(z.read(sheet))
    rows: list[list[str]] = []
    for row in root.iter(f"{{{_NS['m']}}}row"):
        cells: dict[int, str] = {}
        for i, c in enumerate(row.findall("m:c", _NS)):
            col = _col_index(c.get("r")) if c.get("r") else i
            kind = c.get("t")
            v = c.find("m:v", _NS)
            if kind == "s" and v is not None:
                val = shared[int(v.text)]
            elif kind == "inlineStr":
                is_ = c.find("m:is", _NS)
                val = _text_of(is_) if is_ is not None else ""
            else:
                val = v.text if v is not None and v.text is not None else ""
            cells[col] = val
        if cells:
            rows.append([cells.get(k, "") for k in range(max(cells) + 1)])
    if not rows:
        return []
    header = [h.strip() for h in rows[0]]
    return [{h: (r[k] if k < len(r) else "") for k, h in enumerate(header) if h} for r in rows[1:]]


def read_table(path: str | Path) -> list[dict[str, str]]:
    """Rows of a ``.xlsx`` or ``.csv`` annotation table."""
    path = Path(path)
    if path.suffix.lower() == ".xlsx":
        return read_xlsx(path)
    with open(path, newline="", encoding="utf-8-sig") as f:
        return [{k.strip(): (v or "") for k, v in row.items() if k} for row in csv.DictReader(f)]


def _key(name: str) -> str:
    """Match key for an image or mask file name: stem without a ``mask_`` prefix."""
    stem = Path(name.strip()).stem
    return stem[5:] if stem.startswith("mask_") else stem


def read_texts(path: str | Path) -> dict[str, str]:
    """``{image key: description}`` from a table with ``Image`` and ``Description`` columns."""
    rows = read_table(path)
    if rows and not {"Image", "Description"} <= set(rows[0]):
        raise ValueError(f"{path}: want columns Image and Description, found {sorted(rows[0])}")
    return {_key(r["Image"]): r["Description"].strip() for r in rows if r.get("Image")}


# ----------------------------------------------------------------------------- layouts


def _first_existing(base: Path, names: tuple[str, ...], what: str) -> Path:
    for n in names:
        if (base / n).is_dir():
            return base / n
    raise FileNotFoundError(f"{base}: no {what} folder (looked for {', '.join(names)})")


def _find_text_file(root: Path, split_dir: Path, split: str) -> Path:
    cap = split.capitalize()
    candidates = [split_dir / f"{cap}_text.xlsx", root / f"{cap}_text.xlsx",
                  split_dir / f"{split}_annotations.csv", root / f"{split}_annotations.csv",
                  root / "prompt" / f"{split}.csv", split_dir / f"{cap}_text.csv", root / f"{split}.csv"]
    for c in candidates:
        if c.is_file():
            return c
    raise FileNotFoundError(f"no text annotations for split {split!r} under {root} "
                            f"(looked for {', '.join(str(c.relative_to(root)) for c in candidates)})")


def _find_mask(mask_dir: Path, image: Path) -> Path | None:
    for cand in (f"mask_{image.name}", image.name, f"mask_{image.stem}.png", f"{image.stem}.png"):
        if (mask_dir / cand).is_file():
            return mask_dir / cand
    return None


def load_split(root: str | Path, split: str = "train", text_file: str | Path | None = None,
               strict: bool = True) -> list[Sample]:
    """Samples of one split of a QaTa-COV19 / MosMedData+ folder (layouts in the module docstring).

    ``strict``: raise when an image has no mask or no text (else skip it).
    Samples are sorted by name.
    """
    root = Path(root)
    if split not in SPLIT_DIRS:
        raise ValueError(f"split must be one of {sorted(SPLIT_DIRS)}, got {split!r}")
    split_dir = _first_existing(root, SPLIT_DIRS[split], f"{split} split")
    img_dir = _first_existing(split_dir, IMAGE_DIRS, "image")
    mask_dir = _first_existing(split_dir, MASK_DIRS, "mask")
    texts = read_texts(text_file if text_file else _find_text_file(root, split_dir, split))
    samples = []
    for image in sorted(p for p in img_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS):
        mask = _find_mask(mask_dir, image)
        text = texts.get(_key(image.name))
        if mask is None or text is None:
            if strict:
                missing = "mask" if mask is None else "text"
                raise FileNotFoundError(f"{image}: no {missing} (mask folder {mask_dir})")
            continue
        samples.append(Sample(image.stem, image, mask, text))
    return samples


def load_qata(root: str | Path, split: str = "train", text_file: str | Path | None = None) -> list[Sample]:
    """QaTa-COV19 (chest X-ray) in the LViT / GuideDecoder layout."""
    return load_split(root, split, text_file)


def load_mosmed(root: str | Path, split: str = "train", text_file: str | Path | None = None) -> list[Sample]:
    """MosMedData+ (CT slices exported as PNG) in the LViT layout."""
    return load_split(root, split, text_file)


# ----------------------------------------------------------------------------- torch


def read_gray(path: str | Path) -> np.ndarray:
    """An image file as a 2-D array of its stored values (RGB → luminance, 8/16-bit kept)."""
    im = Image.open(path)
    if im.mode in ("RGB", "RGBA", "P", "LA", "CMYK"):
        im = im.convert("L")
    return np.asarray(im)


class TextSegDataset:
    """Map-style dataset (``torch.utils.data.Dataset`` protocol) over ``Sample`` s.

    Item: ``{"image": float32 [1,H,W], "mask": float32 [1,H,W], "input_ids": int64 [L],
    "attention_mask": int64 [L], "text": str, "name": str}`` (numpy arrays; the
    default collate turns them into tensors).
    """

    def __init__(self, samples: list[Sample], tokenizer: WordPieceTokenizer,
                 manifest_like: Mapping[str, Any] = preprocess.DEFAULT_MANIFEST, max_length: int = 24,
                 modality: str = "PNG"):
        self.samples = samples
        self.tokenizer = tokenizer
        self.manifest = manifest_like
        self.max_length = max_length
        self.modality = modality

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, Any]:
        s = self.samples[i]
        h, w = int(self.manifest["image"]["height"]), int(self.manifest["image"]["width"])
        image = preprocess.prepare_frame(read_gray(s.image_path), 1.0, 0.0, self.modality, "MONOCHROME2", self.manifest)
        mask = preprocess.resize_mask((read_gray(s.mask_path) > 127).astype(np.float32), h, w)
        ids, att = self.tokenizer.encode(s.text, self.max_length)
        return {"image": image[None], "mask": mask[None], "input_ids": np.array(ids, np.int64),
                "attention_mask": np.array(att, np.int64), "text": s.text, "name": s.name}
