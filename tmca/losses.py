"""TMCA training loss: Dice + BCE on the mask, plus the weighted alignment and LTE terms."""
from __future__ import annotations

from typing import Dict, List

import torch
import torch.nn.functional as F

from .config import TMCAConfig
from .tsd import resize_mask


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice loss per image, averaged over the batch."""
    p = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    inter = (p * t).sum(1)
    return (1.0 - (2 * inter + eps) / (p.sum(1) + t.sum(1) + eps)).mean()


def bce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, target)


def lte_loss(lte_logits: List[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """BCE of each LTE similarity map against the ground truth area-downsampled to its level."""
    if not lte_logits:
        return target.new_zeros(())
    total = target.new_zeros(())
    for m in lte_logits:
        total = total + F.binary_cross_entropy_with_logits(m, resize_mask(target, m.shape[-2:]))
    return total / len(lte_logits)


def tmca_loss(out: Dict[str, object], target: torch.Tensor, cfg: TMCAConfig) -> Dict[str, torch.Tensor]:
    logits = out["logits"]
    terms = {"dice": dice_loss(logits, target), "bce": bce_loss(logits, target)}
    total = terms["dice"] + terms["bce"]
    if out.get("align") is not None:
        terms["align"] = out["align"]
        total = total + cfg.align_weight * out["align"]
    if out.get("lte_logits"):
        terms["lte"] = lte_loss(out["lte_logits"], target)
        total = total + cfg.lte_weight * terms["lte"]
    terms["total"] = total
    return terms
