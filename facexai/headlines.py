"""The headline results of a finished run, as Markdown: FR vs RP (both FR variants), which methods beat
the random, edge and centre baselines on which metric, how well the metrics agree, each embedder's
EER, the inpainting game on verification triplets beside the oracle, the lift on pairs that differ
in one region, and the fair-vs-biased twin shift.

    facexai headlines results-study > docs/study-results.md     (or python -m facexai.headlines ...)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from .attributions import MODEL_FREE_BASELINES, RANDOM
from .layout import Layout
from .stats import ORACLE_METHOD as ORACLE  # the pair oracle: a reference, never ranked


def _fmt(value, digits: int = 2) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not np.isfinite(value)) else f"{value:.{digits}f}"


def _ci(mean, low, high, digits: int = 2) -> str:
    return f"{_fmt(mean, digits)} [{_fmt(low, digits)}, {_fmt(high, digits)}]"


def correlation_lines(summary: dict) -> list[str]:
    """FR vs RP: the attribution methods' points (the headline), then with the model-free baselines;
    CIs from an image bootstrap."""
    fr = summary["fr_vs_rp"]
    lines = ["| FR variant | points | Pearson r [95 % CI] | Spearman rho [95 % CI] |", "| --- | --- | --- | --- |"]
    for label, corr in (("size-controlled, attribution methods (headline)", fr),
                        ("size-controlled, with the model-free baselines", fr.get("with_baselines")),
                        ("threshold (descriptive), attribution methods", fr["threshold_variant"]),
                        ("threshold (descriptive), with the model-free baselines",
                         fr["threshold_variant"].get("with_baselines"))):
        if not corr:
            continue
        pearson = _ci(corr["pearson"], corr["pearson_ci_low"], corr["pearson_ci_high"])
        spearman = _ci(corr["spearman"], corr["spearman_ci_low"], corr["spearman_ci_high"])
        lines.append(f"| {label} | {corr['n_points']} | {pearson} | {spearman} |")
    return lines




def _reasons(row: pd.Series) -> str:
    """`reason count` for every per-reason count of a localisation row (mask and game degenerates)."""
    parts = []
    for column, label in (("degenerate", "map"), ("degenerate_dissimilarity", "negative part"),
                          ("game_degenerate", "game")):
        prefix = f"n_{column}:"
        parts += [f"{label} {key[len(prefix):]} {int(value)}" for key, value in row.items()
                  if key.startswith(prefix) and np.isfinite(value) and value > 0]
    return ", ".join(parts) or "-"


def _share(value, ceiling) -> str:
    ok = value is not None and ceiling is not None and np.isfinite(value) and np.isfinite(ceiling) and ceiling > 0
    return _fmt(value / ceiling) if ok else "n/a"


def triplet_count_lines(layout: Layout, embedders: list[str]) -> list[str]:
    """Per embedder and region: triplets made, kept (the swap matters to it), dropped, and among the
    kept the shares whose twin is rejected as a non-mate of the probe at the EER threshold and whose
    P' prefers the twin (the game can be won)."""
    lines = ["| embedder | EER (threshold) | region | made | kept | dropped | twin rejected at the threshold | "
             "P' prefers the twin |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in embedders:
        eer = json.loads(layout.path("eer", embedder=name).read_text())
        for region, c in sorted((eer.get("triplets") or {}).items()):
            lines.append(f"| {name} | {_fmt(eer['eer'])} ({_fmt(eer['threshold'], 3)}) | {region} | "
                         f"{c['made']} | {c['kept']} | {c['dropped']} | {_fmt(c['twin_rejected_at_threshold'])} | "
                         f"{_fmt(c['probe_swap_prefers_twin'])} |")
    return lines


def game_lines(layout: Layout, embedders: list[str]) -> list[str]:
    """The inpainting game per embedder, region and method, beside the oracle (`difference`)."""
    lines = ["| embedder | region | method | n | flip fraction [95 % CI] (lower is better) | game region lift "
             "[95 % CI] | lift in the pasted area [95 % CI] | lift, share of the oracle's | degenerate |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in embedders:
        table = pd.read_csv(layout.pair_table("localisation", name), keep_default_na=False, na_values=[""])
        triplets = table[table["kind"] == "triplet"]
        for region, group in triplets.groupby("region", sort=True):
            oracle = group[group["method"] == ORACLE]
            ceiling = float(oracle["lift_mean"].iloc[0]) if len(oracle) else None
            for _, r in group.sort_values("method").iterrows():
                flip, game, lift = (_ci(r[f"{m}_mean"], r[f"{m}_ci_low"], r[f"{m}_ci_high"])
                                    for m in ("game_flip_fraction", "game_region_lift", "lift"))
                label = f"{r['method']} ({r['budget']})" + (" = oracle" if r["method"] == ORACLE else "")
                lines.append(f"| {name} | {region} | {label} | {r['n']} | {flip} | {game} | {lift} | "
                             f"{_share(r['lift_mean'], ceiling)} | {_reasons(r)} |")
    return lines


def verification_lines(layout: Layout, embedders: list[str]) -> list[str]:
    """Region and region-swap pairs: similarity (positive) and dissimilarity (negative) lift in the
    changed region, beside the oracle, with the degenerate rows per reason (scored at chance)."""
    lines = ["| embedder | EER (threshold) | pairs | region | method | n | similarity lift [95 % CI] | "
             "dissimilarity lift [95 % CI] | similarity lift, share of the oracle's | degenerate |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in embedders:
        eer = json.loads(layout.path("eer", embedder=name).read_text())
        table = pd.read_csv(layout.pair_table("localisation", name), keep_default_na=False, na_values=[""])
        changed = table[table["kind"].isin(["region", "swap", "swap_control"])].sort_values(["kind", "region",
                                                                                              "method"])
        for (kind, region), group in changed.groupby(["kind", "region"], sort=True):
            oracle = group[group["method"] == ORACLE]
            ceiling = float(oracle["lift_mean"].iloc[0]) if len(oracle) else None
            for _, r in group.iterrows():
                lift = _ci(r["lift_mean"], r["lift_ci_low"], r["lift_ci_high"])
                dis = _ci(r["lift_dissimilarity_mean"], r["lift_dissimilarity_ci_low"],
                          r["lift_dissimilarity_ci_high"])
                n_na = r.get("n_not_applicable", 0)
                n = f"{r['n']} ({int(n_na)} not applicable)" if n_na else f"{r['n']}"
                label = f"{r['method']} ({r['budget']})" + (" = oracle" if r["method"] == ORACLE else "")
                lines.append(f"| {name} | {_fmt(eer['eer'])} ({_fmt(eer['threshold'], 3)}) | {kind} | {region} | "
                             f"{label} | {n} | {lift} | {dis} | {_share(r['lift_mean'], ceiling)} | {_reasons(r)} |")
    return lines


def pair_verdict_lines(layout: Layout, embedders: list[str], kind: str = "triplet") -> list[str]:
    """Per embedder and method, on one pair kind: the tested metrics it beats random / edge / centre on."""
    baselines = (RANDOM, *MODEL_FREE_BASELINES)
    lines = [f"| embedder | method | {' | '.join(f'beats {b}' for b in baselines)} | untestable |",
             "| --- | --- | " + "--- | " * len(baselines) + "--- |"]
    for name in embedders:
        path = layout.path("pair_table", table="beats_random", embedder=name)
        if not path.is_file():
            continue
        verdicts = pd.read_csv(path)
        verdicts = verdicts[verdicts["kind"] == kind]
        for method, group in verdicts.groupby("method", sort=True):
            cells = []
            for suffix in baselines:
                column = f"verdict_{suffix}"
                cells.append(", ".join(sorted(group.loc[group[column] == "beats", "metric"]))
                             if column in group else "n/a")
            untestable = sorted({m for suffix in baselines if f"verdict_{suffix}" in group
                                 for m in group.loc[group[f"verdict_{suffix}"] == "untestable", "metric"]})
            lines.append(f"| {name} | {method} | {' | '.join(c or '-' for c in cells)} | "
                         f"{', '.join(untestable) or '-'} |")
    return lines


def points_lines(points: pd.DataFrame) -> list[str]:
    lines = ["| model | method | mean RP | FR (size-controlled) | FR (threshold) | n rows |",
             "| --- | --- | --- | --- | --- | --- |"]
    for p in points.itertuples():
        lines.append(f"| {p.model} | {p.method} | {_fmt(p.rp_mean)} | {_fmt(p.fr_sized)} | {_fmt(p.fr)} | {p.rp_n} |")
    return lines


def _verdict_cell(group: pd.DataFrame, suffix: str, verdict: str) -> str:
    rows = group[group[f"verdict_{suffix}"] == verdict]
    if verdict != "untestable":
        return ", ".join(sorted(rows["metric"])) or "-"
    n = "n_nonzero" if suffix == RANDOM else f"n_nonzero_{suffix}"
    best = "min_p_holm" if suffix == RANDOM else f"min_p_holm_{suffix}"
    return ", ".join(f"{r['metric']} (n {int(r[n])}, best p {r[best]:.3g})"
                     for _, r in rows.sort_values("metric").iterrows()) or "-"


def verdict_lines(verdicts: pd.DataFrame, baseline: str = RANDOM) -> list[str]:
    """Per model and method: the metrics on which it beats a baseline (random, edge, centre, parts; Holm-
    adjusted), does not, and cannot be tested (even the best outcome its differences allow would not
    pass in its Holm family: given with n and that best adjusted p, `stats.best_adjusted_p`)."""
    column = f"verdict_{baseline}"
    lines = [f"| model | method | beats {baseline} on | does not on | untestable (n images, best attainable "
             "adjusted p) |", "| --- | --- | --- | --- | --- |"]
    if column not in verdicts:
        return lines
    for (model, method), group in verdicts[verdicts[column].notna()].groupby(["model", "method"], sort=True):
        cells = [_verdict_cell(group, baseline, v) for v in ("beats", "does not beat", "untestable")]
        lines.append(f"| {model} | {method} | {' | '.join(cells)} |")
    return lines


def agreement_lines(summary: dict) -> list[str]:
    """Per model: how well the metrics' rankings agree, and the consensus ranking with CIs."""
    lines = ["| model | metrics | methods | mean Kendall tau | pairs agreeing / disagreeing (CI excludes 0) "
             "| consensus (mean rank [95 % CI]) |", "| --- | --- | --- | --- | --- | --- |"]
    for model, a in summary.get("metric_agreement", {}).items():
        consensus = ", ".join(f"{c['method']} {_ci(c['mean_rank'], c['ci_low'], c['ci_high'], 1)}"
                              for c in a["consensus"])
        lines.append(f"| {model} | {a['n_metrics']} | {a['n_methods']} | {_fmt(a['mean_tau'])} | "
                     f"{_fmt(a['share_agree'])} / {_fmt(a['share_disagree'])} | {consensus} |")
    return lines


def twin_lines(twin: pd.DataFrame, part: str = "background") -> list[str]:
    lines = [f"| twin | method | {part} share, fair | {part} share, biased | difference biased - fair | images |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in twin[twin["part"] == part].itertuples():
        lines.append(f"| {r.fair} / {r.biased} | {r.method} | {_ci(r.fair_mean, r.fair_ci_low, r.fair_ci_high)}"
                     f" | {_ci(r.biased_mean, r.biased_ci_low, r.biased_ci_high)}"
                     f" | {_ci(r.difference_mean, r.difference_ci_low, r.difference_ci_high)} | {r.n_paired} |")
    return lines


def group_lines(differences: pd.DataFrame, metrics=("rp", "lift")) -> list[str]:
    """Per model and group: how many tests of each verdict (on `metrics`), and the differing ones."""
    lines = ["| model | group | differ | no difference found | untestable | differing (method, region, metric: "
             "member - rest [95 % CI]) |", "| --- | --- | --- | --- | --- | --- |"]
    rows = differences[differences["metric"].isin(metrics)]
    for (model, group), g in rows.groupby(["model", "group"], sort=True):
        counts = g["verdict"].value_counts()
        differing = "; ".join(f"{r.method}, {r.region}, {r.metric}: "
                              f"{_ci(r.difference, r.difference_ci_low, r.difference_ci_high)}"
                              for r in g[g["verdict"] == "differ"].itertuples())
        lines.append(f"| {model} | {group} | {counts.get('differ', 0)} | {counts.get('no difference found', 0)} | "
                     f"{counts.get('untestable', 0)} | {differing or '-'} |")
    return lines


def group_twin_lines(accuracy: pd.DataFrame, shift: pd.DataFrame) -> list[str]:
    """The group-imbalanced twins: per attribute, each model's accuracy on the group and on the rest,
    and the change of the gap (skewed - fair); then per method how many shift tests of each verdict,
    and the differing ones."""
    lines = ["| skewed vs fair (group) | trained on | attribute | fair: group / rest | skewed: group / rest | "
             "gap change [95 % CI] | Holm p | verdict |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for key, rows in accuracy.groupby(["skewed", "fair", "group"], sort=False):
        by = {side: g.set_index("attribute") for side, g in rows.groupby("side")}
        first = rows.iloc[0]
        trained = (f"{int(first.skewed_n_train)} ({first.skewed_train_share:.0%}) / "
                   f"{int(first.fair_n_train)} ({first.fair_train_share:.0%})")
        for r in by["yes - no"].itertuples():
            yes, no = by["yes"].loc[r.Index], by["no"].loc[r.Index]
            lines.append(f"| {key[0]} vs {key[1]} ({key[2]}) | {trained} | {r.Index} | "
                         f"{_fmt(yes.fair_mean)} / {_fmt(no.fair_mean)} | {_fmt(yes.skewed_mean)} / "
                         f"{_fmt(no.skewed_mean)} | {_ci(r.difference_mean, r.difference_ci_low, r.difference_ci_high)}"
                         f" | {r.p_holm:.2g} | {r.verdict} |")
    lines += ["", "| skewed vs fair (group) | method | differ | no difference found | untestable | differing "
              "(attribute, part: shift on the group - shift on the rest [95 % CI]) |",
              "| --- | --- | --- | --- | --- | --- |"]
    tested = shift[shift["side"] == "yes - no"]
    for (skewed, fair, group, method), g in tested.groupby(["skewed", "fair", "group", "method"], sort=False):
        counts = g["verdict"].value_counts()
        differing = "; ".join(f"{r.attribute}, {r.part}: {r.difference_mean:.3f} [{r.difference_ci_low:.3f}, "
                              f"{r.difference_ci_high:.3f}]" for r in g[g["verdict"] == "differ"].itertuples())
        lines.append(f"| {skewed} vs {fair} ({group}) | {method} | {counts.get('differ', 0)} | "
                     f"{counts.get('no difference found', 0)} | {counts.get('untestable', 0)} | {differing or '-'} |")
    return lines


def photo_lines(results: Path) -> list[str]:
    """The photo stage's counts (dataset.source photos), or nothing."""
    path = Layout(results).path("photo_summary", dataset="main")
    if not path.is_file():
        return []
    s = json.loads(path.read_text())
    return [f"Photo folder: {photo_counts(s)}; {s['identities']} identities"
            f"{'' if s['identities_given'] else ' (none given: each photo is its own)'}; "
            f"attributes {'given' if s['attributes_given'] else 'not given (no attribute models)'}.", ""]


def photo_counts(summary: dict) -> str:
    """What became of a photo folder's files: aligned, skipped as bad, small faces, not photos."""
    s = summary
    text = (f"{s['photos']} photos, {s['aligned']} aligned, {s['bad']} skipped as bad input "
            "(listed in data/main/bad_samples.tsv)")
    if s.get("small_faces"):
        text += (f", {s['small_faces']} with a face under {s['min_face_size']} px (upsampled; face_size in "
                 "photos/main/CelebAMask-HQ/photos.tsv)")
    if s.get("ignored_files"):
        text += f", {len(s['ignored_files'])} other file(s) not read as photos (e.g. {s['ignored_files'][0]})"
    return text


def headlines(results_dir) -> str:
    """The headlines of a finished run; FileNotFoundError naming the folder when it is missing or
    holds no finished run (no summary.json and no verification table)."""
    results = Path(results_dir)
    layout = Layout(results)
    if not results.is_dir():
        raise FileNotFoundError(f"{results}: no such results folder")
    pair_tables = layout.find("pair_table", table="localisation")
    finished = layout.path("summary").is_file() or bool(pair_tables)
    if not finished:
        raise FileNotFoundError(f"{results}: no finished run here (neither summary.json nor "
                                "tables/verification/*/localisation.csv); run snakemake first, or name the run's "
                                "results folder (results_dir in its config)")
    out = []
    summary_path = layout.path("summary")
    if summary_path.is_file():  # attribute models (none in a verification-only run)
        summary = json.loads(summary_path.read_text())
        out += [f"Results of `{results}` (schema {summary['schema']}); the unit of every CI and test is the image.",
                "", *photo_lines(results),
                "### FR vs RP across model x method points (CIs: images resampled, every point recomputed)", "",
                *correlation_lines(summary), "",
                *points_lines(pd.read_csv(layout.table("fr_vs_rp"))), "",
                "### Beats the random baseline (one-sided paired Wilcoxon by image, Holm per metric)", "",
                *verdict_lines(pd.read_csv(layout.table("beats_random")))]
        verdicts = pd.read_csv(layout.table("beats_random"))
        for baseline in MODEL_FREE_BASELINES:
            if f"verdict_{baseline}" in verdicts:
                out += ["", f"### Beats the {baseline} baseline (model-free; same test)", "",
                        *verdict_lines(verdicts, baseline)]
        if summary.get("metric_agreement"):
            out += ["", "### Do the metrics agree? (Kendall tau between the metrics' method rankings; model-free "
                    "baselines not ranked)", "", *agreement_lines(summary)]
    else:
        out += [f"Results of `{results}` (no attribute models: verification only); the unit of every CI and "
                "test is the image.", "", *photo_lines(results)]
    embedders = [p.parent.name for p in pair_tables]
    if embedders:
        triplets = any((pd.read_csv(p)["kind"] == "triplet").any() for p in pair_tables)
        if triplets:
            out += ["", "### Verification triplets: which ones the swap matters to", "",
                    *triplet_count_lines(layout, embedders),
                    "", "### The inpainting game on the kept triplets (CIs: triplets resampled by probe image; "
                    "`difference` reads where M and M' differ: the oracle, not a method)", "",
                    *game_lines(layout, embedders),
                    "", "### Triplets: beats the model-free baselines (one-sided paired Wilcoxon by probe image, "
                    "Holm per metric)", "", *pair_verdict_lines(layout, embedders)]
        out += ["", "### Verification pairs that differ in one region: lift in the changed region (1 = a uniform "
                "map; rows whose map has no mass there count at 1)", "",
                *verification_lines(layout, embedders)]
    groups = Path(layout.table("group_differences"))
    if groups.is_file() and len(differences := pd.read_csv(groups)):
        out += ["", "### Groups against the rest: RP and lift (Mann-Whitney U on persons' means, or images' where the "
                "data name no persons; Holm per metric and model; untestable: groups too small to ever differ)", "",
                *group_lines(differences)]
    accuracy, shift = Path(layout.table("group_twin_accuracy")), Path(layout.table("group_twin_shift"))
    if accuracy.is_file() and shift.is_file() and len(accuracy_table := pd.read_csv(accuracy)):
        out += ["", "### Group-imbalanced twin: test accuracy by group, and the change of the gap group - rest "
                "(skewed - fair; CIs and tests by person, or image where the data name no persons; Mann-Whitney of the "
                "paired differences, Holm per twin)", "",
                *group_twin_lines(accuracy_table, pd.read_csv(shift))]
    twin = Path(layout.table("twin_shift"))
    if twin.is_file():
        out += ["", "### Fair vs biased twin: mass on the background for the shortcut attribute", "",
                *twin_lines(pd.read_csv(twin))]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    from .cli import main

    sys.exit(main(["headlines", *sys.argv[1:]]))
