"""Frame pre-/post-processing, identical to Go ``segment`` (docs/CONTRACTS.md).

Pre-processing of one frame of stored values (rows × cols):

1. ``x = raw * slope + intercept``, in float32 (``float32(raw) * float32(slope)``
   rounded to float32, then ``+ float32(intercept)`` rounded to float32).
2. Window from ``manifest["windows"][modality]`` (else ``"default"``):
   ``fixed``: ``lo = center - width/2``, ``hi = center + width/2`` (computed in
   float64 from the manifest numbers, then rounded to float32);
   ``minmax``: ``lo = min(x)``, ``hi = max(x)``.
   If ``hi <= lo`` the windowed frame is all 0; else
   ``y = clip((x - lo) / (hi - lo), 0, 1)`` in float32 (``hi - lo`` rounded to
   float32 first).
3. MONOCHROME1: ``y = 1 - y`` (so a constant MONOCHROME1 frame becomes all 1).
4. Bilinear resize to ``image.height × image.width``, ``align_corners=False``, no
   antialias: ``torch.nn.functional.interpolate``. Per axis (input length
   ``n_in``, output length ``n_out``), exactly as PyTorch's CPU kernel does it:
   ``scale = float32(n_in / n_out)``; for output index ``d``, in float64,
   ``s = max(0, float64(scale) * (d + 0.5) - 0.5)``, ``i0 = floor(s)``,
   ``i1 = min(i0 + 1, n_in - 1)``, ``w1 = float32(s - i0)``, ``w0 = float32(1 - w1)``.
   (Computing the weights from the exact ratio instead, or rounding ``s`` to
   float32, is off by up to 1e-4 for 2000+ pixel frames.) Then, rows outer:
   ``out = h0*(w0*a00 + w1*a01) + h1*(w0*a10 + w1*a11)`` in float32.
5. ``z = (y - mean) / std`` in float32.

Post-processing: ``prob`` (H × W) is resized back to rows × cols with the same
bilinear rule and ``mask = prob >= threshold``.

``manifest_like`` is any dict with the manifest's ``windows``, ``image`` and
``normalize`` keys. ``DEFAULT_MANIFEST`` below is the one definition of these
(``tmca.export`` writes it into every manifest.json, at the model's input size:
``manifest_at``).
"""
from __future__ import annotations

import copy
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F

#: The pre-processing part of every exported manifest.json (here at the compact model's input size).
DEFAULT_MANIFEST: dict[str, Any] = {
    "image": {"height": 96, "width": 96, "channels": 1, "resize": "bilinear"},
    "windows": {
        "CR": {"mode": "minmax"},
        "DX": {"mode": "minmax"},
        "CT": {"mode": "fixed", "center": -600, "width": 1500},
        "default": {"mode": "minmax"},
    },
    "normalize": {"mean": 0.5, "std": 0.25},
    "threshold": 0.5,
}


def manifest_at(image_size: int) -> dict[str, Any]:
    """A copy of ``DEFAULT_MANIFEST`` at a model's square input size: what tmcad's pre-processing
    reads from that model's manifest.json."""
    m = copy.deepcopy(DEFAULT_MANIFEST)
    m["image"].update(height=int(image_size), width=int(image_size))
    return m


def rescale(raw: np.ndarray, slope: float = 1.0, intercept: float = 0.0) -> np.ndarray:
    """Step 1: stored values → modality values (HU for CT), float32 arithmetic."""
    x = np.asarray(raw).astype(np.float32)
    return (x * np.float32(slope)).astype(np.float32) + np.float32(intercept)


def window_for(modality: str, manifest_like: Mapping[str, Any]) -> Mapping[str, Any]:
    """The manifest's window spec for ``modality`` (falls back to ``default``)."""
    windows = manifest_like["windows"]
    return windows.get(modality, windows["default"])


def window(x: np.ndarray, spec: Mapping[str, Any]) -> np.ndarray:
    """Step 2: map modality values to [0, 1] with a ``fixed`` or ``minmax`` window."""
    x = np.asarray(x, dtype=np.float32)
    mode = spec["mode"]
    if mode == "fixed":
        c, w = float(spec["center"]), float(spec["width"])
        lo, hi = np.float32(c - w / 2.0), np.float32(c + w / 2.0)
    elif mode == "minmax":
        lo, hi = np.float32(x.min()), np.float32(x.max())
    else:
        raise ValueError(f"unknown window mode {mode!r} (want 'fixed' or 'minmax')")
    if not hi > lo:
        return np.zeros_like(x, dtype=np.float32)
    span = np.float32(hi - lo)
    y = (x - lo) / span
    return np.clip(y, np.float32(0), np.float32(1)).astype(np.float32)


def resize_bilinear(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Step 4: ``F.interpolate(bilinear, align_corners=False)`` of a 2-D float32 array."""
    t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))[None, None]
    if t.shape[-2:] == (height, width):
        return t[0, 0].numpy().copy()
    out = F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False)
    return out[0, 0].numpy()


def normalize(y: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Step 5: ``(y - mean) / std`` in float32."""
    return ((np.asarray(y, np.float32) - np.float32(mean)) / np.float32(std)).astype(np.float32)


def prepare_frame(
    raw: np.ndarray,
    slope: float = 1.0,
    intercept: float = 0.0,
    modality: str = "CR",
    photometric: str = "MONOCHROME2",
    manifest_like: Mapping[str, Any] = DEFAULT_MANIFEST,
) -> np.ndarray:
    """Steps 1-5 for one frame: stored values (rows × cols) → model input [H, W] float32."""
    if np.asarray(raw).ndim != 2:
        raise ValueError(f"prepare_frame wants a 2-D frame, got shape {np.shape(raw)}")
    y = window(rescale(raw, slope, intercept), window_for(modality, manifest_like))
    if photometric == "MONOCHROME1":
        y = (np.float32(1) - y).astype(np.float32)
    elif photometric != "MONOCHROME2":
        raise ValueError(f"unsupported PhotometricInterpretation {photometric!r}")
    img = manifest_like["image"]
    y = resize_bilinear(y, int(img["height"]), int(img["width"]))
    norm = manifest_like["normalize"]
    return normalize(y, norm["mean"], norm["std"])


def prob_to_mask(prob: np.ndarray, rows: int, cols: int, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Post-processing: resize ``prob`` [H, W] back to rows × cols; return ``(prob_resized, mask uint8)``."""
    p = resize_bilinear(np.asarray(prob, np.float32), rows, cols)
    return p, (p >= np.float32(threshold)).astype(np.uint8)


def resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a binary truth mask the way predictions are judged: bilinear, then ``>= 0.5``."""
    return (resize_bilinear(np.asarray(mask, np.float32), height, width) >= np.float32(0.5)).astype(np.float32)
