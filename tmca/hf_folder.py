"""Read a local Hugging Face model folder without `transformers` or `safetensors`.

A folder holds `config.json`, `vocab.txt`, optionally `tokenizer_config.json`, and the weights as
`model.safetensors` or `pytorch_model.bin`. The safetensors format is read here directly: an 8-byte
little-endian header length N, N bytes of JSON (`{name: {"dtype", "shape", "data_offsets": [begin,
end]}, "__metadata__": {...}}`, offsets relative to the end of the header), then the raw
little-endian tensor bytes. `write_safetensors` writes the same format (the tests use it).
"""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Dict, Mapping, Optional

import numpy as np
import torch

# safetensors dtype name -> (numpy dtype to read the bytes as, torch dtype of the result)
_DTYPES = {
    "F64": (np.float64, torch.float64), "F32": (np.float32, torch.float32), "F16": (np.float16, torch.float16),
    "BF16": (np.int16, torch.bfloat16), "I64": (np.int64, torch.int64), "I32": (np.int32, torch.int32),
    "I16": (np.int16, torch.int16), "I8": (np.int8, torch.int8), "U8": (np.uint8, torch.uint8),
    "BOOL": (np.bool_, torch.bool),
}
_NAMES = {t: n for n, (_, t) in _DTYPES.items()}


def read_safetensors(path: str | Path) -> Dict[str, torch.Tensor]:
    """All tensors of a .safetensors file, as CPU tensors of their stored dtype."""
    path = Path(path)
    data = path.read_bytes()
    if len(data) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError(f"{path}: header length {n} runs past the end of the file ({len(data)} bytes)")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = memoryview(data)[8 + n:]
    out: Dict[str, torch.Tensor] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = info["dtype"]
        if dt not in _DTYPES:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {dt}")
        np_dt, t_dt = _DTYPES[dt]
        begin, end = info["data_offsets"]
        shape = [int(s) for s in info["shape"]]
        arr = np.frombuffer(body[begin:end], dtype=np.dtype(np_dt).newbyteorder("<")).copy()
        if arr.size != int(np.prod(shape, dtype=np.int64)):
            raise ValueError(f"{path}: tensor {name}: {arr.size} values for shape {shape}")
        t = torch.from_numpy(arr.astype(np_dt, copy=False)).reshape(shape)
        out[name] = t.view(torch.bfloat16) if dt == "BF16" else t
    return out


def write_safetensors(path: str | Path, tensors: Mapping[str, torch.Tensor],
                      metadata: Optional[Dict[str, str]] = None) -> None:
    """Write tensors in the safetensors layout (data in key order, 8-byte aligned header)."""
    header: Dict[str, object] = {}
    chunks = []
    off = 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy()
        b = raw.astype(raw.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        chunks.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = dict(metadata)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in chunks:
            f.write(b)


def read_state_dict(path: str | Path) -> Dict[str, torch.Tensor]:
    """A state dict from .safetensors or a torch file; a checkpoint that wraps its weights
    (`{"state_dict": ...}`, `{"model": ...}`) is unwrapped."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return read_safetensors(path)
    obj = torch.load(str(path), map_location="cpu")
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: not a state dict (a {type(obj).__name__})")
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def read_hf_folder(folder: str | Path) -> dict:
    """{"config": config.json, "tokenizer": tokenizer_config.json or {}, "vocab": Path,
    "state_dict": tensors, "weights": Path} of a local Hugging Face model folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder (want a local Hugging Face model folder)")
    cfg_path, vocab = folder / "config.json", folder / "vocab.txt"
    for p in (cfg_path, vocab):
        if not p.is_file():
            raise FileNotFoundError(f"{folder}: no {p.name}")
    weights = next((folder / n for n in ("model.safetensors", "pytorch_model.bin") if (folder / n).is_file()), None)
    if weights is None:
        if any(folder.glob("*.index.json")):
            raise ValueError(f"{folder}: sharded checkpoints (*.index.json) are not supported; BERT-base fits one file")
        raise FileNotFoundError(f"{folder}: no model.safetensors or pytorch_model.bin")
    tok_path = folder / "tokenizer_config.json"
    return {"config": json.loads(cfg_path.read_text()),
            "tokenizer": json.loads(tok_path.read_text()) if tok_path.is_file() else {},
            "vocab": vocab, "state_dict": read_state_dict(weights), "weights": weights}
