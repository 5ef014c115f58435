"""The group-imbalanced twin: the skewed draw of the training split, the per-group accuracy and shift
rows (hand-computed cases, controls that must say "no evidence", planted effects that must be found),
the pairing of twins in the plan and the config checks."""

import json
import math

import numpy as np
import pandas as pd
import pytest

import yaml

from facexai.config import ConfigError, check_config, check_schema
from scipy import stats

from facexai.group_twin import (ACCURACY_COLUMNS, MEMBER, REST, SHIFT_COLUMNS, paired_side_rows, per_image,
                                shift_by_group, with_verdicts)
from facexai.labels import MASS_PARTS
from facexai.plan import RunPlan
from facexai.skew import draw_counts, skewed_rows
from facexai.stats import write_statistics
from test_groups import make_dataset

from conftest import REPO

# ----------------------------------------------------------------------------- the skewed draw


def test_draw_counts_by_hand():
    # 10 members, 90 others: share 0.1 can use them all; 0.5 is limited by the 10 members
    assert draw_counts(10, 90, 0.1, None) == (10, 90)
    assert draw_counts(10, 90, 0.5, None) == (10, 10)
    assert draw_counts(10, 90, 0.0, None) == (0, 90)
    assert draw_counts(10, 90, 1.0, None) == (10, 0)
    assert draw_counts(10, 90, 0.05, 40) == (2, 38)
    assert draw_counts(10, 90, 0.25, 10) == (3, 7)         # 2.5 rounds up, not to the even 2
    assert draw_counts(100, 100, 0.35, 90) == (32, 58)     # 31.5 as written, though the float product is 31.4999...
    with pytest.raises(ValueError, match="share 0.2 of 2 images rounds to 0 members and 2 others"):
        draw_counts(10, 90, 0.2, 2)
    with pytest.raises(ValueError, match=r"needs members of the group, and the training split has none"):
        draw_counts(0, 90, 0.5, None)
    with pytest.raises(ValueError, match=r"100 training images with share 0.5 need 50 members and 50 others; "
                                         r"the training split has 10 and 90"):
        draw_counts(10, 90, 0.5, 100)


@pytest.mark.parametrize("share", [0.0, 0.05, 0.3, 0.5, 0.9])
def test_the_draw_has_the_share_asked_for(share):
    rng = np.random.default_rng(1)
    rows = np.arange(0, 600, 2)                       # the training split's dataset rows
    member = np.where(rng.random(rows.size) < 0.4, True, False).astype(object)
    member[::17] = None                               # unknown membership: never drawn, counted
    chosen, counts = skewed_rows(rows, member, share, None, seed=3)
    is_member = dict(zip(rows.tolist(), member.tolist()))
    drawn = [is_member[r] for r in chosen.tolist()]
    assert None not in drawn
    assert set(chosen.tolist()) <= set(rows.tolist()) and len(set(chosen.tolist())) == chosen.size
    assert sum(drawn) == counts["n_member"] == round(share * chosen.size)
    assert counts["pool_unknown"] == int(np.sum([m is None for m in member]))
    # the largest draw: one side is used up (the scarcer one for this share)
    assert counts["n_member"] == counts["pool_member"] or counts["n_rest"] == counts["pool_rest"] or \
        abs(counts["n_member"] - share * (counts["n_train"] + 1)) > 0.5
    again, _ = skewed_rows(rows, member, share, None, seed=3)
    assert np.array_equal(chosen, again)               # seeded


# ----------------------------------------------------------------------------- per-group rows


def by_side(rows):
    """The rows by side, the `yes - no` row with its verdict (a family of one test)."""
    table = with_verdicts(pd.DataFrame(rows).assign(family=0), ["family"], 0.05)
    return {r["side"]: r for r in table.to_dict(orient="records")}


def test_accuracy_rows_by_hand():
    # members: fair right on all 3, skewed on 1 of 3; rest: both right on 2 of 4 (the same images)
    fair = np.array([1, 1, 1, 1, 1, 0, 0], float)
    skewed = np.array([1, 0, 0, 1, 1, 0, 0], float)
    side = np.array([MEMBER] * 3 + [REST] * 4 + [], object)
    rows = by_side(paired_side_rows(fair, skewed, side, 500, 0))
    assert rows[MEMBER]["fair_mean"] == 1 and rows[MEMBER]["skewed_mean"] == pytest.approx(1 / 3)
    assert rows[REST]["fair_mean"] == rows[REST]["skewed_mean"] == 0.5
    assert rows[REST]["difference_ci_low"] == rows[REST]["difference_ci_high"] == 0     # paired: no difference
    gap = rows["yes - no"]
    assert gap["fair_mean"] == pytest.approx(0.5) and gap["skewed_mean"] == pytest.approx(1 / 3 - 0.5)
    assert gap["difference_mean"] == pytest.approx(-2 / 3)
    assert (gap["n_member"], gap["n_rest"], gap["unit"]) == (3, 4, "image")


def test_a_planted_group_cost_is_found_and_a_copy_of_the_fair_model_is_not():
    rng = np.random.default_rng(0)
    side = np.array([MEMBER] * 60 + [REST] * 90, object)      # > 120 images: scipy's normal approximation
    fair = (rng.random(150) < 0.85).astype(float)
    # control: the skewed "model" is the fair one: every difference is exactly 0, no evidence
    same = by_side(paired_side_rows(fair, fair.copy(), side, 1000, 0))["yes - no"]
    assert same["difference_mean"] == 0 and same["verdict"] == "no difference found" and same["p"] == 1
    # the skewed model errs on a third of the members where the fair one was right
    skewed = fair.copy()
    flip = np.flatnonzero((side == MEMBER) & (fair == 1))[::3]
    skewed[flip] = 0
    cost = by_side(paired_side_rows(fair, skewed, side, 1000, 0))["yes - no"]
    assert cost["verdict"] == "differ" and cost["difference_ci_high"] < 0
    assert cost["difference_mean"] == pytest.approx(-flip.size / 60)
    # the test: the members' paired differences against the rest's (scipy's Mann-Whitney, ties included)
    d = skewed - fair
    want = stats.mannwhitneyu(d[side == MEMBER], d[side == REST], alternative="two-sided", method="asymptotic")
    assert cost["p"] == pytest.approx(want.pvalue, rel=1e-6) and cost["statistic"] == want.statistic
    # the same errors spread over both sides in proportion: the gap does not change
    even = fair.copy()
    even[np.flatnonzero((side == MEMBER) & (fair == 1))[::5]] = 0
    even[np.flatnonzero((side == REST) & (fair == 1))[::5]] = 0
    assert by_side(paired_side_rows(fair, even, side, 1000, 0))["yes - no"]["verdict"] == "no difference found"


def test_the_person_is_the_unit_of_the_test_and_the_cis():
    rng = np.random.default_rng(2)
    persons = np.repeat(np.arange(20), 3)                 # 20 persons, 3 images each
    side = np.where(persons < 8, MEMBER, REST).astype(object)
    fair = (rng.random(60) < 0.8).astype(float)
    skewed = np.where((side == MEMBER) & (rng.random(60) < 0.3), 0.0, fair)
    row = by_side(paired_side_rows(fair, skewed, side, 500, 0, persons))["yes - no"]
    assert (row["unit"], row["n_member"], row["n_member_units"], row["n_rest_units"]) == ("person", 24, 8, 12)
    # the test compares the persons' mean differences (exact, 20 units): scipy's exact test where no ties
    d = (skewed - fair).reshape(20, 3).mean(axis=1)
    from facexai.groups import rank_sum_p
    assert row["p"] == pytest.approx(rank_sum_p(d[:8], d[8:]))
    # copying every image of every person changes neither the test nor (beyond resampling noise) the CI;
    # with the image as the unit the copies would shrink both
    copies = by_side(paired_side_rows(np.repeat(fair, 3), np.repeat(skewed, 3), np.repeat(side, 3), 500, 0,
                                      np.repeat(persons, 3)))["yes - no"]
    assert copies["p"] == pytest.approx(row["p"]) and copies["difference_mean"] == pytest.approx(row["difference_mean"])
    width = row["difference_ci_high"] - row["difference_ci_low"]
    assert copies["difference_ci_high"] - copies["difference_ci_low"] == pytest.approx(width, rel=0.25)
    as_images = by_side(paired_side_rows(np.repeat(fair, 3), np.repeat(skewed, 3), np.repeat(side, 3), 500, 0))
    assert as_images["yes - no"]["p"] < row["p"] / 10       # what treating copies as independent would claim


def test_small_or_unknown_sides_are_counted_and_untestable():
    side = np.array([MEMBER, REST, REST, "", ""], object)
    rows = by_side(paired_side_rows(np.ones(5), np.zeros(5), side, 200, 0))
    assert rows["yes - no"]["verdict"] == "untestable"
    assert rows["yes - no"]["n_unknown"] == 2 and rows["yes - no"]["n_member"] == 1
    assert np.isnan(rows[MEMBER]["fair_ci_low"])          # one image: no CI, never a made-up one
    empty = by_side(paired_side_rows(np.ones(3), np.ones(3), np.array([REST] * 3, object), 200, 0))
    assert np.isnan(empty[MEMBER]["fair_mean"]) and empty["yes - no"]["verdict"] == "untestable"


def shares_frame(ids, part_values: dict):
    frame = pd.DataFrame({"id": ids, **{p: 0.0 for p in MASS_PARTS}})
    for part, values in part_values.items():
        frame[part] = values
    return frame


def test_shift_by_group_finds_mass_that_moves_for_the_group_only(tmp_path):
    ids = np.arange(30)
    male = np.where(ids < 12, 1, -1)
    data = make_dataset(tmp_path / "d.h5", ids, male=male)
    fair = shares_frame(ids, {"eyes": 1.0})
    # the skewed model's maps move to the skin for the 12 members, stay on the eyes for the rest
    skewed = shares_frame(ids, {"eyes": np.where(ids < 12, 0.2, 1.0), "skin": np.where(ids < 12, 0.8, 0.0)})
    paired = fair.merge(skewed, on="id", suffixes=("_fair", "_skewed"))
    table = with_verdicts(shift_by_group(paired, data, "Male", "gradcam", "Smiling", n_resamples=300),
                          ["method"], 0.05)
    assert list(table.columns) == SHIFT_COLUMNS
    rows = table.set_index(["part", "side"])
    assert rows.loc[("skin", "yes"), "difference_mean"] == pytest.approx(0.8)
    assert rows.loc[("skin", "no"), "difference_mean"] == 0
    assert rows.loc[("skin", "yes - no"), "verdict"] == "differ"
    assert rows.loc[("eyes", "yes - no"), "difference_mean"] == pytest.approx(-0.8)
    assert rows.loc[("hair", "yes - no"), "verdict"] == "no difference found"     # nothing moved there
    # 12 against 18 images, exact: complete separation gives 2 / C(30, 12); Holm over the family's 9
    # parts, skin and eyes tied at the smallest p: 9 p for both
    assert rows.loc[("skin", "yes - no"), "p"] == pytest.approx(2 / math.comb(30, 12))
    assert rows.loc[("skin", "yes - no"), "p_holm"] == pytest.approx(9 * 2 / math.comb(30, 12))
    # a map without mass (NaN shares) leaves its image out, counted per model
    paired.loc[0, [f"{p}_skewed" for p in MASS_PARTS]] = np.nan
    rows = shift_by_group(paired, data, "Male", "gradcam", "Smiling", n_resamples=100).set_index(["part", "side"])
    assert rows.loc[("skin", "yes"), "n_member"] == 11 and rows.loc[("skin", "yes"), "n_no_mass_skewed"] == 1
    with pytest.raises(ValueError, match="an image appears twice"):
        shift_by_group(pd.concat([paired, paired]), data, "Male", "gradcam", "Smiling")


def test_all_attributes_average_each_image_first():
    a = shares_frame([1, 2], {"eyes": [1.0, 0.5]}).merge(shares_frame([1, 2], {"skin": [1.0, 1.0]}), on="id",
                                                         suffixes=("_fair", "_skewed"))
    b = shares_frame([1], {"mouth": [1.0]}).merge(shares_frame([1], {"mouth": [1.0]}), on="id",
                                                  suffixes=("_fair", "_skewed"))
    out = per_image([a, b]).set_index("id")
    assert len(out) == 2                                 # two images, not three decisions
    assert out.loc[1, "eyes_fair"] == 0.5 and out.loc[1, "mouth_fair"] == 0.5 and out.loc[2, "eyes_fair"] == 0.5
    assert out.loc[1, "skin_skewed"] == 0.5 and out.loc[1, "mouth_skewed"] == 0.5


@pytest.mark.slow
def test_summary_carries_the_group_twin(tmp_path, tiny_run):
    accuracy = tmp_path / "a.csv"
    shift = tmp_path / "s.csv"
    rows = paired_side_rows(np.ones(6), np.array([0, 0, 1, 1, 1, 1.0]), np.array([MEMBER] * 2 + [REST] * 4, object),
                            100, 0)
    pd.DataFrame([{**r, "fair": "a", "skewed": "b", "group": "Male", "attribute": "all", "fair_n_train": 10,
                   "fair_train_share": 0.5, "skewed_n_train": 10, "skewed_train_share": 0.1} for r in rows],
                 columns=ACCURACY_COLUMNS).to_csv(accuracy, index=False)
    pd.DataFrame([{**r, "fair": "a", "skewed": "b", "group": "Male", "method": "gradcam", "attribute": "all",
                   "part": "skin"} for r in rows], columns=SHIFT_COLUMNS).to_csv(shift, index=False)
    csvs = sorted((tiny_run / "results" / "metrics").glob("resnet/*/*.csv"))
    outputs = {"summary": tmp_path / "summary.json"}
    write_statistics(csvs, outputs, n_resamples=50, group_twin_csvs=[accuracy, shift])
    summary = json.loads((tmp_path / "summary.json").read_text())["group_twins"]
    assert [r["side"] for r in summary["accuracy"]] == ["yes", "no", "yes - no"]
    assert [r["side"] for r in summary["shift"]] == ["yes - no"]
    assert summary["accuracy"][2]["difference_mean"] == pytest.approx(-1.0)


# ----------------------------------------------------------------------------- plan and config


def config_with(models):
    """The default config with these models (checked against the schema first)."""
    config = yaml.safe_load(open(f"{REPO}/config/config.yaml"))
    config["models"] = models
    check_schema(config, f"{REPO}/config/schema/config.schema.yaml")
    return config


RESNET = {"name": "resnet", "arch": "resnet_small"}
EXPLAINED = ["Wearing_Hat", "Big_Nose", "Bangs"]  # with Eyeglasses and Smiling: config.yaml's explained attributes


def test_twins_are_paired_with_the_first_plain_model_of_their_architecture_or_the_one_named():
    skewed = {"name": "skewed", "arch": "resnet_small", "group_share": {"group": "Pale_Skin", "share": 0.05}}
    vgg = {"name": "vgg", "arch": "vgg_small"}
    config = config_with([vgg, RESNET, skewed])
    check_config(config)
    assert RunPlan(config).group_twins == [("resnet", "skewed", "Pale_Skin")]
    # another width is not a twin: no default partner then
    wide = {**RESNET, "width": 64}
    with pytest.raises(ConfigError, match="models.skewed.group_share: no fair partner"):
        check_config(config_with([vgg, wide, skewed]))
    # a balanced draw named as the fair partner is compared with the skewed one, and with nothing else
    balanced = {"name": "balanced", "arch": "resnet_small",
                "group_share": {"group": "Pale_Skin", "share": 0.5, "size": 300}}
    named = {**skewed, "group_share": {**skewed["group_share"], "size": 300, "fair": "balanced"}}
    config = config_with([RESNET, balanced, named])
    check_config(config)
    plan = RunPlan(config)
    assert plan.group_twins == [("balanced", "skewed", "Pale_Skin")]
    # the README's pair alone: the balanced model needs no partner of its own
    check_config(config_with([balanced, named]))
    assert RunPlan(config_with([balanced, named])).group_twins == [("balanced", "skewed", "Pale_Skin")]
    # which model it is compared with is not a training setting (changing it retrains nothing)
    assert "fair" not in plan.training_config("skewed")["group_share"]
    assert plan.training_config("skewed")["group_share"]["share"] == 0.05
    assert plan.group_twin_models == ["balanced", "skewed"]
    assert any(p.endswith("figures/group_twin.png") for p in plan.final_outputs())
    assert not any("group_twin" in p for p in RunPlan(config_with([RESNET])).final_outputs())


@pytest.mark.parametrize("models, message", [
    ([{"name": "s", "arch": "resnet_small", "group_share": {"group": "Pale_Skin", "share": 0.1}}],
     r"models.s.group_share: no fair partner"),
    ([RESNET, {"name": "s", "arch": "resnet_small", "group_share": {"group": "Tall", "share": 0.1}}],
     r"models.s.group_share.group: 'Tall' is not a CelebA attribute"),
    ([{"name": "v", "arch": "vgg_small"},
      {"name": "s", "arch": "resnet_small", "group_share": {"group": "Male", "share": 0.1, "fair": "v"}}],
     r"models.s.group_share.fair: 'v' must be trained here with the same settings; it differs in \['arch'\]"),
    ([{"name": "b", "arch": "resnet_small", "dataset": "shortcut"},
      {"name": "s", "arch": "resnet_small", "group_share": {"group": "Male", "share": 0.1, "fair": "b"}}],
     r"models.s.group_share.fair: 'b' must be trained here with the same settings; it differs in \['dataset'\]"),
    # the random baseline is seeded by the attribute's position in the model's output: twins list them alike
    ([{"name": "r", "arch": "resnet_small", "attributes": ["Smiling", "Eyeglasses", *EXPLAINED]},
      {"name": "s", "arch": "resnet_small", "attributes": ["Eyeglasses", "Smiling", *EXPLAINED],
       "group_share": {"group": "Male", "share": 0.1, "fair": "r"}}],
     r"differs in \['attributes'\]"),
    ([RESNET, {"name": "a", "arch": "resnet_small", "group_share": {"group": "Male", "share": 0.1, "fair": "b"}},
      {"name": "b", "arch": "resnet_small", "group_share": {"group": "Male", "share": 0.5, "fair": "a"}}],
     r"models.a.group_share.fair: 'a' is another model's fair partner, .* a chain of partners is not supported"),
    ([RESNET, {"name": "a", "arch": "resnet_small", "group_share": {"group": "Male", "share": 0.1, "fair": "a"}}],
     r"models.a.group_share.fair: 'a' names itself"),
    ([{"name": "b", "arch": "resnet_small", "group_share": {"group": "Male", "share": 0.5, "size": 300}},
      {"name": "k", "arch": "resnet_small", "group_share": {"group": "Pale_Skin", "share": 0.05, "size": 300,
                                                             "fair": "b"}}],
     r"models.k.group_share.fair: 'b' draws its training set by Male, this model by Pale_Skin"),
    ([RESNET, {"name": "s", "arch": "resnet_small", "group_share": {"group": "Male", "share": 0.1, "fair": "x"}}],
     r"models.s.group_share.fair: 'x' is not another model"),
    ([RESNET, {"name": "s", "arch": "resnet_small", "weights": "w.pt",
               "group_share": {"group": "Male", "share": 0.1}}],
     r"models.s.group_share: a user model \(weights\) is not trained here"),
])
def test_bad_group_shares_are_refused_naming_the_key(models, message):
    with pytest.raises(ConfigError, match=message):
        check_config(config_with(models))
