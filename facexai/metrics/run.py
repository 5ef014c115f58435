"""Per-sample metric tables for one (model, method, shard) attribution file.

One row per explained decision: identification (model, method, id, attribute, region, score),
the metrics against the region mask (label resolution), and the metrics that call the model
(deletion / insertion, ROAD, confidence change under occlusion, falsification, sanity check) at
the model resolution, with their curves as columns `deletion@0.0625`, `road_morf@10`, ...
Undefined values are NaN, with the reason in `degenerate` (masks) or `falsification_degenerate`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..atomic import atomic_path
from ..attributions.base import method_budget
from ..attributions.store import read_shard
from ..data.pairs import PAIR_SAME
from ..data.samples import read_rows, to_model_input
from ..device import resolve_device
from ..labels import ATTRIBUTE_INDEX, region_masks
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


def outcomes(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """The decision's outcome per row: TP, FP, FN or TN (truth and prediction as bool)."""
    truth, predicted = np.asarray(truth, bool), np.asarray(predicted, bool)
    return np.where(predicted, np.where(truth, "TP", "FP"), np.where(truth, "FN", "TN")).astype(object)


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


def metric_table(attribution_h5, dataset_h5, model_dir, out_csv, *, regions: dict, attribute_regions: dict,
                 settings: dict, seed: int = 0, device: str = "auto",
                 threads: int = 1) -> pd.DataFrame:
    """Every metric for every explained decision of one attribution file (attribute classifiers)."""
    from ..attributions.base import ClassTask, get_method
    from ..models.train import load_model, seed_everything
    from .topq import mask_metrics

    torch.set_num_threads(max(1, threads))
    seed_everything(seed)
    dev = resolve_device(device)
    shard = read_shard(attribution_h5)
    maps, rows, ids, score, targets = shard.maps, shard["row"], shard["ids"], shard["score"], shard["target"]
    attributes = list(shard["attribute"])
    method, model_name, stored_params = shard.method, shard.model, shard.params
    missing = sorted({a for a in attributes if a not in attribute_regions})
    if missing:
        raise ValueError(f"attribute_regions: no expected region for explained attribute(s) {missing}")
    with h5py.File(dataset_h5, "r") as h5:
        labels = read_rows(h5, "labels", rows)
        images = read_rows(h5, "images", rows)
        truth = read_rows(h5, "attributes", rows)[np.arange(len(rows)), [ATTRIBUTE_INDEX[a] for a in attributes]] > 0
    region_names = [attribute_regions[a] for a in attributes]
    masks = region_masks(labels, region_names, regions)
    # outcome at the model's decision threshold (probability 0.5, as its test metrics use)
    table = pd.DataFrame({"model": model_name, "method": method, "budget": method_budget(method, stored_params),
                          "id": ids, "attribute": attributes, "region": region_names, "score": score,
                          "outcome": outcomes(truth, np.asarray(score) > 0.5)})
    mm = mask_metrics(maps, masks, q=float(settings["q"]), tolerance=float(settings["pointing_tolerance"]),
                      mode=settings["mass"], workers=threads)
    for name in MASK_COLUMNS:
        table[name] = mm[name]
    table = table.assign(**extra_columns(shard, masks, settings))
    if len(table):
        model, _ = load_model(model_dir, dev)
        task = ClassTask(model, torch.from_numpy(targets).to(dev))
        explainer = get_method(method, stored_params)
        x_all = to_model_input(images, dev)
        target_t = torch.from_numpy(targets).to(dev)

        def explain(other, sel, x=None):
            task_of = ClassTask(other, target_t[sel])
            task_of.part_labels = labels[sel] if explainer.needs_labels else None
            return explainer(task_of, x_all[sel] if x is None else x, ids[sel], seed)

        # maps made elsewhere cannot be re-made by a randomised model: no sanity check, said so
        cols = model_metrics(task, images, maps, ids, model_resolution_masks(masks, images.shape[1]), settings,
                             dev, explain=explain if explainer.recomputable else None, model=model, seed=seed)
        table = pd.concat([table, pd.DataFrame(cols)], axis=1)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    n_bad = int((table["degenerate"] != "").sum())
    log.info("%s/%s: %d rows, %d degenerate against the masks", model_name, method, len(table), n_bad)
    return table


def part_and_seam(maps, masks, kinds, partner_rows, pairs_h5, settings) -> dict[str, np.ndarray]:
    """For region-swap pairs and their controls: the lift of the map (the configured mass) in the donor's part and in
    the rest of the pasted area (the border the blend made), apart: a map on the seam rather than
    on the part shows in `lift_seam`. NaN for other kinds (and for a pair store without parts)."""
    from ..data.pairs import SWAP_KINDS, swap_parts
    from .topq import mask_metrics

    n = len(maps)
    out = {"lift_part": np.full(n, np.nan), "lift_seam": np.full(n, np.nan)}
    swap = np.flatnonzero([k in SWAP_KINDS for k in kinds])
    if not swap.size or pairs_h5 is None:
        return out
    parts = swap_parts(pairs_h5, partner_rows, kinds, masks.shape[-1])
    if parts is None:
        log.warning("%s: a pair store without the swapped parts; lift_part / lift_seam left NaN", pairs_h5)
        return out
    for column, region in (("lift_part", parts[swap]), ("lift_seam", masks[swap] & ~parts[swap])):
        out[column][swap] = mask_metrics(maps[swap], region, q=float(settings["q"]), mode=settings["mass"])["lift"]
    return out


def game_columns(task, x_all, maps, ids, regions_model, has_twin, shard, dataset_h5, pairs_h5, settings,
                 dev) -> dict[str, np.ndarray]:
    """The inpainting game's columns: its values on the triplet rows, NaN and `not_a_triplet`
    elsewhere."""
    from ..data.pairs import read_pair_images
    from .game import inpainting_game

    n = len(maps)
    out = {"game_flip_fraction": np.full(n, np.nan), "game_region_share": np.full(n, np.nan),
           "game_region_lift": np.full(n, np.nan),
           "game_degenerate": np.full(n, "not_a_triplet", dtype=object)}
    sel = np.flatnonzero(has_twin)
    if sel.size:
        swapped = to_model_input(read_pair_images(dataset_h5, pairs_h5, shard["game_row"][sel]), dev)
        game = inpainting_game(task, x_all[sel], swapped, maps[sel], regions_model[sel],
                               steps=int((settings.get("game") or {}).get("steps", 32)), seeds=ids[sel],
                               batch_size=int(settings["batch_size"]), rows=sel)
        for key, values in game.items():
            out[key][sel] = values
    return out


def pair_metric_table(attribution_h5, dataset_h5, embedder_dir, eer_json, out_csv, *, regions: dict,
                      settings: dict, seed: int = 0, device: str = "auto", threads: int = 1,
                      pairs_h5=None) -> pd.DataFrame:
    """Every metric for the verification pairs of one attribution file (map over image a, partner b
    fixed, score = the embedder's similarity; for a triplet the preference s(P, M) - s(P, M'), its
    decision "prefers the mate" (preference >= 0) and its expected region R in P's labels; the
    inpainting game (`game.inpainting_game`) on the triplets).

    Against the masks (pairs with an expected region: the synthetic set's region pairs and the
    region-swap pairs, `data.pairs.expected_regions`): the metrics of `mask_metrics` on the
    similarity map (its mass per `metrics.mass`, positive part by default), plus rp/lift of the
    dissimilarity map (negative part). Against the model (every pair): deletion / insertion of the
    similarity and of verification correctness at the embedder's EER threshold, ROAD, falsification
    on the drop of the pair score with the partner, the sanity check; confidence change for pairs
    with a region. A file whose method was not applicable to the embedder gives rows with every
    metric NaN, `degenerate` = not_applicable and the reason in `not_applicable`.
    """
    from ..attributions.base import PairTask, get_method
    from ..attributions.run import explained_labels, oracle_pair
    from ..data.pairs import GROUND_TRUTH_KINDS, REGION_KINDS, expected_regions, read_pair_images
    from ..models.train import seed_everything
    from ..models.verification import embed, load_embedder
    from . import registry
    from .topq import mask_metrics

    torch.set_num_threads(max(1, threads))
    seed_everything(seed)
    dev = resolve_device(device)
    shard = read_shard(attribution_h5)
    maps, rows, partner_rows = shard.maps, shard["row"], shard["partner_row"]
    ids, partner_ids, score = shard["ids"], shard["partner_id"], shard["score"]
    kinds, region_names = list(shard["kind"]), list(shard["region"])
    has_twin = np.array([k == "triplet" for k in kinds], bool)
    if has_twin.any() and "twin_row" not in shard.columns:
        raise ValueError(f"{attribution_h5}: triplet rows without twin_row (a file from an older version: delete it "
                         "to have it made again)")
    twin_rows = shard["twin_row"] if has_twin.any() else partner_rows
    twin_ids = shard["twin_id"] if has_twin.any() else partner_ids
    method, stored_params = shard.method, shard.params
    unknown = sorted(set(kinds) - set(PAIR_SAME))
    if unknown:
        raise ValueError(f"{attribution_h5}: unknown pair kind(s) {unknown}")
    threshold = float(json.loads(Path(eer_json).read_text())["threshold"])
    has_region = np.array([k in REGION_KINDS for k in kinds], bool)
    masks = expected_regions(dataset_h5, pairs_h5, rows, partner_rows, kinds, region_names, regions,
                             probe_swap_rows=shard["game_row"] if has_twin.any() else None)
    # outcome of the verification decision at the EER threshold (accept when similarity >= threshold);
    # a triplet's decision: the probe prefers its mate over the twin (preference >= 0)
    thresholds = np.where(has_twin, 0.0, threshold)
    table = pd.DataFrame({"model": shard.model, "method": method, "budget": method_budget(method, stored_params),
                          "id": ids, "partner_id": partner_ids, "kind": kinds, "region": region_names,
                          "score": score, "outcome": outcomes([PAIR_SAME[k] for k in kinds],
                                                              np.asarray(score) >= thresholds)})
    reason = str(shard.attrs.get("not_applicable", "") or "")
    if reason:
        for name in (*MASK_COLUMNS, *registry.summarised(pairs=True), "rp_dissimilarity", "lift_dissimilarity",
                     "game_degenerate"):
            table[name] = np.nan
        table["degenerate"] = "not_applicable"
        table["not_applicable"] = reason
        with atomic_path(out_csv) as tmp:
            table.to_csv(tmp, index=False)
        log.info("verification/%s on %s: not applicable (%s); %d rows", method, shard.model, reason, len(table))
        return table
    mm = mask_metrics(maps, masks, q=float(settings["q"]), tolerance=float(settings["pointing_tolerance"]),
                      mode=settings["mass"], workers=threads)
    dis = mask_metrics(maps, masks, q=float(settings["q"]), mode="negative", workers=threads)
    for name in MASK_COLUMNS:
        outside = {"degenerate": "not_a_region_pair", "auc_degenerate": ""}.get(name, np.nan)
        table[name] = np.where(has_region, mm[name], outside)
    table["rp_dissimilarity"] = np.where(has_region, dis["rp"], np.nan)
    table["lift_dissimilarity"] = np.where(has_region, dis["lift"], np.nan)
    table["degenerate_dissimilarity"] = np.where(has_region, dis["degenerate"], "not_a_region_pair")
    table = table.assign(**part_and_seam(maps, masks, kinds, partner_rows, pairs_h5, settings))
    table = table.assign(**extra_columns(shard, masks, settings, rows=has_region))
    table["not_applicable"] = ""
    if len(table):
        images = read_pair_images(dataset_h5, pairs_h5, rows)
        partners = read_pair_images(dataset_h5, pairs_h5, partner_rows)
        twins = read_pair_images(dataset_h5, pairs_h5, twin_rows) if has_twin.any() else None
        oracle = oracle_pair(images, partners, partners if twins is None else twins, has_twin, dev)
        model, meta = load_embedder(embedder_dir, dev)
        similarity = meta["similarity"]
        explainer = get_method(method, stored_params)
        labels = explained_labels(dataset_h5, rows) if explainer.needs_labels else None
        x_all = to_model_input(images, dev)
        # the partner fill is refused for the kinds with a ground truth (attributions.run)
        partner_x = None if np.isin(kinds, GROUND_TRUTH_KINDS).any() else to_model_input(partners, dev)

        def task_for(m, sel):
            def embedded(pixels, who):
                return torch.from_numpy(embed(m, pixels[sel], dev, similarity=similarity, name=shard.model,
                                              ids=who[sel], check=m is model)).to(dev)

            task = PairTask(m, embedded(partners, partner_ids), partner_ids=partner_ids[sel],
                            partner_images=None if partner_x is None else partner_x[sel], similarity=similarity,
                            twin_embeddings=None if twins is None else embedded(twins, twin_ids),
                            has_twin=has_twin[sel])
            task.oracle_images = (oracle[0][sel], oracle[1][sel])
            task.part_labels = None if labels is None else labels[sel]
            return task

        def explain(other, sel, x=None):
            return explainer(task_for(other, sel), x_all[sel] if x is None else x, ids[sel], seed)

        all_rows = np.arange(len(table))
        same = np.array([PAIR_SAME[k] for k in kinds])
        task = task_for(model, all_rows)
        regions_model = model_resolution_masks(masks, images.shape[1])
        cols = model_metrics(task, images, maps, ids, regions_model, settings, dev, threshold=thresholds,
                             same=same, explain=explain, model=model, seed=seed)
        # the relative drop (Y - O) / Y divides by the score: a triplet's preference is a difference that
        # may sit just above its margin, so the ratio would be float noise amplified; not reported there
        for key in ("drop_subject", "increase_subject", "drop_background", "increase_background"):
            cols[key] = np.where(has_region & ~has_twin, cols[key], np.nan)
        cols["occlusion_degenerate"] = np.where(has_twin, "relative_drop_of_a_preference",
                                                cols["occlusion_degenerate"]).astype(object)
        cols.update(game_columns(task, x_all, maps, ids, regions_model, has_twin, shard, dataset_h5, pairs_h5,
                                 settings, dev))
        table = pd.concat([table, pd.DataFrame(cols)], axis=1)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    log.info("verification/%s on %s: %d pairs (%d with a region)", method, shard.model, len(table),
             int(has_region.sum()))
    return table
