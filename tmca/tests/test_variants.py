"""Ablation variants: one table (`tmca.config.ABLATIONS`) behind --variant, the train switches and
`variant_name`; names and switches round-trip to the same config."""
from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from tmca import reproduce
from tmca.config import (ABLATION_FIELDS, ABLATIONS, VARIANTS, TMCAConfig, build_config, variant_name,
                         variant_overrides)
from tmca.train import config_from_args, parse_args

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "tmca-cxr-compact" / "checkpoint.pt"
SWITCHES = [ab.name for ab in ABLATIONS if ab.switch]
LEVEL_CHOICES = [None, [4], [3, 4], [2], [1, 2, 3]]


def _cfg(argv: list[str], preset: str = "compact") -> TMCAConfig:
    """The config tmca.train builds from `argv` (plus --preset and --out)."""
    return config_from_args(parse_args(["--preset", preset, "--out", "unused", *argv]), vocab_size=100)


def _differences(cfg: TMCAConfig, ref: TMCAConfig) -> dict:
    a, b = cfg.to_dict(), ref.to_dict()
    return {k: a[k] for k in a if a[k] != b[k]}


def _flag_combinations():
    """Every combination of the switches with each --align-levels choice, minus the conflicting
    ones (--no-align with --align-levels)."""
    for r in range(len(SWITCHES) + 1):
        for names in itertools.combinations(SWITCHES, r):
            for levels in LEVEL_CHOICES:
                if "no-align" in names and levels:
                    continue
                argv = ["--" + n for n in names] + (["--align-levels", *map(str, levels)] if levels else [])
                yield argv


@pytest.mark.parametrize("preset", ["compact", "paper"])
def test_every_variant_differs_from_full_exactly_where_the_table_says(preset):
    full = build_config(preset)
    for name, overrides in VARIANTS.items():
        assert _differences(build_config(preset, name), full) == overrides, name
    for ab in ABLATIONS:
        assert ab.overrides == {ab.field: ab.value} and ab.field in ABLATION_FIELDS
        assert getattr(full, ab.field) != ab.value, f"{ab.name} changes nothing"


def test_table_names_are_distinct_and_values_unique_per_field():
    assert len({ab.name for ab in ABLATIONS}) == len(ABLATIONS)
    assert len({(ab.field, ab.value) for ab in ABLATIONS}) == len(ABLATIONS)
    assert list(VARIANTS)[0] == "full" and "full" not in {ab.name for ab in ABLATIONS}


def test_each_variant_name_round_trips():
    for name in VARIANTS:
        assert variant_name(build_config("compact", name)) == name
        assert variant_name(_cfg(["--variant", name])) == name


def test_each_switch_is_its_variant():
    for ab in ABLATIONS:
        if ab.switch:
            assert _cfg(["--" + ab.name]) == _cfg(["--variant", ab.name]), ab.name
            assert variant_name(_cfg(["--" + ab.name])) == ab.name
    assert _cfg(["--align-levels", "4"]) == _cfg(["--variant", "align-levels-4"])
    assert variant_name(_cfg(["--align-levels", "4"])) == "align-levels-4"


def test_every_flag_combination_round_trips_through_its_name():
    seen = set()
    for argv in _flag_combinations():
        cfg = _cfg(argv)
        name = variant_name(cfg)
        assert _cfg(["--variant", name]) == cfg, (argv, name)
        assert build_config("compact", name, vocab_size=100) == cfg, (argv, name)
        seen.add(name)
    # distinct configs get distinct names
    assert len(seen) == len({tuple(sorted(_differences(_cfg(a), _cfg([])).items())) for a in _flag_combinations()})


def test_composed_names():
    assert variant_name(_cfg(["--no-tsd", "--no-lte"])) == "no-tsd+no-lte"
    assert variant_name(_cfg(["--no-tsd", "--align-levels", "3", "4", "--no-lte"])) == "no-tsd+align-levels-34+no-lte"
    assert variant_name(_cfg(["--no-text", "--no-lte"])) == "no-lte+no-text"
    assert variant_name(_cfg(["--no-align", "--no-tsd"])) == "no-tsd+no-align"
    # a composed name in any order builds the same config
    assert build_config("compact", "no-lte+no-tsd") == build_config("compact", "no-tsd+no-lte")
    assert variant_overrides("align-levels-34") == {"align_levels": (3, 4)}


def test_switches_win_over_variant_and_set():
    # as before the table: --variant first, then --set, then the switches
    assert _cfg(["--variant", "no-align", "--align-levels", "4"]).align_levels == (4,)
    assert _cfg(["--variant", "no-lte", "--no-tsd"]) == build_config("compact", "no-tsd+no-lte", vocab_size=100)
    assert _cfg(["--variant", "no-lte", "--set", "use_lte=true"]).use_lte is True
    assert _cfg(["--set", "use_lte=true", "--no-lte"]).use_lte is False


def test_invalid_variants_and_switches_are_refused():
    for bad in ["nope", "full+no-tsd", "no-align+align-levels-4", "align-levels-5", "align-levels-44", "no-tsd+"]:
        with pytest.raises(ValueError):
            variant_overrides(bad)
        with pytest.raises(SystemExit):
            parse_args(["--variant", bad, "--out", "unused"])
    with pytest.raises(SystemExit):
        _cfg(["--no-align", "--align-levels", "4"])
    with pytest.raises(SystemExit):
        _cfg(["--align-levels", "5"])


def test_stored_configs_keep_their_names():
    # configs as checkpoints store them (tuples as JSON lists) name as when they were trained
    for name in VARIANTS:
        d = build_config("compact", name).to_dict()
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
        assert variant_name(TMCAConfig.from_dict(d)) == name
    if SHIPPED.is_file():
        ck = torch.load(str(SHIPPED), map_location="cpu")
        assert variant_name(TMCAConfig.from_dict(ck["config"])) == ck["variant"] == "full"


def test_reproduce_runs_the_table_in_order():
    assert reproduce.VARIANT_ORDER == ["full", "no-tsd", "align-levels-4", "no-lte", "no-text", "no-align"]
    for v in reproduce.VARIANT_ORDER:
        parse_args(["--variant", v, "--out", "unused"])
