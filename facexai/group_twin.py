"""The group-imbalanced twin: a model trained where one group is scarce (config `group_share`), against
its fair partner of the same training settings. Two tables:

* `accuracy_by_group`: per attribute (and `all`, each image's mean over the model's attributes), the
  test accuracy of each model on the group's members (`side` yes), on the rest (no), and the gap
  members - rest (`yes - no`); `difference` is skewed - fair on the same images: for side `yes - no`
  the change of the gap, the number that says whether the skewed split cost the group more than
  the rest.
* `shift_by_group`: per method, explained attribute and part of the label partition, each model's
  mean share of the map's mass there (`labels.MASS_PARTS`) over the images both models explain,
  the paired shift skewed - fair on members and on the rest, and (`yes - no`) whether the shift
  is not the same for both (tested below).

The unit of every CI and test is the person where the dataset names persons (`identity`), else the
image; means are over images. CIs: 95 % percentile bootstrap with the units of each side resampled
on their own (a person with all its images), the two models kept paired (one resample serves both,
so a difference's CI is that of the paired difference). The `yes - no` rows also test it: per unit
the mean paired difference skewed - fair, the members' against the rest's by a two-sided
Mann-Whitney U (`groups._mann_whitney`: exact with ties up to 120 units), Holm-adjusted per twin
pair over the attributes (accuracy) and per twin pair and method over attributes and parts (shift).
`verdict`: `differ` (adjusted p < alpha), `untestable` (even complete separation of the two sides
could not pass in its family, or a side has fewer than 2 units), else `no difference found`. Images
of unknown membership are counted (`n_unknown`), never in a side; maps without mass are counted per
model (`n_no_mass_*`) and leave the image out of that method's rows.
"""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd

from .atomic import atomic_path
from .data.samples import read_rows
from .data.splits import read_split
from .groups import MEMBER, REST, UNKNOWN, membership, persons
from .labels import ATTRIBUTE_INDEX, MASS_PARTS

SIDES = (MEMBER, REST, f"{MEMBER} - {REST}")
VALUES = ["fair_mean", "fair_ci_low", "fair_ci_high", "skewed_mean", "skewed_ci_low", "skewed_ci_high",
          "difference_mean", "difference_ci_low", "difference_ci_high", "n_member", "n_rest", "n_unknown",
          "n_member_units", "n_rest_units", "statistic",
          "p", "p_best", "p_holm", "min_p_holm", "verdict"]
ACCURACY_COLUMNS = ["fair", "skewed", "group", "attribute", "side", "unit", *VALUES, "fair_n_train",
                    "fair_train_share", "skewed_n_train", "skewed_train_share"]
SHIFT_COLUMNS = ["fair", "skewed", "group", "method", "attribute", "part", "side", "unit", *VALUES,
                 "n_no_mass_fair", "n_no_mass_skewed"]


def _ci(values: np.ndarray) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if not values.size:
        return np.nan, np.nan
    return float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))


def _rank_test(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Mann-Whitney U of the members' (persons' or images') mean paired differences against the
    rest's: (U, p, p_best)."""
    from .groups import _mann_whitney

    statistic, p, best = _mann_whitney(a, b)
    if np.ptp(np.concatenate([a, b])) == 0:  # every difference equal (e.g. a map that ignores the model)
        p = 1.0
    return statistic, p, best


def with_verdicts(table: pd.DataFrame, family, alpha: float) -> pd.DataFrame:
    """Holm over the `yes - no` rows of each family (columns); verdicts as in the module docstring."""
    from .stats import best_adjusted_p, holm

    table = table.copy()
    for column in ("p_holm", "min_p_holm"):
        table[column] = np.nan
    table["verdict"] = ""
    tested = table["side"] == SIDES[2]
    for index in table[tested].groupby(list(family), sort=False).indices.values():
        index = table[tested].index[index]
        table.loc[index, "p_holm"] = holm(table.loc[index, "p"])
        table.loc[index, "min_p_holm"] = best_adjusted_p(table.loc[index, "p"], table.loc[index, "p_best"])
    differ = table["p_holm"] < alpha
    untestable = ~(table["min_p_holm"] < alpha)
    table.loc[tested, "verdict"] = np.where(differ, "differ", np.where(untestable, "untestable",
                                                                         "no difference found"))[tested.to_numpy()]
    return table


def _side_units(f: np.ndarray, k: np.ndarray, units: np.ndarray, n_resamples: int, rng):
    """Per side: the image means, the cluster-bootstrap means of both models (units resampled with
    all their images, one resample for both), each unit's mean difference k - f, and the unit count."""
    from .groups import by_unit, cluster_means

    if not f.size:
        nan = np.full(n_resamples, np.nan)
        return (np.nan, np.nan), (nan, nan), np.array([]), 0
    boot = cluster_means(np.stack([f, k], axis=1), units, n_resamples, rng)
    unit_d = by_unit(pd.Series(k - f), pd.Series(units))
    return (f.mean(), k.mean()), (boot[:, 0], boot[:, 1]), unit_d, unit_d.size


def paired_side_rows(fair: np.ndarray, skewed: np.ndarray, side: np.ndarray, n_resamples: int,
                     seed: int, persons: np.ndarray | None = None) -> list[dict]:
    """The three rows (yes, no, yes - no) of one quantity measured on the same images for both
    models: fair and skewed are per image, side is yes / no / "" per image, persons (optional) each
    image's person. Means are over images; the unit of the CIs and the test is the person (each
    resampled with all its images; the test compares the persons' mean differences), or the image
    when persons is None. A person with images on both sides (an attribute that varies between
    photos) is a unit on each side."""
    fair, skewed, side = (np.asarray(fair, np.float64), np.asarray(skewed, np.float64),
                          np.asarray(side, dtype=object))
    units = np.arange(fair.size) if persons is None else np.asarray(persons)
    idx = {s: np.flatnonzero(side == s) for s in (MEMBER, REST)}
    rng = np.random.default_rng(seed)
    means, boot, unit_d, n_units = {}, {}, {}, {}
    for s in (MEMBER, REST):
        means[s], boot[s], unit_d[s], n_units[s] = _side_units(fair[idx[s]], skewed[idx[s]], units[idx[s]],
                                                               n_resamples, rng)
    common = {"unit": "image" if persons is None else "person", "n_member": idx[MEMBER].size,
              "n_rest": idx[REST].size, "n_unknown": int((side == UNKNOWN).sum()),
              "n_member_units": n_units[MEMBER], "n_rest_units": n_units[REST]}
    rows = []
    for s in (MEMBER, REST):
        (f, k), (bf, bk) = means[s], boot[s]
        rows.append({"side": s, "fair_mean": f, "skewed_mean": k, "difference_mean": k - f,
                     **dict(zip(("fair_ci_low", "fair_ci_high"), _ci(bf))),
                     **dict(zip(("skewed_ci_low", "skewed_ci_high"), _ci(bk))),
                     **dict(zip(("difference_ci_low", "difference_ci_high"), _ci(bk - bf)))})
    gap_f, gap_k = boot[MEMBER][0] - boot[REST][0], boot[MEMBER][1] - boot[REST][1]
    f = means[MEMBER][0] - means[REST][0]
    k = means[MEMBER][1] - means[REST][1]
    low, high = _ci(gap_k - gap_f)
    test = dict(zip(("statistic", "p", "p_best"),
                    _rank_test(unit_d[MEMBER], unit_d[REST]) if min(n_units.values()) >= 2 else (np.nan,) * 3))
    rows.append({"side": SIDES[2], "fair_mean": f, "skewed_mean": k, "difference_mean": k - f,
                 **dict(zip(("fair_ci_low", "fair_ci_high"), _ci(gap_f))),
                 **dict(zip(("skewed_ci_low", "skewed_ci_high"), _ci(gap_k))),
                 "difference_ci_low": low, "difference_ci_high": high, **test})
    return [{**r, **common} for r in rows]


def correct_on_test(model_dir, dataset_h5, split_tsv, attributes, device) -> tuple[np.ndarray, np.ndarray]:
    """(ids, correct): the test split's sample ids and, per image and attribute, whether the model's
    decision at p = 0.5 equals the label."""
    from .models.train import load_model, predict_proba

    model, meta = load_model(model_dir, device)
    missing = [a for a in attributes if a not in meta["attributes"]]
    if missing:
        raise ValueError(f"{model_dir}: the model does not predict {missing}")
    split = read_split(split_tsv)
    rows = split.loc[split["split"] == "test", "row"].to_numpy()
    with h5py.File(dataset_h5, "r") as h5:
        images = read_rows(h5, "images", rows)
        ids = read_rows(h5, "ids", rows)
        labels = read_rows(h5, "attributes", rows)[:, [ATTRIBUTE_INDEX[a] for a in attributes]] > 0
    proba = predict_proba(model, images, device)[:, [meta["attributes"].index(a) for a in attributes]]
    return ids, (proba > 0.5) == labels


def train_counts(model_dir, dataset_h5, split_tsv, group: str) -> dict:
    """n_train and the group's share of it: from model.json for a model trained with group_share,
    else the whole training split's."""
    import json
    from pathlib import Path

    from .layout import META

    skew = json.loads((Path(model_dir) / META).read_text()).get("group_share")
    if skew and skew["group"] != group:
        raise ValueError(f"{model_dir}: trained on a draw by {skew['group']}, compared on {group}: its share of "
                         f"{group} is not known")
    if skew:
        return {"n_train": int(skew["n_train"]), "train_share": skew["n_member"] / skew["n_train"]}
    split = read_split(split_tsv)
    train = split.loc[split["split"] == "train", "id"].to_numpy()
    side = membership(dataset_h5, train, [group])[group].to_numpy()
    known = side != UNKNOWN
    return {"n_train": int(train.size), "train_share": float((side == MEMBER).sum() / max(known.sum(), 1))}


def accuracy_by_group(fair_dir, skewed_dir, dataset_h5, split_tsv, group: str, attributes, *, names=("fair", "skewed"),
                      n_resamples: int = 1000, seed: int = 0, device="cpu") -> pd.DataFrame:
    ids, fair = correct_on_test(fair_dir, dataset_h5, split_tsv, attributes, device)
    ids_k, skewed = correct_on_test(skewed_dir, dataset_h5, split_tsv, attributes, device)
    if not np.array_equal(ids, ids_k):
        raise ValueError(f"{fair_dir} and {skewed_dir}: the test images differ")
    side = membership(dataset_h5, ids, [group])[group].to_numpy()
    who = persons(dataset_h5, ids)
    counts = {f"{who}_{k}": v for who, d in (("fair", fair_dir), ("skewed", skewed_dir))
              for k, v in train_counts(d, dataset_h5, split_tsv, group).items()}
    records = []
    columns = {"all": (fair.mean(axis=1), skewed.mean(axis=1))}
    columns.update({a: (fair[:, k].astype(float), skewed[:, k].astype(float)) for k, a in enumerate(attributes)})
    for attribute, (f, k) in columns.items():
        for row in paired_side_rows(f, k, side, n_resamples, seed, who):
            records.append({"fair": names[0], "skewed": names[1], "group": group, "attribute": attribute, **row,
                            **counts})
    return pd.DataFrame.from_records(records, columns=ACCURACY_COLUMNS)


def paired_shares(shares: dict) -> pd.DataFrame:
    """shares: {"fair": frame, "skewed": frame} of `twins.decision_shares` (id and one column per part);
    the images both models explain, with columns PART_fair and PART_skewed."""
    return shares["fair"].merge(shares["skewed"], on="id", suffixes=("_fair", "_skewed"))


def shift_by_group(paired: pd.DataFrame, dataset_h5, group: str, method: str, attribute: str, *,
                   names=("fair", "skewed"), n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """The rows of one method and attribute from `paired_shares` (one row per image)."""
    if paired["id"].duplicated().any():
        raise ValueError(f"{method} / {attribute}: an image appears twice (one row per image)")
    ids = paired["id"].to_numpy()
    side = membership(dataset_h5, ids, [group])[group].to_numpy() if len(ids) else np.array([], object)
    who = persons(dataset_h5, ids) if len(ids) else None
    records = []
    for part in MASS_PARTS:
        f, k = paired[f"{part}_fair"].to_numpy(np.float64), paired[f"{part}_skewed"].to_numpy(np.float64)
        ok = np.isfinite(f) & np.isfinite(k)
        for row in paired_side_rows(f[ok], k[ok], side[ok], n_resamples, seed,
                                    None if who is None else who[ok]):
            records.append({"fair": names[0], "skewed": names[1], "group": group, "method": method,
                            "attribute": attribute, "part": part, **row,
                            "n_no_mass_fair": int((~np.isfinite(f)).sum()),
                            "n_no_mass_skewed": int((~np.isfinite(k)).sum())})
    return pd.DataFrame.from_records(records, columns=SHIFT_COLUMNS)


def per_image(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Paired shares of several attributes -> one row per image: the mean over its decisions whose
    maps both have mass (attribute `all`)."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=["id", *[f"{p}_{s}" for s in ("fair", "skewed") for p in MASS_PARTS]])
    table = pd.concat(frames, ignore_index=True)
    finite = table.drop(columns="id").notna().all(axis=1)
    return table[finite].groupby("id", as_index=False, sort=True).mean()


def write_group_twin_tables(twins, model_dirs: dict, dataset_h5s: dict, split_tsvs: dict, attribution_h5s: dict,
                            explained, outputs: dict, *, attributes: dict, mode: str = "positive",
                            alpha: float = 0.05, n_resamples: int = 1000, seed: int = 0, device: str = "cpu") -> dict:
    """twins: [(fair, skewed, group)]; model_dirs / dataset_h5s / split_tsvs: per model;
    attribution_h5s: {(model, method): [shard files]}; explained: the explained attributes;
    attributes: per pair's skewed model, the attributes both models predict."""
    from .twins import decision_shares

    accuracy, shift = [], []
    methods = sorted({method for _, method in attribution_h5s})
    for fair, skewed, group in twins:
        data = dataset_h5s[skewed]
        accuracy.append(accuracy_by_group(model_dirs[fair], model_dirs[skewed], data, split_tsvs[skewed], group,
                                          attributes[skewed], names=(fair, skewed), n_resamples=n_resamples,
                                          seed=seed, device=device))
        for method in methods:
            frames = {}
            for attribute in explained:
                frames[attribute] = paired_shares(
                    {side: decision_shares(dataset_h5s[m], attribution_h5s[(m, method)], attribute, mode)
                     for side, m in (("fair", fair), ("skewed", skewed))})
            # `all`: each image's mean over its explained attributes (one row per image)
            for attribute, paired in {"all": per_image(list(frames.values())), **frames}.items():
                shift.append(shift_by_group(paired, data, group, method, attribute, names=(fair, skewed),
                                            n_resamples=n_resamples, seed=seed))
    tables = {"accuracy": with_verdicts(pd.concat(accuracy, ignore_index=True) if accuracy else
                                        pd.DataFrame(columns=ACCURACY_COLUMNS), ("fair", "skewed", "group"), alpha),
              "shift": with_verdicts(pd.concat(shift, ignore_index=True) if shift else
                                     pd.DataFrame(columns=SHIFT_COLUMNS), ("fair", "skewed", "group", "method"), alpha)}
    for key, frame in tables.items():
        with atomic_path(outputs[key]) as tmp:
            frame.to_csv(tmp, index=False)
    return tables
