"""Per-sample metric tables for one (model or embedder, method, shard) attribution file.

One row per explained subject (its kind, facexai/subjects, gives the identification, truth,
outcome and expected region): identification (model, method, id, attribute or pair, region, score),
the metrics against the region mask (label resolution), and the metrics that call the model
(deletion / insertion, ROAD, confidence change under occlusion, falsification, sanity check) at
the model resolution, with their curves as columns `deletion@0.0625`, `road_morf@10`, ...
Undefined values are NaN, with the reason in `degenerate` (masks) or `falsification_degenerate`.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..subjects import get as subject_kind
from ..atomic import atomic_path
from ..attributions.base import method_budget
from ..attributions.store import read_shard
from ..data.samples import to_model_input
from ..device import resolve_device
from .registry import added, mask_columns

log = logging.getLogger(__name__)

MASK_COLUMNS = (*mask_columns(), "degenerate", "auc_degenerate")
DIAGNOSTIC_COLUMNS = ("completeness_error", "completeness_flagged", "masks_used")
# the randomisation checks re-run the attribution method: maps made elsewhere cannot be checked
NEEDS_METHOD = "needs_the_method"


def extra_columns(shard, masks: np.ndarray, settings: dict, rows=None) -> dict[str, np.ndarray]:
    """Columns beyond the built-in mask metrics: every registered metric with its own function
    (registry.register; `rows` (bool) limits them to some rows, the others NaN), and the method's
    own diagnostics stored with the maps (e.g. Integrated Gradients' completeness error)."""
    maps = shard.maps
    sel = np.ones(len(maps), bool) if rows is None else np.asarray(rows, bool)
    out = {}
    for metric in added():
        values = np.full(len(maps), np.nan)
        if sel.any():
            values[sel] = np.asarray(metric.compute(maps[sel], masks[sel], settings), np.float64)
        out[metric.name] = values
    out.update({name: shard[name] for name in DIAGNOSTIC_COLUMNS if name in shard.columns})
    return out


def model_resolution_masks(masks: np.ndarray, size: int) -> np.ndarray:
    """Region masks (N, H, W) at the label resolution -> (N, size, size): a model pixel belongs to
    the region when at least half of the label pixels it covers do."""
    if masks.shape[-2:] == (size, size):
        return masks
    t = torch.from_numpy(masks.astype(np.float32))[:, None]
    return (F.interpolate(t, size=(size, size), mode="area")[:, 0] >= 0.5).numpy()


def model_metrics(task, images: np.ndarray, maps: np.ndarray, ids: np.ndarray, regions_model: np.ndarray,
                  settings: dict, dev, *, threshold=None, same: np.ndarray | None = None,
                  explain=None, model=None, seed: int = 0) -> dict[str, np.ndarray]:
    """The metrics that call the model, as columns (N,) each. `settings` is config `metrics`;
    `explain(model, rows, x=None)` recomputes maps of the given rows with another model, on the rows'
    images or on `x` (noisy copies of them) (sanity checks)."""
    from tqdm import tqdm

    from .faithfulness import confidence_change, deletion_insertion
    from .falsification import falsification
    from .road import road
    from .sanity import cascading_randomisation, smoothed_randomisation

    n = len(images)
    cols: dict[str, np.ndarray] = {}
    batch = int(settings["batch_size"])
    steps = ["deletion/insertion", "road", "occlusion", "falsification", "sanity"]
    bar = tqdm(total=len(steps), desc="model metrics", mininterval=2)
    x = to_model_input(images, dev)
    d = settings["deletion"]
    di = deletion_insertion(task, x, maps, steps=int(d["steps"]), baseline=d["baseline"], batch_size=batch,
                            threshold=threshold, same=same, seeds=ids)
    cols["perturbation_degenerate"] = di["degenerate"]
    for kind in ("deletion", "insertion"):
        cols[f"{kind}_auc"] = di[f"{kind}_auc"]
        if threshold is not None:
            cols[f"{kind}_accuracy_auc"] = di[f"{kind}_accuracy_auc"]
    for kind in ("deletion", "insertion"):
        for j, f in enumerate(di["fractions"]):
            cols[f"{kind}@{f:.4f}"] = di[f"{kind}_curve"][:, j]
    bar.update()
    r = settings["road"]
    rd = road(task, images, maps, percentages=r["percentages"], noise=float(r["noise"]), seeds=ids,
              device=dev, batch_size=batch)
    cols.update(road_morf=rd["morf"], road_lerf=rd["lerf"], road_gap=rd["gap"])
    for order in ("morf", "lerf"):
        for j, p in enumerate(rd["percentages"]):
            cols[f"road_{order}@{p:g}"] = rd[f"{order}_curve"][:, j]
    bar.update()
    cc = confidence_change(task, x, regions_model, fill=settings["occlusion"]["fill"], batch_size=batch)
    for key in ("drop_subject", "increase_subject", "drop_background", "increase_background"):
        cols[key] = cc[key]
    cols["occlusion_degenerate"] = cc["degenerate"]
    bar.update()
    fz = settings["falsification"]
    fal = falsification(task, x, maps, k=int(fz["k"]), high=float(fz["high"]), low=float(fz["low"]),
                        fraction=float(fz["fraction"]), q=float(fz["q"]), mass=settings["mass"], seeds=ids,
                        batch_size=batch)
    cols.update(falsification_dist_high=fal["dist_high"], falsification_dist_low=fal["dist_low"],
                falsification_drop_high=fal["drop_high"], falsification_drop_low=fal["drop_low"],
                falsification_m=fal["m"], falsified=fal["falsified"], falsification_degenerate=fal["degenerate"],
                falsification_sized_dist_high=fal["sized_dist_high"],
                falsification_sized_dist_low=fal["sized_dist_low"], falsification_sized_m=fal["sized_m"],
                falsified_sized=fal["sized_falsified"], falsification_sized_degenerate=fal["sized_degenerate"])
    if fz.get("magnitude"):
        cols.update(falsified_magnitude=fal["falsified_magnitude"],
                    falsified_sized_magnitude=fal["sized_falsified_magnitude"])
    bar.update()
    sc = settings["sanity"]
    # spread over the shard (rows are ordered by sample, then attribute), so every attribute is likely met
    checked = np.unique(np.linspace(0, n - 1, min(n, int(sc["max_samples"]))).round().astype(np.int64)) if n else \
        np.zeros(0, np.int64)
    cols["sanity_checked"] = np.isin(np.arange(n), checked)
    cols["sanity_spearman"], cols["sanity_ssim"] = np.full(n, np.nan), np.full(n, np.nan)
    # without the method (maps made elsewhere) a checked row cannot be re-explained: NaN, named
    unchecked = "" if explain is not None else NEEDS_METHOD
    cols["sanity_reason"] = np.where(cols["sanity_checked"], unchecked, "not_checked").astype(object)
    if explain is not None and model is not None and len(checked):
        cr = cascading_randomisation(model, lambda m: explain(m, checked), maps[checked],
                                     stages=int(sc["stages"]), seed=seed)
        cols["sanity_spearman"][checked], cols["sanity_ssim"][checked] = cr["spearman"][:, -1], cr["ssim"][:, -1]
        cols["sanity_reason"][checked] = cr["reason"][:, -1]
        for j, count in enumerate(cr["layers"]):
            for key in ("spearman", "ssim"):
                col = np.full(n, np.nan)
                col[checked] = cr[key][:, j]
                cols[f"sanity_{key}@{count}"] = col
        log.info("sanity: layers randomised per stage %s (deepest: %s)", [int(c) for c in cr["layers"]],
                 [str(s) for s in cr["layer_names"]])
    smooth = sc.get("smooth") or {}
    if int(smooth.get("samples", 0)) > 0:
        # a subset of the checked rows, spread over them (each row costs 2 x samples maps)
        limit = int(smooth.get("max_samples", len(checked)))
        smoothed = checked[np.unique(np.linspace(0, len(checked) - 1, min(len(checked), limit)).round()
                                     .astype(np.int64))] if len(checked) and limit > 0 else np.zeros(0, np.int64)
        cols["smprt_spearman"] = np.full(n, np.nan)
        cols["smprt_reason"] = np.where(np.isin(np.arange(n), smoothed), "" if explain is not None else NEEDS_METHOD,
                                        "not_checked").astype(object)
        if explain is not None and model is not None and len(smoothed):
            sm = smoothed_randomisation(model, lambda m, xn: explain(m, smoothed, xn), x[smoothed], ids[smoothed],
                                        samples=int(smooth["samples"]), noise=float(smooth["noise"]), seed=seed)
            cols["smprt_spearman"][smoothed], cols["smprt_reason"][smoothed] = sm["spearman"], sm["reason"]
    bar.update()
    bar.close()
    return cols


def metric_table(kind: str, inputs: dict, out_csv, *, regions: dict, settings: dict,
                 attribute_regions: dict | None = None, seed: int = 0, device: str = "auto",
                 threads: int = 1) -> pd.DataFrame:
    """Every metric for every explained subject of one attribution file (`inputs["attributions"]`;
    `inputs`: the job's input files by name; `kind`: the subject kind, facexai/subjects).

    Against the expected region (rows that have one; the others get the kind's `outside` values):
    the mask metrics, the kind's own (for pairs: the dissimilarity map's rp / lift, the swapped
    part against its seam) and every registered metric. Against the model (every row): deletion /
    insertion (with the decision's correctness where the kind has a threshold), ROAD, confidence
    change under occlusion, falsification, the sanity checks, and the kind's own (for triplets:
    the inpainting game). A file whose method was not applicable to the network gives rows with
    every metric NaN, `degenerate` = not_applicable and the reason in `not_applicable`."""
    from ..attributions.base import get_method
    from ..attributions.run import explained_labels
    from ..models.train import seed_everything
    from .topq import mask_metrics

    torch.set_num_threads(max(1, threads))
    seed_everything(seed)
    dev = resolve_device(device)
    shard = read_shard(inputs["attributions"])
    maps, ids = shard.maps, shard["ids"]
    method, stored_params = shard.method, shard.params
    sc = subject_kind(kind).scored(shard, inputs, regions=regions, settings=settings,
                                   attribute_regions=attribute_regions)
    table = pd.DataFrame({"model": shard.model, "method": method, "budget": method_budget(method, stored_params),
                          **sc.columns})
    masks, has_region = sc.masks, sc.with_region
    if sc.not_applicable:
        for name in (*MASK_COLUMNS, *sc.not_applicable_columns):
            table[name] = np.nan
        table["degenerate"] = "not_applicable"
        table["not_applicable"] = sc.not_applicable
        with atomic_path(out_csv) as tmp:
            table.to_csv(tmp, index=False)
        log.info("%s/%s on %s: not applicable (%s); %d rows", kind, method, shard.model, sc.not_applicable,
                 len(table))
        return table
    mm = mask_metrics(maps, masks, q=float(settings["q"]), tolerance=float(settings["pointing_tolerance"]),
                      mode=settings["mass"], workers=threads)
    for name in MASK_COLUMNS:
        table[name] = mm[name] if has_region is None else np.where(has_region, mm[name], sc.outside.get(name, np.nan))
    if sc.mask_extras is not None:
        table = table.assign(**sc.mask_extras(maps, masks, threads))
    table = table.assign(**extra_columns(shard, masks, settings, rows=has_region))
    table = table.assign(**sc.trailing)
    if len(table):
        model, images, task_for = sc.load(dev)
        explainer = get_method(method, stored_params)
        labels = explained_labels(inputs["data"], shard["row"]) if explainer.needs_labels else None
        x_all = to_model_input(images, dev)

        def task_of(network, sel):
            task = task_for(network, sel)
            task.part_labels = None if labels is None else labels[sel]
            return task

        def explain(other, sel, x=None):
            return explainer(task_of(other, sel), x_all[sel] if x is None else x, ids[sel], seed)

        task = task_of(model, np.arange(len(table)))
        regions_model = model_resolution_masks(masks, images.shape[1])
        # maps made elsewhere cannot be re-made by a randomised model: no sanity check, said so
        cols = model_metrics(task, images, maps, ids, regions_model, settings, dev, threshold=sc.threshold,
                             same=sc.same, explain=explain if explainer.recomputable else None, model=model,
                             seed=seed)
        if sc.finish is not None:
            sc.finish(cols, task, x_all, maps, regions_model, dev)
        table = pd.concat([table, pd.DataFrame(cols)], axis=1)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    log.info("%s", sc.summary(table) if sc.summary is not None else f"{shard.model}/{method}: {len(table)} rows")
    return table
