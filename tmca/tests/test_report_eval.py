"""report_eval's pure parts: Dice, scoring a summary.json, the table, the model-card block."""
import numpy as np
import pytest
from PIL import Image

from tmca import report_eval as re_


def _png(path, mask):
    Image.fromarray(np.asarray(mask, np.uint8) * 255).save(path)
    return path


def test_dice():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    assert re_.dice(a, b) == 1.0
    a[0, :2] = True
    assert re_.dice(a, b) == 0.0
    b[0, 1:3] = True
    assert re_.dice(a, b) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="shapes differ"):
        re_.dice(a, np.zeros((3, 4), bool))


def test_score_run_counts_missing_masks_as_empty(tmp_path):
    t = np.zeros((8, 8), np.uint8)
    t[2:4, 2:4] = 1
    truth = {f"1.{k}": _png(tmp_path / f"t{k}.png", t) for k in (1, 2, 3)}
    _png(tmp_path / "m1.png", t)
    summary = {"series": [
        {"output": "/a/seg.dcm", "masks": [{"sop_instance_uid": "1.1", "file": "m1.png"}]},
        {"output": "(nothing segmented; no SEG written)", "guide": "no_target; sentences: 0 kept"},
        {"output": "/a/seg2.dcm", "no_target": True},
        {"skipped": True, "error": "not a selected modality"},
    ]}
    scores, no_seg, no_target = re_.score_run(summary, tmp_path, truth)
    assert scores == [1.0, 0.0, 0.0]
    assert (no_seg, no_target) == (1, 1)


def _scores():
    S = re_.Score
    return [S("template", False, False, 40, 0.9, 0, 0, 0), S("lobes", False, False, 40, 0.85, 0, 0, 0, [], 0.4),
            S("hedges", True, False, 40, 0.8, 0, 0, 0), S("negative", False, False, 40, None, 31, 30, 0),
            S("template_swapped", False, True, 40, 0.2, 0, 0, 0)]


def test_render_table():
    text = re_.render_table(_scores())
    lines = text.splitlines()
    assert lines[0] == "| family | held out | n | Dice mean | Δ vs template | model alone (no normaliser) |"
    assert "| template | no | 40 | 0.900 | — | — |" in lines
    assert "| lobes | no | 40 | 0.850 | -0.050 | 0.400 |" in lines
    assert "| hedges | yes | 40 | 0.800 | -0.100 | — |" in lines
    assert "| template_swapped (control) | no | 40 | 0.200 | -0.700 | — |" in lines
    assert not any(l.startswith("| negative") for l in lines)
    assert "30/40 recorded as \"no target\" without a model run; 9 of them with an empty SEG" in text


def test_results_doc():
    doc = re_.results_doc(_scores(), 4712, 40, "m", "tmcad x")
    assert doc["held_out"] == ["hedges"]
    assert doc["families"]["lobes"]["delta_vs_template"] == -0.05
    assert doc["families"]["template"]["delta_vs_template"] is None
    assert doc["families"]["negative"]["dice_mean"] is None and doc["families"]["negative"]["no_seg"] == 31


def test_replace_card_block():
    card = f"# Card\n\nintro\n\n{re_.CARD_START}\nold table\n{re_.CARD_END}\n\n## Limits\n"
    new = re_.replace_card_block(card, "new table\n")
    assert new == f"# Card\n\nintro\n\n{re_.CARD_START}\nnew table\n{re_.CARD_END}\n\n## Limits\n"
    assert re_.replace_card_block(new, "new table") == new  # idempotent

    plain = "# Card\n\n## Limits\n- few\n"
    appended = re_.replace_card_block(plain, "t")
    assert appended == f"# Card\n\n## Limits\n- few\n\n{re_.CARD_HEADING}\n\n{re_.CARD_START}\nt\n{re_.CARD_END}\n"
    assert re_.replace_card_block(appended, "u").count(re_.CARD_HEADING) == 1

    with pytest.raises(ValueError, match="only one of"):
        re_.replace_card_block(f"x {re_.CARD_START} y", "t")


def test_variants_cover_the_cr_families_and_controls():
    names = [v.name for v in re_.variants()]
    assert names[0] == "template" and "negative" in names
    assert names[-2:] == ["template_swapped", "lobes_swapped"]
    assert not any(n.startswith("ct_") for n in names)
