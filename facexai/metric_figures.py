"""Figures drawn from tables: box plots by method, FR vs RP, perturbation curves, lift heat map,
metric agreement with the consensus ranking, the fair-vs-biased twin shares, training curves.
Methods carry their budget (steps, masks, samples) in every legend and tick label.

Every figure is written as PNG and PDF (same stem), with labelled axes and the Okabe-Ito
colour-blind-safe palette for methods; heat maps use a diverging map centred on lift 1.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .aggregate import cluster_bootstrap_mean_ci, method_budgets  # noqa: E402
from .atomic import atomic_path  # noqa: E402
from .labels import MASS_PARTS  # noqa: E402
from .render import OKABE_ITO, method_colours, method_label, save  # noqa: E402
from .stats import ORACLES  # noqa: E402



def box_by_method(table: pd.DataFrame, out_png, metrics=("rp", "lift")) -> None:
    """One panel per metric and model: the per-sample distribution of each method (NaN left out;
    n per box in the tick label)."""
    models = sorted(table["model"].unique())
    methods = sorted(table["method"].unique())
    colours = method_colours(methods)
    budgets = method_budgets(table)
    fig, axes = plt.subplots(len(metrics), len(models), figsize=(3.2 * len(models), 3.6 * len(metrics)),
                             squeeze=False, layout="constrained")
    for i, metric in enumerate(metrics):
        for j, model in enumerate(models):
            ax = axes[i, j]
            sub = table[table["model"] == model]
            data = [sub.loc[sub["method"] == m, metric].dropna().to_numpy() for m in methods]
            parts = ax.boxplot(data, patch_artist=True, showfliers=False, widths=0.6)
            for patch, m in zip(parts["boxes"], methods):
                patch.set_facecolor(colours[m])
                patch.set_alpha(0.8)
            ax.set_xticks(range(1, len(methods) + 1),
                          [f"{method_label(m, budgets)}, n={len(d)}" for m, d in zip(methods, data)],
                          fontsize=6, rotation=90)
            if metric == "lift":
                ax.axhline(1.0, color="grey", lw=0.8, ls="--")
                ax.set_yscale("log")
            ax.set_ylabel(metric if j == 0 else "")
            ax.set_title(f"{model}: {metric}", fontsize=9)
    fig.suptitle("Per-sample localisation by method (dashed: lift 1 = chance)", fontsize=10)
    save(fig, out_png)


def fr_vs_rp_figure(table: pd.DataFrame, points: pd.DataFrame, corr: dict, out_png, n_resamples: int = 1000,
                    seed: int = 0) -> None:
    """One point per (model, method): mean RP vs the size-controlled falsification rate, with 95 %
    bootstrap CI bars (images resampled). Attribution methods are filled markers; the model-free
    baselines (random, edge, centre) hollow and labelled as such, since the headline correlation is
    over the methods alone. The legend sits outside the axes, so that it hides no point."""
    colours = method_colours(points["method"].unique())
    markers = dict(zip(sorted(points["model"].unique()), "osD^vP*X"))
    free = set(points.loc[points["model_free"].astype(bool), "method"]) if "model_free" in points else set()
    fig, ax = plt.subplots(figsize=(7.5, 4.4), layout="constrained")
    for _, p in points.iterrows():
        sub = table[(table["model"] == p["model"]) & (table["method"] == p["method"])]
        rp, fr = sub.dropna(subset=["rp"]), sub.dropna(subset=["falsified_sized"])
        rl, rh = cluster_bootstrap_mean_ci(rp["rp"], rp["id"], n_resamples, seed)
        fl, fh = cluster_bootstrap_mean_ci(fr["falsified_sized"], fr["id"], n_resamples, seed)
        colour = colours[p["method"]]
        ax.errorbar(p["rp_mean"], p["fr_sized"], xerr=[[p["rp_mean"] - rl], [rh - p["rp_mean"]]],
                    yerr=[[p["fr_sized"] - fl], [fh - p["fr_sized"]]], fmt=markers[p["model"]], color=colour,
                    ecolor=colour, elinewidth=0.8, capsize=2, ms=6,
                    mfc="none" if p["method"] in free else colour, alpha=0.6 if p["method"] in free else 1.0)
    budgets = method_budgets(table)
    for method, colour in colours.items():
        hollow = method in free
        ax.plot([], [], "s", color=colour, mfc="none" if hollow else colour,
                label=method_label(method, budgets))  # a baseline's budget reads "model-free"
    for model, marker in markers.items():
        ax.plot([], [], marker, color="grey", label=model)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    ax.set_xlabel("mean regional precision (RP)")
    ax.set_ylabel("falsification rate (FR, size-controlled)")

    def fmt(c, name):
        value = c.get(name) if c else None
        if value is None or not np.isfinite(value):
            return f"{name}: undefined"
        return f"{name} {value:.2f} [{c[f'{name}_ci_low']:.2f}, {c[f'{name}_ci_high']:.2f}]"

    with_baselines = corr.get("with_baselines") or {}
    ax.set_title(f"FR vs RP, {corr.get('n_points', 0)} method points (filled): {fmt(corr, 'pearson')}, "
                 f"{fmt(corr, 'spearman')}\nwith the {with_baselines.get('n_points', 0) - corr.get('n_points', 0)} "
                 f"baseline points (hollow): {fmt(with_baselines, 'pearson')}; CIs: images resampled",
                 fontsize=8)
    save(fig, out_png)


def _curve_columns(table: pd.DataFrame, prefix: str) -> tuple[np.ndarray, list[str]]:
    pattern = re.compile(rf"^{re.escape(prefix)}@([0-9.]+)$")
    found = sorted(((float(m.group(1)), c) for c in table.columns if (m := pattern.match(c))))
    return np.array([x for x, _ in found]), [c for _, c in found]


def curves_figure(table: pd.DataFrame, out_png) -> None:
    """Mean deletion, insertion and ROAD (MoRF, LeRF) curves per model and method, with a 95 %
    band (mean ± 1.96 standard errors over samples)."""
    panels = [("deletion", "fraction of pixels deleted"), ("insertion", "fraction of pixels inserted"),
              ("road_morf", "% removed, most relevant first"), ("road_lerf", "% removed, least relevant first")]
    panels = [p for p in panels if _curve_columns(table, p[0])[1]]
    models = sorted(table["model"].unique())
    colours = method_colours(table["method"].unique())
    budgets = method_budgets(table)
    fig, axes = plt.subplots(len(models), max(1, len(panels)), squeeze=False, layout="constrained",
                             figsize=(3.0 * max(1, len(panels)), 2.6 * len(models)))
    for i, model in enumerate(models):
        for j, (prefix, xlabel) in enumerate(panels):
            ax = axes[i, j]
            x, cols = _curve_columns(table, prefix)
            for method, sub in table[table["model"] == model].groupby("method"):
                y = sub[cols].to_numpy(np.float64)
                y = y[np.isfinite(y).all(axis=1)]
                if not len(y):
                    continue
                mean = y.mean(axis=0)
                half = 1.96 * y.std(axis=0, ddof=1) / np.sqrt(len(y)) if len(y) > 1 else np.zeros_like(mean)
                ax.plot(x, mean, color=colours[method], label=f"{method_label(method, budgets)}, n={len(y)}",
                        lw=1.2)
                ax.fill_between(x, mean - half, mean + half, color=colours[method], alpha=0.2, lw=0)
            ax.set_xlabel(xlabel, fontsize=8)
            ax.set_ylabel("score" if j == 0 else "")
            ax.set_title(f"{model}: {prefix.replace('_', ' ')}", fontsize=9)
            if i == 0 and j == 0:
                ax.legend(fontsize=6)
    save(fig, out_png)


def lift_heatmap(table: pd.DataFrame, out_png) -> None:
    """Mean lift per method (rows) and expected region (columns), one panel per model; colour on a
    log2 scale centred on 1 (chance), values printed in the cells."""
    models = sorted(table["model"].unique())
    budgets = method_budgets(table)
    fig, axes = plt.subplots(1, len(models), figsize=(3.6 * len(models), 3.2), squeeze=False)
    image = None
    for j, model in enumerate(models):
        ax = axes[0, j]
        grid = table[table["model"] == model].pivot_table(index="method", columns="region", values="lift",
                                                           aggfunc="mean")
        values = np.log2(np.clip(grid.to_numpy(np.float64), 1 / 16, 16))
        image = ax.imshow(values, cmap="PuOr_r", vmin=-4, vmax=4, aspect="auto")
        ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=45, fontsize=7)
        names = [method_label(m, budgets) for m in grid.index] if j == 0 else [""] * grid.shape[0]
        ax.set_yticks(range(grid.shape[0]), names, fontsize=7)
        for (r, c), v in np.ndenumerate(grid.to_numpy()):
            ax.text(c, r, "n/a" if not np.isfinite(v) else f"{v:.1f}", ha="center", va="center", fontsize=6)
        ax.set_title(model, fontsize=9)
        ax.set_xlabel("expected region", fontsize=8)
    if image is not None:
        bar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8)
        bar.set_ticks([-4, -2, 0, 2, 4], labels=["1/16", "1/4", "1", "4", "16"])
        bar.set_label("mean lift (1 = chance)")
    save(fig, out_png)


def agreement_figure(agreement: pd.DataFrame, ranks: pd.DataFrame, out_png, group: str = "model") -> None:
    """Per model (row of panels): Kendall's tau between every two metrics' method rankings (a
    metric x metric heat map, -1 reversed .. 1 same order, the value in each cell), and the consensus
    ranking (each method's mean rank over the metrics with its 95 % bootstrap CI, best at the top)."""
    from .metrics import registry

    models = sorted(set(agreement[group]) | set(ranks[group]), key=str) or ["(none)"]
    budgets = dict(zip(ranks["method"], ranks["budget"].fillna(""))) if "budget" in ranks else {}
    n_metrics = max([len(set(agreement.loc[agreement[group] == m, "metric_a"])) + 1 for m in models] + [2])
    fig, axes = plt.subplots(len(models), 2, squeeze=False, layout="constrained",
                             figsize=(4.0 + 0.32 * n_metrics + 3.6, max(3.0, 0.32 * n_metrics + 1.2) * len(models)),
                             gridspec_kw={"width_ratios": [max(3.0, 0.32 * n_metrics), 3.2]})
    image = None
    for i, model in enumerate(models):
        ax, rax = axes[i, 0], axes[i, 1]
        pairs = agreement[agreement[group] == model]
        names = list(dict.fromkeys([*pairs["metric_a"], *pairs["metric_b"]]))
        grid = np.eye(len(names))
        for r in pairs.itertuples():
            a, b = names.index(r.metric_a), names.index(r.metric_b)
            grid[a, b] = grid[b, a] = r.tau
        labels = [registry.get(n).label if n in {m.name for m in registry.metrics()} else n for n in names]
        image = ax.imshow(grid, cmap="RdBu", vmin=-1, vmax=1)
        ax.set_xticks(range(len(names)), labels, rotation=90, fontsize=6)
        ax.set_yticks(range(len(names)), labels, fontsize=6)
        for (r, c), v in np.ndenumerate(grid):
            if r != c:
                ax.text(c, r, "" if not np.isfinite(v) else f"{v:.1f}".replace("-0.0", "0.0"), ha="center",
                        va="center", fontsize=5, color="white" if np.isfinite(v) and abs(v) > 0.6 else "black")
        n_methods = int(pairs["n_methods"].iloc[0]) if len(pairs) else 0
        mean_tau = pairs["tau"].mean() if len(pairs) else np.nan
        ax.set_title(f"{model}: Kendall τ between metrics' rankings of {n_methods} methods\n"
                     f"(mean τ {mean_tau:.2f})" if len(pairs) else f"{model}: fewer than 2 ranked methods",
                     fontsize=8)
        consensus = ranks[(ranks[group] == model) & (ranks["metric"] == "consensus")].sort_values("rank",
                                                                                                   ascending=False)
        y = np.arange(len(consensus))
        if len(consensus):
            rax.errorbar(consensus["rank"], y, xerr=[consensus["rank"] - consensus["rank_ci_low"],
                                                     consensus["rank_ci_high"] - consensus["rank"]],
                         fmt="o", color="#0072B2", capsize=2, ms=4)
        rax.set_yticks(y, [method_label(m, budgets) for m in consensus["method"]], fontsize=7)
        rax.set_xlabel("mean rank over metrics (1 = best), 95 % CI", fontsize=7)
        rax.set_title(f"{model}: consensus ranking", fontsize=8)
        if len(consensus):
            rax.set_xlim(0.5, n_methods + 0.5)
    if image is not None:
        fig.colorbar(image, ax=axes[:, 0].tolist(), shrink=0.6, label="Kendall τ")
    save(fig, out_png)


def metric_figures(per_sample_csvs, fr_vs_rp_csv, summary_json, outputs: dict, *, n_resamples: int = 1000,
                   seed: int = 0, agreement_csv=None, ranks_csv=None) -> None:
    import json

    table = pd.concat([pd.read_csv(p) for p in per_sample_csvs], ignore_index=True)
    points = pd.read_csv(fr_vs_rp_csv)
    corr = json.loads(Path(summary_json).read_text())["fr_vs_rp"]
    corr = {k: (np.nan if v is None else v) for k, v in corr.items() if k not in ("points", "threshold_variant")}
    box_by_method(table, outputs["box"])
    fr_vs_rp_figure(table, points, corr, outputs["fr_vs_rp"], n_resamples, seed)
    curves_figure(table, outputs["curves"])
    lift_heatmap(table, outputs["lift_heatmap"])
    if "agreement" in outputs:
        agreement_figure(pd.read_csv(agreement_csv), pd.read_csv(ranks_csv), outputs["agreement"])


def _error(rows: pd.DataFrame, prefix: str) -> np.ndarray:
    """Error-bar lengths (2, n) from a table's PREFIX_mean, PREFIX_ci_low, PREFIX_ci_high (0 where NaN)."""
    mean = rows[f"{prefix}_mean"].to_numpy(np.float64)
    return np.nan_to_num(np.abs(np.stack([mean - rows[f"{prefix}_ci_low"].to_numpy(np.float64),
                                          rows[f"{prefix}_ci_high"].to_numpy(np.float64) - mean])))


def twin_figure(twin_csv, out_png) -> None:
    """Fair vs biased twin (the table of `facexai.twins`): for decisions on the shortcut attribute,
    the mean share of each method's map mass in each face part with its 95 % bootstrap CI, fair and
    biased side by side (one panel per method and twin pair)."""
    table = pd.read_csv(twin_csv)
    twins = list(dict.fromkeys(zip(table["fair"], table["biased"])))
    methods = sorted(table["method"].unique())
    parts = list(MASS_PARTS)
    fig, axes = plt.subplots(max(1, len(twins)), max(1, len(methods)),
                             figsize=(3.4 * max(1, len(methods)), 2.8 * max(1, len(twins))), squeeze=False,
                             layout="constrained")
    for i, (fair, biased) in enumerate(twins):
        for j, method in enumerate(methods):
            ax = axes[i, j]
            rows = table[(table["fair"] == fair) & (table["biased"] == biased) & (table["method"] == method)]
            rows = rows.set_index("part").loc[parts]
            for k, (side, model, colour) in enumerate((("fair", fair, OKABE_ITO[4]),
                                                       ("biased", biased, OKABE_ITO[5]))):
                mean = rows[f"{side}_mean"].to_numpy(np.float64)
                n = int(rows[f"{side}_n_images"].iloc[0] - rows[f"{side}_n_no_mass"].iloc[0])
                x = np.arange(len(parts)) + (k - 0.5) * 0.38
                ax.bar(x, mean, width=0.38, color=colour, yerr=_error(rows, side), capsize=1.5,
                       error_kw={"elinewidth": 0.7}, label=f"{model} (n={n})")
            ax.set_xticks(range(len(parts)), parts, rotation=45, fontsize=7, ha="right")
            ax.set_ylabel("share of map mass" if j == 0 else "")
            ax.set_title(f"{method}: {rows['attribute'].iloc[0]}", fontsize=9)
            ax.legend(fontsize=6)
    fig.suptitle("Where the mass goes: fair vs biased twin (95 % bootstrap CI over images)", fontsize=10)
    save(fig, out_png)


def group_twin_figure(accuracy_csv, shift_csv, out_png) -> None:
    """The group-imbalanced twin (`facexai.group_twin`), one row per twin pair: the accuracy gap
    group - rest per attribute for the fair and the skewed model (a star where the change of the gap
    passes its test), then per method the shift of the map's mass share per part (skewed - fair;
    each image's mean over its explained decisions) on the group and on the rest, on one scale (a star
    where the two shifts differ). 95 % bootstrap CIs (persons resampled when the data name them). The
    model-free baselines and the random map are left out: they do not read the model, so their
    shift is 0 by construction (their rows in the table show it)."""
    from .attributions import MODEL_FREE_BASELINES, RANDOM

    accuracy, shift = pd.read_csv(accuracy_csv), pd.read_csv(shift_csv)
    pairs = list(dict.fromkeys(zip(accuracy["fair"], accuracy["skewed"], accuracy["group"])))
    methods = sorted(set(shift["method"]) - {RANDOM, *MODEL_FREE_BASELINES}) if len(shift) else []
    parts = list(MASS_PARTS)
    n_cols = 2 + len(methods)
    fig, axes = plt.subplots(max(1, len(pairs)), n_cols, figsize=(3.4 * n_cols, 3.9 * max(1, len(pairs))),
                             squeeze=False, layout="constrained")
    shift_axes = []
    for i, (fair, skewed, group) in enumerate(pairs):
        axes[i, 1].remove()
        ax = axes[i, 0]
        ax.set_subplotspec(axes[i, 0].get_gridspec()[i, :2])
        rows = accuracy[(accuracy["fair"] == fair) & (accuracy["skewed"] == skewed) & (accuracy["group"] == group)
                        & (accuracy["side"] == "yes - no")]
        x = np.arange(len(rows))
        first = rows.iloc[0]
        for k, (side, model, colour, marker) in enumerate((("fair", fair, OKABE_ITO[4], "o"),
                                                            ("skewed", skewed, OKABE_ITO[5], "s"))):
            share = first[f"{side}_train_share"]
            ax.errorbar(x + (k - 0.5) * 0.25, rows[f"{side}_mean"], yerr=_error(rows, side), fmt=marker,
                        color=colour, markersize=4, capsize=2, elinewidth=0.8,
                        label=f"{model}: trained on {int(first[f'{side}_n_train'])} images, {share:.0%} {group}")
        for xi, verdict in zip(x, rows["verdict"]):
            if verdict == "differ":
                ax.annotate("*", (xi, 1), xycoords=("data", "axes fraction"), ha="center", va="top", fontsize=11)
        ax.axhline(0, color="0.5", linewidth=0.7)
        ax.set_xticks(x, rows["attribute"], rotation=40, fontsize=7, ha="right")
        ax.set_ylabel(f"test accuracy, {group} - rest")
        unit = first.get("unit", "image")
        ax.set_title(f"{skewed} vs {fair}: accuracy gap on {int(first['n_member'])} {group} and "
                     f"{int(first['n_rest'])} other test images ({int(first['n_member_units'])} and "
                     f"{int(first['n_rest_units'])} {unit}s)\n* the gap changed (skewed vs fair: Mann-Whitney of the "
                     f"{unit}s' paired differences, Holm)", fontsize=8)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.42), ncol=2, frameon=False)
        for j, method in enumerate(methods):
            ax = axes[i, 2 + j]
            shift_axes.append(ax)
            mine = shift[(shift["fair"] == fair) & (shift["skewed"] == skewed) & (shift["group"] == group)
                         & (shift["method"] == method) & (shift["attribute"] == "all")]
            for k, (side, label, colour) in enumerate((("yes", group, OKABE_ITO[6]), ("no", "rest", OKABE_ITO[2]))):
                rows = mine[mine["side"] == side].set_index("part").reindex(parts)
                n = rows["n_member" if side == "yes" else "n_rest"].max()
                ax.bar(np.arange(len(parts)) + (k - 0.5) * 0.38, rows["difference_mean"], width=0.38, color=colour,
                       yerr=_error(rows, "difference"), capsize=1.5, error_kw={"elinewidth": 0.7},
                       label=f"{label} (n={0 if pd.isna(n) else int(n)})")
            tested = mine[mine["side"] == "yes - no"].set_index("part").reindex(parts)
            for xi, verdict in enumerate(tested["verdict"]):
                if verdict == "differ":
                    ax.annotate("*", (xi, 1), xycoords=("data", "axes fraction"), ha="center", va="top", fontsize=11)
            ax.axhline(0, color="0.5", linewidth=0.7)
            ax.set_xticks(range(len(parts)), parts, rotation=45, fontsize=7, ha="right")
            ax.set_ylabel("mass share, skewed - fair" if j == 0 else "")
            ax.set_title(f"{method_label(method)}: where the mass moves\n(all explained attributes; * the shifts "
                         "differ)", fontsize=8)
            ax.legend(fontsize=6)
    if shift_axes:  # one scale for every method
        low = min(a.get_ylim()[0] for a in shift_axes)
        high = max(a.get_ylim()[1] for a in shift_axes)
        for a in shift_axes:
            a.set_ylim(low, high)
    fig.suptitle("Group-imbalanced twin (95 % bootstrap CIs; model-free maps, whose shift is 0 by construction, in "
                 "the table only)", fontsize=10)
    save(fig, out_png)


def training_curves_figure(curves_tsv, out_png, title: str = "", dpi: int = 100) -> None:
    """Train and test loss per epoch."""
    curves = pd.read_csv(curves_tsv, sep="\t")
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for column, style in (("train_loss", "-o"), ("test_loss", "--s")):
        if column in curves:
            ax.plot(curves["epoch"], curves[column], style, label=column.replace("_", " "), markersize=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=9)
    ax.legend(frameon=False)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)


def game_figure(localisation: pd.DataFrame, out_png, embedder: str = "") -> int:
    """The inpainting game on the kept triplets of one embedder: per region, each method's mean flip
    fraction (lower is better) and game region lift (higher is better) with the 95 % CI by probe
    image; the oracle (`difference`) drawn hollow and labelled as the oracle, the random baseline's
    value as a dashed line per region. PNG and PDF. Returns the number of regions drawn."""
    table = localisation[localisation["kind"] == "triplet"]
    regions = sorted(table["region"].unique())
    methods = sorted(table["method"].unique())
    colours = method_colours(methods)
    budgets = {m: b for m, b in zip(table["method"], table["budget"])} if "budget" in table else {}
    panels = (("game_flip_fraction", "fraction of P switched to P' at the flip\n(lower is better; 1: never)"),
              ("game_region_lift", "switched pixels in the pasted area: share / the\narea's share of the image "
                                   "(higher is better; 1: chance)"))
    fig, axes = plt.subplots(1, 2, figsize=(4.2 + 1.1 * len(regions), 3.8), squeeze=False, layout="constrained")
    width = 0.8 / max(len(methods), 1)
    for ax, (metric, label) in zip(axes[0], panels):
        for k, method in enumerate(methods):
            rows = table[table["method"] == method].set_index("region").reindex(regions)
            x = np.arange(len(regions)) - 0.4 + width * (k + 0.5)
            mean = rows[f"{metric}_mean"].to_numpy(float)
            err = np.abs(np.vstack([mean - rows[f"{metric}_ci_low"].to_numpy(float),
                                    rows[f"{metric}_ci_high"].to_numpy(float) - mean]))
            oracle = method in ORACLES
            name = method_label(method, budgets) + (" = oracle (reads M - M')" if oracle else "")
            ax.errorbar(x, mean, yerr=np.nan_to_num(err), fmt="s" if oracle else "o", ms=6,
                        mfc="white" if oracle else colours[method], mec=colours[method], ecolor=colours[method],
                        capsize=2, lw=1, label=name)
        if metric == "game_region_lift":
            ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_xticks(range(len(regions)), [f"{r}\nn={int(table.loc[table['region'] == r, 'n'].max())}"
                                            for r in regions], fontsize=8)
        ax.set_ylabel(label, fontsize=8)
    if not regions:
        axes[0, 0].text(0.5, 0.5, "no kept triplets", ha="center", va="center", transform=axes[0, 0].transAxes)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right center", fontsize=7, frameon=False)
    fig.suptitle(f"Inpainting game on triplets{f' ({embedder})' if embedder else ''}: switch the probe P to P' "
                 "(the donor's region) in map order until it prefers the twin", fontsize=9)
    save(fig, out_png)
    return len(regions)
