"""ImageNet ConvNeXt weights into `tmca.image_encoder` (`tmca.train --init-image FILE`).

Three naming layouts of the same network are read (detected from the keys; a leading `module.` is
dropped):

* torchvision (`torchvision.models.convnext_tiny().state_dict()`): `features.0.0` stem conv,
  `features.0.1` stem LN, `features.{1,3,5,7}.j.block.{0,2,3,5}` depthwise conv / LN / fc1 / fc2 and
  `...layer_scale` [C,1,1], `features.{2,4,6}.{0,1}` downsample LN / conv, `classifier.*` head;
* timm (`timm.create_model("convnext_tiny")`): `stem.{0,1}`, `stages.i.downsample.{0,1}`,
  `stages.i.blocks.j.{conv_dw,norm,mlp.fc1,mlp.fc2,gamma}`, `head.*` / `norm_pre.*`;
* the original ConvNeXt release: `downsample_layers.0.{0,1}` stem, `downsample_layers.i.{0,1}`,
  `stages.i.j.{dwconv,norm,pwconv1,pwconv2,gamma}`, `norm.*` / `head.*`.

The blocks compute the same function: tmca's block is depthwise 7x7 conv -> channels-first LN (eps
1e-6) -> 1x1 conv -> exact GELU -> 1x1 conv -> x + gamma * y; torchvision's and timm's permute to
channels-last and use `nn.Linear`, so fc weights [4C, C] become 1x1 conv weights [4C, C, 1, 1] and
layer scale [C,1,1] becomes [C]. Stochastic depth is the identity at inference (and tmca has none).

The stem takes tmca's one grey channel, normalised by the manifest (`z = (y - 0.5) / 0.25`, y the
windowed image in [0, 1]); the ImageNet networks take RGB normalised per channel. `input_norm`:

* `"imagenet"` (default): fold both into the stem: with y replicated to R, G, B and normalised by
  ImageNet's mean/std, `conv(x) = b + sum_c W_c * (y - m_c) / s_c`, and y = std*z + mean, so
  `W' = std * sum_c W_c / s_c` and `b' = b + sum_{c,k} W_c[k] * (mean - m_c) / s_c`. Exact, because the
  4x4 stride-4 stem has no padding: tmca's encoder on z equals the ImageNet network on the grey image
  fed as RGB (tested against torchvision).
* `"sum"`: `W' = sum_c W_c` (the usual grey adaptation, ignoring the normalisations).

Every tensor of the checkpoint is accounted for: loaded into a named tmca parameter, or listed as
deliberately unused (the classifier head). Anything else, a missing tmca parameter, or a shape
mismatch is an error naming the parameter.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import torch
import torch.nn as nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# layout -> [(regex on the checkpoint name, function of the match giving the tmca name)]
_Rule = Tuple[str, Callable[[re.Match], str]]
_PART_TV = {"0": "dwconv", "2": "norm", "3": "pw1", "5": "pw2"}
_PART_TIMM = {"conv_dw": "dwconv", "norm": "norm", "mlp.fc1": "pw1", "mlp.fc2": "pw2"}
_PART_FB = {"dwconv": "dwconv", "norm": "norm", "pwconv1": "pw1", "pwconv2": "pw2"}
RULES: Dict[str, List[_Rule]] = {
    "torchvision": [
        (r"features\.0\.([01])\.(weight|bias)", lambda m: f"stem.{m[1]}.{m[2]}"),
        (r"features\.([246])\.([01])\.(weight|bias)", lambda m: f"downs.{int(m[1]) // 2 - 1}.{m[2]}.{m[3]}"),
        (r"features\.([1357])\.(\d+)\.block\.([0235])\.(weight|bias)",
         lambda m: f"stages.{int(m[1]) // 2}.{m[2]}.{_PART_TV[m[3]]}.{m[4]}"),
        (r"features\.([1357])\.(\d+)\.layer_scale", lambda m: f"stages.{int(m[1]) // 2}.{m[2]}.gamma"),
    ],
    "timm": [
        (r"stem\.([01])\.(weight|bias)", lambda m: f"stem.{m[1]}.{m[2]}"),
        (r"stages\.([123])\.downsample\.([01])\.(weight|bias)", lambda m: f"downs.{int(m[1]) - 1}.{m[2]}.{m[3]}"),
        (r"stages\.([0-3])\.blocks\.(\d+)\.(conv_dw|norm|mlp\.fc1|mlp\.fc2)\.(weight|bias)",
         lambda m: f"stages.{m[1]}.{m[2]}.{_PART_TIMM[m[3]]}.{m[4]}"),
        (r"stages\.([0-3])\.blocks\.(\d+)\.(?:ls\.)?gamma", lambda m: f"stages.{m[1]}.{m[2]}.gamma"),
    ],
    "convnext": [
        (r"downsample_layers\.0\.([01])\.(weight|bias)", lambda m: f"stem.{m[1]}.{m[2]}"),
        (r"downsample_layers\.([123])\.([01])\.(weight|bias)", lambda m: f"downs.{int(m[1]) - 1}.{m[2]}.{m[3]}"),
        (r"stages\.([0-3])\.(\d+)\.(dwconv|norm|pwconv1|pwconv2)\.(weight|bias)",
         lambda m: f"stages.{m[1]}.{m[2]}.{_PART_FB[m[3]]}.{m[4]}"),
        (r"stages\.([0-3])\.(\d+)\.gamma", lambda m: f"stages.{m[1]}.{m[2]}.gamma"),
    ],
}
# tensors of each layout that tmca deliberately does not use: the ImageNet classifier head
UNUSED: Dict[str, List[str]] = {
    "torchvision": [r"classifier\..*"],
    "timm": [r"head\..*", r"norm_pre\..*"],
    "convnext": [r"head\..*", r"norm\.(weight|bias)"],
}


@dataclass
class LoadReport:
    """What a loader did with every tensor of a checkpoint."""

    layout: str
    loaded: Dict[str, str] = field(default_factory=dict)   # tmca name <- checkpoint name
    unused: Dict[str, str] = field(default_factory=dict)   # checkpoint name -> why it is not used
    notes: List[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.layout}: {len(self.loaded)} tensors loaded, {len(self.unused)} unused "
                f"({', '.join(sorted(self.unused)[:4])}{', ...' if len(self.unused) > 4 else ''})"
                + ("; " + "; ".join(self.notes) if self.notes else ""))


def detect_layout(keys) -> str:
    keys = set(keys)
    if "features.0.0.weight" in keys:
        return "torchvision"
    if "stem.0.weight" in keys:
        return "timm"
    if "downsample_layers.0.0.weight" in keys:
        return "convnext"
    raise ValueError("not a ConvNeXt state dict in a known layout (torchvision features.0.0.weight, "
                     "timm stem.0.weight or ConvNeXt downsample_layers.0.0.weight); first keys: "
                     + ", ".join(sorted(keys)[:5]))


def adapt_stem(w: torch.Tensor, b: torch.Tensor, in_channels: int, input_norm: str,
               mean: float, std: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """RGB ImageNet stem (weight [C,3,k,k], bias [C]) -> tmca's grey stem (see the module docstring)."""
    if w.shape[1] == in_channels:
        return w, b
    if w.shape[1] != 3 or in_channels != 1:
        raise ValueError(f"stem: checkpoint takes {w.shape[1]} channels, tmca {in_channels}; only RGB -> grey is adapted")
    w64, b64 = w.double(), b.double()
    if input_norm == "sum":
        return w64.sum(1, keepdim=True).to(w.dtype), b
    if input_norm != "imagenet":
        raise ValueError(f"input_norm must be 'imagenet' or 'sum', got {input_norm!r}")
    m = torch.tensor(IMAGENET_MEAN, dtype=torch.float64)[None, :, None, None]
    s = torch.tensor(IMAGENET_STD, dtype=torch.float64)[None, :, None, None]
    a = (w64 / s).sum(1, keepdim=True)                                   # [C,1,k,k]
    new_w = std * a
    new_b = b64 + (w64 * (mean - m) / s).sum((1, 2, 3))
    return new_w.to(w.dtype), new_b.to(b.dtype)


def convnext_to_tmca(state: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor],
                     in_channels: int = 1, input_norm: str = "imagenet", mean: float = 0.5,
                     std: float = 0.25) -> Tuple[Dict[str, torch.Tensor], LoadReport]:
    """Map a ConvNeXt state dict onto the names and shapes of `target` (an ImageEncoder state dict)."""
    state = {k[7:] if k.startswith("module.") else k: v for k, v in state.items()}
    layout = detect_layout(state)
    rep = LoadReport(layout)
    out: Dict[str, torch.Tensor] = {}
    rules = [(re.compile(p), f) for p, f in RULES[layout]]
    unused = [re.compile(p) for p in UNUSED[layout]]
    unexpected = []
    for k, v in state.items():
        dst = next((f(m) for r, f in rules if (m := r.fullmatch(k))), None)
        if dst is None:
            if any(u.fullmatch(k) for u in unused):
                rep.unused[k] = "ImageNet classifier head (tmca's decoder replaces it)"
            else:
                unexpected.append(k)
            continue
        if dst not in target:
            unexpected.append(f"{k} (-> {dst}, which tmca's encoder does not have: deeper than cfg.depths?)")
            continue
        t = target[dst]
        if dst.endswith(".gamma"):
            v = v.reshape(-1)
        elif re.search(r"\.pw[12]\.weight$", dst) and v.ndim == 2:
            v = v[:, :, None, None]
        if dst in out:
            raise ValueError(f"{k}: tmca parameter image_encoder.{dst} filled twice")
        out[dst] = v
        rep.loaded[dst] = k
    if unexpected:
        raise ValueError(f"{layout} checkpoint: tensors tmca cannot place: " + ", ".join(unexpected[:8])
                         + (f" and {len(unexpected) - 8} more" if len(unexpected) > 8 else ""))
    missing = sorted(set(target) - set(out))
    if missing:
        raise ValueError(f"{layout} checkpoint: no tensor for image_encoder." + ", image_encoder.".join(missing[:8])
                         + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
                         + " (is cfg.depths/widths ConvNeXt-Tiny's 3/3/9/3, 96/192/384/768?)")
    if "stem.0.weight" in out and out["stem.0.weight"].shape[1] != in_channels:
        out["stem.0.weight"], out["stem.0.bias"] = adapt_stem(out["stem.0.weight"], out["stem.0.bias"],
                                                              in_channels, input_norm, mean, std)
        rep.notes.append(f"stem RGB -> grey ({input_norm}"
                         + (f", tmca normalisation mean {mean} std {std}" if input_norm == "imagenet" else "") + ")")
    for dst, v in out.items():
        if tuple(v.shape) != tuple(target[dst].shape):
            raise ValueError(f"{rep.loaded[dst]} -> image_encoder.{dst}: checkpoint shape {tuple(v.shape)}, "
                             f"tmca shape {tuple(target[dst].shape)}")
        out[dst] = v.to(target[dst].dtype)
    return out, rep


def load_convnext(encoder: nn.Module, state_or_path, input_norm: str = "imagenet",
                  mean: float = 0.5, std: float = 0.25) -> LoadReport:
    """Load ConvNeXt weights (a state dict, or a file: .pth/.pt/.bin/.safetensors) into an ImageEncoder.
    `mean`/`std` are the manifest's normalisation of tmca's input."""
    if isinstance(state_or_path, (str, Path)):
        from .hf_folder import read_state_dict
        state = read_state_dict(state_or_path)
    else:
        state = state_or_path
    target = encoder.state_dict()
    in_ch = target["stem.0.weight"].shape[1]
    new, rep = convnext_to_tmca(state, target, in_ch, input_norm, mean, std)
    encoder.load_state_dict(new, strict=True)
    return rep
