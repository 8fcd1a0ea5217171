"""Paired tests over seeds, in numpy: the paired t-test and the exact sign-flip permutation test.

Used by `tmca.reproduce` to compare each ablation variant with the full model seed by seed (the
same seed means the same initialisation and batch order, so the per-seed differences are paired).
SciPy is not required: the t distribution's tail comes from the regularised incomplete beta
function, evaluated by its continued fraction.
"""
from __future__ import annotations

import itertools
import math
from typing import Dict, Sequence

import numpy as np


def _betacf(a: float, b: float, x: float, iters: int = 300, eps: float = 1e-15) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, iters + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    front = math.exp(lbeta + a * math.log(x) + b * math.log(1.0 - x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom."""
    if not math.isfinite(t):
        return 0.0
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def paired_t(x: Sequence[float], y: Sequence[float]) -> Dict[str, float]:
    """Paired t-test of ``x - y`` (same seeds, same order): mean and std of the differences, t, p."""
    d = np.asarray(x, np.float64) - np.asarray(y, np.float64)
    n = len(d)
    if n < 2:
        raise ValueError("a paired test needs at least 2 pairs")
    sd = float(d.std(ddof=1))
    mean = float(d.mean())
    t = mean / (sd / math.sqrt(n)) if sd > 0 else (math.inf if mean != 0 else 0.0)
    p = t_two_sided_p(t, n - 1) if sd > 0 else (0.0 if mean != 0 else 1.0)
    return {"n": n, "diff_mean": mean, "diff_std": sd, "t": t, "p": p}


def sign_flip_p(x: Sequence[float], y: Sequence[float]) -> float:
    """Exact two-sided sign-flip permutation p-value of the mean paired difference (all 2^n sign
    patterns; with n pairs it cannot go below 2 / 2^n)."""
    d = np.asarray(x, np.float64) - np.asarray(y, np.float64)
    obs = abs(d.mean())
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(d))))
    stats = np.abs((signs * d).mean(1))
    return float((stats >= obs - 1e-12).mean())


def welch_t(m1: float, s1: float, n1: int, m2: float, s2: float, n2: int) -> Dict[str, float]:
    """Welch's unpaired t-test from summary statistics (mean, sample std, count) of two groups."""
    v = s1 * s1 / n1 + s2 * s2 / n2
    if v <= 0:
        return {"diff_mean": m1 - m2, "t": math.inf if m1 != m2 else 0.0, "df": float(n1 + n2 - 2),
                "p": 0.0 if m1 != m2 else 1.0}
    t = (m1 - m2) / math.sqrt(v)
    df = v * v / ((s1 * s1 / n1) ** 2 / (n1 - 1) + (s2 * s2 / n2) ** 2 / (n2 - 1))
    return {"diff_mean": m1 - m2, "t": t, "df": df, "p": t_two_sided_p(t, df)}
