"""Per-group audits: membership from the dataset's attributes, the group rows, and the test of a
group against the rest (by image, Holm, untestable when the groups are too small to ever pass)."""

import h5py
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from facexai.groups import (MEMBER, REST, UNKNOWN, group_differences, group_rows, membership, with_membership,
                            write_group_tables)
from facexai.labels import ATTRIBUTE_INDEX


def make_dataset(path, ids, male, young=None):
    attributes = -np.ones((len(ids), 40), np.int8)
    attributes[:, ATTRIBUTE_INDEX["Male"]] = male
    if young is not None:
        attributes[:, ATTRIBUTE_INDEX["Young"]] = young
    with h5py.File(path, "w") as h5:
        h5["ids"], h5["attributes"] = np.asarray(ids), attributes
    return path


def test_membership_by_hand(tmp_path):
    path = make_dataset(tmp_path / "d.h5", [7, 3, 9], male=[1, -1, 0])
    found = membership(path, [9, 7, 7, 3], ["Male", "Young"])
    assert list(found["Male"]) == [UNKNOWN, MEMBER, MEMBER, REST]   # 0: unknown, never guessed
    assert list(found["Young"]) == [REST] * 4
    with pytest.raises(ValueError, match=r"sample id\(s\) \[5\] are not in the dataset"):
        membership(path, [5], ["Male"])
    with pytest.raises(ValueError, match=r"groups: unknown attribute\(s\) \['Tall'\]"):
        membership(path, [7], ["Tall"])


def table_of(member_values, rest_values, decisions_per_image=1):
    """A per-sample table of one model, method and region: one image per value, members first."""
    rows = []
    for side, values, offset in ((MEMBER, member_values, 0), (REST, rest_values, 1000)):
        for i, v in enumerate(values):
            for d in range(decisions_per_image):
                rows.append({"model": "m", "method": "g", "region": "eyes", "id": offset + i, "attribute": f"A{d}",
                             "rp": v + 0.001 * d, "group:Male": side})
    return pd.DataFrame(rows)


def test_a_group_that_differs_is_found_and_the_test_is_scipy_s():
    rng = np.random.default_rng(0)
    member, rest = rng.uniform(0.5, 0.9, 10), rng.uniform(0.1, 0.45, 12)
    out = group_differences(table_of(member, rest), ["Male"], ["rp"], n_resamples=200)
    row = out.iloc[0]
    assert (row["n_member"], row["n_rest"], row["verdict"]) == (10, 12, "differ")
    assert row["difference"] == pytest.approx(member.mean() - rest.mean())
    assert row["difference_ci_low"] > 0
    assert row["p"] == pytest.approx(stats.mannwhitneyu(member, rest, alternative="two-sided", method="exact").pvalue)


def test_the_image_is_the_unit():
    # three decisions per image: 10 and 12 images, not 30 and 36 rows; the image means are compared
    member, rest = np.linspace(0.5, 0.9, 10), np.linspace(0.1, 0.45, 12)
    row = group_differences(table_of(member, rest, decisions_per_image=3), ["Male"], ["rp"], n_resamples=50).iloc[0]
    assert (row["n_member"], row["n_rest"]) == (10, 12)
    assert row["mean_member"] == pytest.approx(member.mean() + 0.001)


def test_small_groups_are_untestable_not_equal_and_equal_groups_are_not_called_different():
    # 2 against 3 images: complete separation gives p = 0.2 at best: untestable, whatever the values
    out = group_differences(table_of([0.9, 0.95], [0.1, 0.2, 0.15]), ["Male"], ["rp"], n_resamples=50)
    assert out.iloc[0]["verdict"] == "untestable" and out.iloc[0]["p_best"] == pytest.approx(0.2)
    rng = np.random.default_rng(1)
    same = group_differences(table_of(rng.uniform(0, 1, 15), rng.uniform(0, 1, 15)), ["Male"], ["rp"],
                             n_resamples=50)
    assert same.iloc[0]["verdict"] == "no difference found"


def test_holm_runs_over_the_methods_and_groups_of_a_metric():
    rng = np.random.default_rng(2)
    tables = []
    for method in ("a", "b", "c"):
        t = table_of(rng.uniform(0.5, 0.9, 8), rng.uniform(0.1, 0.45, 8))
        tables.append(t.assign(method=method))
    out = group_differences(pd.concat(tables, ignore_index=True), ["Male"], ["rp"], n_resamples=50)
    p = out["p"].to_numpy()
    expected = np.minimum(1, np.maximum.accumulate(np.sort(p) * np.arange(3, 0, -1)))[np.argsort(np.argsort(p))]
    np.testing.assert_allclose(out["p_holm"], expected)


def test_group_rows_and_tables_end_to_end(tmp_path):
    ids = np.arange(20)
    male = np.where(ids < 10, 1, -1)
    make_dataset(tmp_path / "d.h5", ids, male=male, young=np.where(ids % 2 == 0, 1, 0))
    rng = np.random.default_rng(3)
    per_sample = pd.DataFrame({"model": "m", "method": "g", "budget": "", "id": ids, "attribute": "Smiling",
                               "region": "mouth", "outcome": np.where(ids % 3 == 0, "FN", "TP"),
                               "rp": np.where(male > 0, 0.8, 0.2) + rng.normal(0, 0.05, 20), "degenerate": ""})
    per_sample.to_csv(tmp_path / "t.csv", index=False)
    table = with_membership(per_sample, {"m": tmp_path / "d.h5"}, ["Male", "Young"])
    rows = group_rows(table, ["Male", "Young"])
    # every image once per group; Young's unknown (0) images left out
    assert (rows["group"] == "Male").sum() == 20 and (rows["group"] == "Young").sum() == 10
    out = write_group_tables([tmp_path / "t.csv"], {"m": tmp_path / "d.h5"}, ["Male", "Young"],
                             {"by_group": tmp_path / "g.csv", "differences": tmp_path / "diff.csv"},
                             metrics=["rp"], n_resamples=100)
    by_group = pd.read_csv(tmp_path / "g.csv", keep_default_na=False)
    overall = by_group[(by_group["outcome"] == "all") & (by_group["group"] == "Male")]
    assert list(overall["member"]) == ["no", "yes"] and list(overall["n_images"]) == [10, 10]
    assert overall["rp_mean"].iloc[1] > 0.7 > 0.3 > overall["rp_mean"].iloc[0]
    assert set(by_group["outcome"]) == {"all", "TP", "FN"}
    differences = out["differences"].set_index("group")
    assert differences.loc["Male", "verdict"] == "differ"
    assert differences.loc["Young", "n_unknown"] == 10 and differences.loc["Young", "n_rest"] == 0
    assert differences.loc["Young", "verdict"] == "untestable"


def test_the_headlines_count_the_verdicts_and_name_the_differences():
    from facexai.headlines import group_lines

    rng = np.random.default_rng(0)
    out = group_differences(table_of(rng.uniform(0.5, 0.9, 10), rng.uniform(0.1, 0.45, 12)), ["Male"], ["rp"],
                            n_resamples=100)
    lines = group_lines(out)
    row = out.iloc[0]
    assert lines[2].startswith("| m | Male | 1 | 0 | 0 | g, eyes, rp: ")
    assert f"{row['difference']:.2f} [{row['difference_ci_low']:.2f}, {row['difference_ci_high']:.2f}]" in lines[2]


def test_exact_p_with_ties_and_one_image_never_differs():
    """The exact p (ties included) equals scipy's exact test without ties and a permutation test with
    them; one image against twenty, fully separated on a binary metric, gives p = 2 / 21: never a
    difference at 0.05 (the normal approximation said 2e-5)."""
    from facexai.groups import rank_sum_p

    rng = np.random.default_rng(4)
    a, b = rng.normal(size=5), rng.normal(size=8)
    assert rank_sum_p(a, b) == pytest.approx(stats.mannwhitneyu(a, b, method="exact").pvalue)
    a, b = np.array([1.0, 1, 0]), np.array([0.0, 0, 0, 1])
    # by hand: 3 of the 7 values drawn as `a`: k ones among them with probability C(3,k) C(4,3-k) / 35;
    # the observed rank sum (k = 2) or more: (12 + 1) / 35, twice that two-sided
    assert rank_sum_p(a, b) == pytest.approx(26 / 35)
    out = group_differences(table_of([1.0], [0.0] * 20), ["Male"], ["rp"], n_resamples=50).iloc[0]
    assert out["p"] == pytest.approx(2 / 21) and out["p_best"] <= out["p"] and out["verdict"] == "untestable"
    out = group_differences(table_of([1.0] * 3, [0.0] * 3), ["Male"], ["rp"], n_resamples=50).iloc[0]
    assert out["p"] == pytest.approx(0.1) and out["verdict"] == "untestable"


def test_the_holm_family_is_per_metric_and_model():
    rng = np.random.default_rng(5)
    parts = []
    for model, shift in (("m1", 0.35), ("m2", 0.1)):
        for method in ("a", "b"):
            t = table_of(rng.uniform(0.3, 0.7, 9) + shift, rng.uniform(0.3, 0.7, 9))
            parts.append(t.assign(model=model, method=method))
    out = group_differences(pd.concat(parts, ignore_index=True), ["Male"], ["rp"], n_resamples=50)
    for model, rows in out.groupby("model"):
        p = rows["p"].to_numpy()
        expected = np.minimum(1, np.maximum.accumulate(np.sort(p) * np.arange(len(p), 0, -1)))
        np.testing.assert_allclose(np.sort(rows["p_holm"].to_numpy()), expected)
    # a family of one test with a best attainable p below alpha is testable; in a family where that
    # best p, adjusted with the others' observed p, stays above alpha it is not
    assert set(out["verdict"]) <= {"differ", "no difference found", "untestable"}


def test_an_image_without_a_finite_value_is_counted_apart():
    t = table_of([0.9] * 6, [0.1] * 6)
    t.loc[t["id"] == 0, "rp"] = np.nan      # a member image whose metric is undefined
    row = group_differences(t, ["Male"], ["rp"], n_resamples=50).iloc[0]
    assert (row["n_member"], row["n_rest"], row["n_dropped"]) == (5, 6, 1)


def test_the_person_is_the_unit_where_the_dataset_names_persons(tmp_path):
    """Membership belongs to the person: with identities in the dataset, the test compares persons'
    means and the CI resamples persons, so copies of a person's images change neither."""
    rng = np.random.default_rng(4)
    ids = np.arange(60)
    person = ids // 3                                    # 20 persons, 3 images each
    male = np.where(person < 8, 1, -1)
    path = make_dataset(tmp_path / "d.h5", ids, male=male)
    with h5py.File(path, "a") as h5:
        h5["identity"] = person
    values = np.where(male > 0, 0.6, 0.4) + rng.normal(0, 0.2, 60)
    table = pd.DataFrame({"model": "m", "method": "g", "region": "eyes", "id": ids, "rp": values})
    row = group_differences(with_membership(table, {None: path}, ["Male"]), ["Male"], ["rp"], n_resamples=400).iloc[0]
    assert (row["unit"], row["n_member"], row["n_member_units"], row["n_rest_units"]) == ("person", 24, 8, 12)
    means = values.reshape(20, 3).mean(axis=1)
    assert row["p"] == pytest.approx(stats.mannwhitneyu(means[:8], means[8:], method="exact").pvalue)
    # three copies of every image (new ids, same persons): the same test, the CI about as wide
    copies = pd.concat([table.assign(id=table["id"] + 1000 * k) for k in range(3)], ignore_index=True)
    path3 = make_dataset(tmp_path / "d3.h5", copies["id"], male=np.tile(male, 3))
    with h5py.File(path3, "a") as h5:
        h5["identity"] = np.tile(person, 3)
    again = group_differences(with_membership(copies, {None: path3}, ["Male"]), ["Male"], ["rp"],
                              n_resamples=400).iloc[0]
    assert again["p"] == pytest.approx(row["p"]) and again["n_member"] == 72
    width = row["difference_ci_high"] - row["difference_ci_low"]
    assert again["difference_ci_high"] - again["difference_ci_low"] == pytest.approx(width, rel=0.25)
    # without identities each image is a unit, and the copies would count three times
    plain = group_differences(with_membership(copies, {None: make_dataset(tmp_path / "p.h5", copies["id"],
                                                                          male=np.tile(male, 3))}, ["Male"]),
                              ["Male"], ["rp"], n_resamples=400).iloc[0]
    assert plain["unit"] == "image" and plain["n_member_units"] == 72 and plain["p"] < row["p"]
