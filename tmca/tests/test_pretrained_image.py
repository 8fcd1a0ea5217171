"""ImageNet ConvNeXt weights into tmca's image encoder: names, shapes, and the same function."""
import re

import pytest
import torch

from tmca.config import build_config
from tmca.image_encoder import ImageEncoder
from tmca.pretrained_image import IMAGENET_MEAN, IMAGENET_STD, convnext_to_tmca, load_convnext

torch.set_num_threads(2)
MEAN, STD = 0.5, 0.25  # the manifest's normalisation of tmca's input


def _randomize(model: torch.nn.Module, seed: int = 0) -> None:
    """Random weights everywhere, layer scales and norms included (ImageNet init has layer scale
    1e-6, which would make every block nearly the identity and hide a wrong mapping)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 or "layer_scale" in name or name.endswith("gamma"):
                base = 1.0 if re.search(r"(\.1|\.0|block\.2|norm)\.weight$", name) else 0.0
                p.copy_(base + 0.2 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)


def _tv_to_timm(sd):
    """torchvision names -> timm names (the timm layout, written out independently of the loader)."""
    out = {}
    for k, v in sd.items():
        if k.startswith("classifier."):
            out["head." + {"0": "norm", "2": "fc"}[k.split(".")[1]] + "." + k.split(".")[2]] = v
            continue
        f = k.split(".")
        i = int(f[1])
        if i == 0:
            out[f"stem.{f[2]}.{f[3]}"] = v
        elif i % 2 == 0:
            out[f"stages.{i // 2}.downsample.{f[2]}.{f[3]}"] = v
        elif f[3] == "layer_scale":
            out[f"stages.{i // 2}.blocks.{f[2]}.gamma"] = v.reshape(-1)
        else:
            part = {"0": "conv_dw", "2": "norm", "3": "mlp.fc1", "5": "mlp.fc2"}[f[4]]
            out[f"stages.{i // 2}.blocks.{f[2]}.{part}.{f[5]}"] = v
    return out


def test_torchvision_convnext_tiny_same_features_and_timm_layout():
    import torchvision as tv  # Debian's python3-torchvision, installed by make deps
    torch.manual_seed(0)
    ref = tv.models.convnext_tiny().eval()
    _randomize(ref)
    enc = ImageEncoder(build_config("paper")).eval()
    rep = load_convnext(enc, ref.state_dict(), "imagenet", MEAN, STD)
    # every tensor accounted for: 4 classifier tensors unused, the rest loaded
    assert set(rep.unused) == {"classifier.0.weight", "classifier.0.bias", "classifier.2.weight", "classifier.2.bias"}
    assert len(rep.loaded) + len(rep.unused) == len(ref.state_dict()) == len(enc.state_dict()) + 4
    z = torch.randn(2, 1, 64, 64)
    rgb = (STD * z + MEAN).repeat(1, 3, 1, 1)
    rgb = (rgb - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]
    with torch.no_grad():
        ours = enc(z)
        x, theirs = rgb, []
        for i, layer in enumerate(ref.features):
            x = layer(x)
            if i in (1, 3, 5, 7):  # outputs of the 4 stages: strides 4, 8, 16, 32
                theirs.append(x)
    diffs = [float((a - b).abs().max()) for a, b in zip(ours, theirs)]
    scales = [float(b.abs().max()) for b in theirs]
    print("stage max abs diff", diffs, "max |feature|", scales)
    assert [a.shape for a in ours] == [b.shape for b in theirs]
    assert max(diffs) < 1e-5 and min(scales) > 0.1

    # the same weights in timm's names load to the same tensors
    enc2 = ImageEncoder(build_config("paper"))
    rep2 = load_convnext(enc2, _tv_to_timm(ref.state_dict()), "imagenet", MEAN, STD)
    assert rep2.layout == "timm" and set(rep2.unused) == {"head.norm.weight", "head.norm.bias", "head.fc.weight", "head.fc.bias"}
    for k, v in enc.state_dict().items():
        assert torch.equal(v, enc2.state_dict()[k]), k


def _tiny_timm_state(widths=(8, 16, 16, 32), depths=(1, 2, 1, 1)):
    sd = {"stem.0.weight": torch.randn(widths[0], 3, 4, 4), "stem.0.bias": torch.randn(widths[0]),
          "stem.1.weight": torch.randn(widths[0]), "stem.1.bias": torch.randn(widths[0]),
          "head.fc.weight": torch.randn(10, widths[3]), "head.fc.bias": torch.randn(10)}
    for i, (c, d) in enumerate(zip(widths, depths)):
        if i:
            sd[f"stages.{i}.downsample.0.weight"] = torch.randn(widths[i - 1])
            sd[f"stages.{i}.downsample.0.bias"] = torch.randn(widths[i - 1])
            sd[f"stages.{i}.downsample.1.weight"] = torch.randn(c, widths[i - 1], 2, 2)
            sd[f"stages.{i}.downsample.1.bias"] = torch.randn(c)
        for j in range(d):
            b = f"stages.{i}.blocks.{j}."
            sd.update({b + "conv_dw.weight": torch.randn(c, 1, 7, 7), b + "conv_dw.bias": torch.randn(c),
                       b + "norm.weight": torch.randn(c), b + "norm.bias": torch.randn(c),
                       b + "mlp.fc1.weight": torch.randn(4 * c, c), b + "mlp.fc1.bias": torch.randn(4 * c),
                       b + "mlp.fc2.weight": torch.randn(c, 4 * c), b + "mlp.fc2.bias": torch.randn(c),
                       b + "gamma": torch.randn(c)})
    return sd


def _tiny_cfg(**kw):
    return build_config("compact", widths=(8, 16, 16, 32), depths=(1, 2, 1, 1), **kw)


def test_timm_layout_values_and_errors_name_the_parameter():
    torch.manual_seed(1)
    sd = _tiny_timm_state()
    enc = ImageEncoder(_tiny_cfg())
    rep = load_convnext(enc, dict(sd), "sum")
    got = enc.state_dict()
    assert torch.equal(got["stages.1.1.pw1.weight"], sd["stages.1.blocks.1.mlp.fc1.weight"][:, :, None, None])
    assert torch.equal(got["stages.3.0.gamma"], sd["stages.3.blocks.0.gamma"])
    assert torch.allclose(got["stem.0.weight"], sd["stem.0.weight"].sum(1, keepdim=True))
    assert set(rep.unused) == {"head.fc.weight", "head.fc.bias"}
    # a shape mismatch names both parameters
    bad = dict(sd)
    bad["stages.2.blocks.0.conv_dw.weight"] = torch.randn(17, 1, 7, 7)
    with pytest.raises(ValueError, match=r"stages\.2\.blocks\.0\.conv_dw\.weight -> image_encoder\.stages\.2\.0\.dwconv\.weight"):
        load_convnext(ImageEncoder(_tiny_cfg()), bad)
    # a tensor tmca cannot place, and a missing one, are errors too
    with pytest.raises(ValueError, match="cannot place: stages.0.blocks.0.mlp.grn.weight"):
        load_convnext(ImageEncoder(_tiny_cfg()), {**sd, "stages.0.blocks.0.mlp.grn.weight": torch.ones(8)})
    short = {k: v for k, v in sd.items() if not k.startswith("stages.1.blocks.1.")}
    with pytest.raises(ValueError, match=r"no tensor for image_encoder\.stages\.1\.1\."):
        load_convnext(ImageEncoder(_tiny_cfg()), short)


def test_imagenet_fold_is_exact_for_the_stem():
    torch.manual_seed(2)
    w, b = torch.randn(8, 3, 4, 4), torch.randn(8)
    sd = _tiny_timm_state()
    sd["stem.0.weight"], sd["stem.0.bias"] = w, b
    new, _ = convnext_to_tmca(sd, ImageEncoder(_tiny_cfg()).state_dict(), 1, "imagenet", MEAN, STD)
    z = torch.randn(2, 1, 16, 16)
    rgb = (STD * z + MEAN).repeat(1, 3, 1, 1)
    rgb = (rgb - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]
    a = torch.nn.functional.conv2d(z, new["stem.0.weight"], new["stem.0.bias"], stride=4)
    r = torch.nn.functional.conv2d(rgb, w, b, stride=4)
    assert float((a - r).abs().max()) < 1e-5
