"""Explain one shard of the test split with one method and write the attribution HDF5 atomically.

Which decisions are explained: every test sample (the first `max_samples` by id, split into
`n_shards` contiguous shards) times every configured attribute the model predicts; with
`only_positive`, only where the ground truth is positive (an absent hat has no region to find).

The attribution file: `store` (its one writer and reader).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable

import h5py
import numpy as np
import pandas as pd
import torch

from .._version import __version__
from ..data.pairs import PAIR_KINDS
from ..data.samples import read_rows, to_model_input
from ..data.splits import read_split
from ..device import resolve_device
from ..labels import ATTRIBUTE_INDEX
from ..models.train import load_model, seed_everything
from .base import ClassTask, get_method
from .store import write_shard

log = logging.getLogger(__name__)


def shard_rows(split: pd.DataFrame, shard: int, n_shards: int, max_samples: int | None) -> np.ndarray:
    """Dataset rows of the test samples in shard `shard` of `n_shards` (contiguous, by sample id)."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} outside 0..{n_shards - 1}")
    test = split[split["split"] == "test"].sort_values("id")
    if max_samples:
        test = test.iloc[:max_samples]
    return np.array_split(test["row"].to_numpy(), n_shards)[shard]


def explanation_table(attributes: np.ndarray, rows: np.ndarray, ids: np.ndarray, model_attributes: list[str],
                      explain: list[str], only_positive: bool) -> pd.DataFrame:
    """One line per decision to explain: dataset row, sample id, model output index, attribute."""
    missing = [a for a in explain if a not in model_attributes]
    if missing:
        raise ValueError(f"explain.attributes: {missing} not predicted by the model "
                         f"(model attributes: {model_attributes})")
    records = []
    for k, (row, sample_id) in enumerate(zip(rows, ids)):
        for name in explain:
            if only_positive and attributes[k, ATTRIBUTE_INDEX[name]] <= 0:
                continue
            records.append((int(row), int(sample_id), model_attributes.index(name), name))
    return pd.DataFrame(records, columns=["row", "id", "target", "attribute"])


def explain_shard(dataset_h5, split_tsv, model_dir, out_h5, *, model_name: str, method: str, params: dict,
                  shard: int, n_shards: int, explain: list[str], only_positive: bool = True,
                  max_samples: int | None = None, batch_size: int = 32, seed: int = 0,
                  device: str = "auto", threads: int = 1, progress: bool = True) -> int:
    torch.set_num_threads(max(1, threads))
    seed_everything(seed)
    dev = resolve_device(device)
    model, meta = load_model(model_dir, dev)
    explainer = get_method(method, params)
    if hasattr(explainer, "bind"):  # maps made elsewhere: this model's file
        explainer.bind(model_name, meta["attributes"])
    rows = shard_rows(read_split(split_tsv), shard, n_shards, max_samples)
    with h5py.File(dataset_h5, "r") as h5:
        table = explanation_table(read_rows(h5, "attributes", rows), rows, read_rows(h5, "ids", rows),
                                  meta["attributes"], explain, only_positive)
        images = read_rows(h5, "images", table["row"].to_numpy())
        labels = read_rows(h5, "labels", table["row"].to_numpy()) if explainer.needs_labels else None
    targets = torch.from_numpy(table["target"].to_numpy())
    maps, scores, diagnostics = _explain_batches(
        images, table["id"].to_numpy(), lambda a, b: ClassTask(model, targets[a:b].to(dev), probability=True),
        explainer, seed, batch_size, dev, f"{method} shard {shard}", progress, labels=labels)
    n = len(table)
    write_shard(out_h5, maps, {
        "row": table["row"].to_numpy(np.int64), "ids": table["id"].to_numpy(np.int64),
        "target": table["target"].to_numpy(np.int64), "attribute": table["attribute"].to_numpy(),
        "score": scores, **diagnostics}, {"method": method, "params": json.dumps(explainer.params, sort_keys=True),
                           "model": model_name, "seed": seed, "facexai_version": __version__})
    log.info("%s on %s shard %d: %d maps", method, model_name, shard, n)
    return n


def pair_shard(pairs: pd.DataFrame, shard: int, n_shards: int, kinds: list[str], max_pairs: int | None) -> pd.DataFrame:
    """The pairs of one shard: the configured kinds, at most `max_pairs` of each (per region for
    region-swap pairs, their controls and triplets, so every swapped region is explained), in file
    order. Controls: those of the explained swap pairs. Triplets: only those the embedder kept
    (column `kept` of its scores.tsv: the swap matters to it)."""
    unknown = set(kinds) - set(PAIR_KINDS)
    if unknown:
        raise ValueError(f"verification.explain.kinds: unknown kind(s) {sorted(unknown)}; known: {PAIR_KINDS}")
    parts = []
    for kind in kinds:
        of_kind = pairs[pairs["kind"] == kind]
        if kind == "swap_control" and "swap" in kinds:
            # the controls of the explained swap pairs (same A, same region), not the first ones
            swaps = pairs[pairs["kind"] == "swap"]
            explained = {(a, r) for _, g in swaps.groupby("region", sort=False)
                         for a, r in zip(g["row_a"].iloc[:max_pairs or None], g["region"].iloc[:max_pairs or None])}
            of_kind = of_kind[[key in explained for key in zip(of_kind["row_a"], of_kind["region"])]]
        if kind == "triplet":
            if "kept" not in pairs:
                raise ValueError("triplets are explained after the embedder's evaluation: its scores.tsv (column "
                                 "`kept`) is needed")
            of_kind = of_kind[of_kind["kept"] == "yes"]
        if kind in ("swap", "swap_control", "triplet"):
            parts.extend(g.iloc[:max_pairs or None] for _, g in of_kind.groupby("region", sort=False))
        else:
            parts.append(of_kind.iloc[:max_pairs or None])
    chosen = pd.concat(parts, ignore_index=True) if parts else pairs.iloc[:0]
    return chosen.iloc[np.array_split(np.arange(len(chosen)), n_shards)[shard]].reset_index(drop=True)


def by_image(pairs: pd.DataFrame) -> np.ndarray:
    """An order of the pairs' rows that puts the rows explaining one image (`id_a`) next to each
    other, at the place of the image's first row (a swap pair and its control explain the same A):
    a method that masks the image (RISE, CorrRISE) then scores one set of masked copies for both
    rows of a batch. `explain_pair_shard` explains in this order and writes the shard in the pairs'
    own order."""
    first = {}
    for i, image in enumerate(pairs["id_a"].to_numpy()):
        first.setdefault(int(image), i)
    key = np.array([first[int(image)] for image in pairs["id_a"].to_numpy()], np.int64)
    return np.argsort(key, kind="stable")


@dataclasses.dataclass
class PairSubjects:
    """The explained verification pairs of one shard, loaded: their table, the explained images (a),
    and `task(a, b)`, the pair task of rows a..b (the embedder's score with the partner fixed, the
    preference for a triplet), with the oracle's photos attached."""

    pairs: pd.DataFrame
    extra: pd.DataFrame
    images: np.ndarray
    task: Callable
    model: torch.nn.Module
    meta: dict
    name: str
    order: np.ndarray | None = None  # with `grouped`: row k is row order[k] of the shard's own order


def load_pair_subjects(dataset_h5, pairs_tsv, embedder_dir, *, shard: int, n_shards: int, kinds: list[str],
                       max_pairs: int | None, dev, pairs_h5=None, embedder_name: str | None = None,
                       partner_fill: bool = True, grouped: bool = False) -> PairSubjects:
    """Load one shard of pairs and the embedder (see `explain_pair_shard`); `partner_fill` keeps the
    partner photos as model input for a method that fills masked pixels from them; `grouped` puts
    the rows in `by_image` order."""
    from ..data.pairs import GROUND_TRUTH_KINDS, read_pair_images, triplet_columns
    from ..models.verification import embed, load_embedder
    from .base import PairTask

    model, meta = load_embedder(embedder_dir, dev)
    similarity = meta["similarity"]
    name = embedder_name or meta.get("name") or "embedder"
    pairs = pair_shard(pd.read_csv(pairs_tsv, sep="\t", keep_default_na=False), shard, n_shards, kinds, max_pairs)
    order = by_image(pairs) if grouped else None
    if grouped:
        pairs = pairs.iloc[order].reset_index(drop=True)
    extra = triplet_columns(pairs)
    has_twin = (pairs["kind"] == "triplet").to_numpy()
    images = read_pair_images(dataset_h5, pairs_h5, pairs["row_a"].to_numpy())
    partners = read_pair_images(dataset_h5, pairs_h5, pairs["row_b"].to_numpy())
    n = len(pairs)
    partner_emb = torch.from_numpy(embed(model, partners, dev, similarity=similarity, name=name,
                                         ids=pairs["id_b"].to_numpy())) if n else torch.zeros(0, 1)
    twin_emb, twins = None, partners
    if has_twin.any():
        twins = read_pair_images(dataset_h5, pairs_h5, extra["row_c"].to_numpy())
        twin_emb = torch.from_numpy(embed(model, twins, dev, similarity=similarity, name=name,
                                          ids=extra["id_c"].to_numpy()))
    oracle = oracle_pair(images, partners, twins, has_twin, dev)
    partner_ids = pairs["id_b"].to_numpy(np.int64)
    # for methods that fill masked pixels from the partner (genuine / impostor pairs only)
    partner_x = None if not partner_fill or np.isin(pairs["kind"], GROUND_TRUTH_KINDS).any() else \
        to_model_input(partners, dev)

    def task(a, b):
        out = PairTask(model, partner_emb[a:b].to(dev), partner_ids=partner_ids[a:b],
                       partner_images=None if partner_x is None else partner_x[a:b], similarity=similarity,
                       twin_embeddings=None if twin_emb is None else twin_emb[a:b].to(dev),
                       has_twin=has_twin[a:b])
        out.oracle_images = (oracle[0][a:b], oracle[1][a:b])
        return out

    return PairSubjects(pairs, extra, images, task, model, meta, name, order)


def explain_pair_shard(dataset_h5, pairs_tsv, embedder_dir, out_h5, *, method: str, params: dict, shard: int,
                       n_shards: int, kinds: list[str], max_pairs: int | None = None, batch_size: int = 32,
                       seed: int = 0, device: str = "auto", threads: int = 1, progress: bool = True,
                       pairs_h5=None, embedder_name: str | None = None) -> int:
    """Explain the score of verification pairs (the embedder's similarity): the map is over image
    a, partner b fixed. `pairs_tsv` is the embedder's scores.tsv (pairs.tsv with its scores) when
    triplets are explained: their score is the preference s(P, M) - s(P, M').

    Attribution file: as for attributes, with `row`/`ids` of image a, `partner_row`, `partner_id`,
    `kind` and `region` (bytes) per pair, `twin_row` / `twin_id` / `game_row` (a triplet's twin M'
    and P'; the partner's own for other kinds) and `score` = the pair's similarity (a triplet's
    preference). A method that cannot run on this embedder (the Grad-CAM family on a TorchScript
    file) writes NaN maps and the reason in the file's `not_applicable` attribute, which the
    metrics report per row.
    """
    from ..data.pairs import refuse_partner_fill
    from ..models.embedders import cam_unavailable

    torch.set_num_threads(max(1, threads))
    seed_everything(seed)
    dev = resolve_device(device)
    explainer = get_method(method, params)
    refuse_partner_fill(method, explainer.params, kinds)
    # explained in by_image order (rows of one image side by side), written in the shard's own order
    subjects = load_pair_subjects(dataset_h5, pairs_tsv, embedder_dir, shard=shard, n_shards=n_shards, kinds=kinds,
                                  max_pairs=max_pairs, dev=dev, pairs_h5=pairs_h5, embedder_name=embedder_name,
                                  grouped=True)
    pairs, extra, images, task, name = (subjects.pairs, subjects.extra, subjects.images, subjects.task,
                                        subjects.name)
    similarity = subjects.meta["similarity"]
    labels = explained_labels(dataset_h5, pairs["row_a"].to_numpy()) if explainer.needs_labels else None
    n = len(pairs)
    reason = cam_unavailable(subjects.model) if explainer.needs_layer_hooks else None
    partner_ids = pairs["id_b"].to_numpy(np.int64)
    if reason is None:
        maps, scores, diagnostics = _explain_batches(images, pairs["id_a"].to_numpy(), task, explainer, seed,
                                                     batch_size, dev, f"{method} pairs shard {shard}", progress,
                                                     labels=labels)
    else:
        log.warning("%s on embedder %s: not applicable (%s)", method, name, reason)
        maps = np.full((n,) + images.shape[1:3], np.nan, np.float16)
        with torch.no_grad():
            scores = task(0, n).score(to_model_input(images, dev), list(range(n))).cpu().numpy() if n else \
                np.zeros(0, np.float32)
        diagnostics = {}
    back = np.argsort(subjects.order)  # the shard's own order
    pairs, extra = pairs.iloc[back].reset_index(drop=True), extra.iloc[back].reset_index(drop=True)
    maps, scores = maps[back], np.asarray(scores)[back]
    diagnostics = {key: np.asarray(values)[back] for key, values in diagnostics.items()}
    partner_ids = pairs["id_b"].to_numpy(np.int64)
    write_shard(out_h5, maps, {
        "row": pairs["row_a"].to_numpy(np.int64), "ids": pairs["id_a"].to_numpy(np.int64),
        "partner_row": pairs["row_b"].to_numpy(np.int64), "partner_id": partner_ids,
        "kind": pairs["kind"].to_numpy(), "region": pairs["region"].to_numpy(),
        "twin_row": extra["row_c"].to_numpy(np.int64), "twin_id": extra["id_c"].to_numpy(np.int64),
        "game_row": extra["row_d"].to_numpy(np.int64),
        "score": scores, **diagnostics}, {"method": method, "params": json.dumps(explainer.params, sort_keys=True),
                           "model": name, "target": f"pair {similarity} similarity", "seed": seed,
                           "similarity": similarity, "not_applicable": reason or "",
                           "facexai_version": __version__})
    log.info("%s on verification pairs (embedder %s) shard %d: %d maps", method, name, shard, n)
    return n


def oracle_pair(images: np.ndarray, partners: np.ndarray, twins: np.ndarray, has_twin: np.ndarray,
                dev) -> tuple[torch.Tensor, torch.Tensor]:
    """The two photos whose difference is each row's answer, as model input: (the image, its
    partner) for a pair, (the mate M, the twin M') for a triplet."""
    sel = np.asarray(has_twin, bool)[:, None, None, None]
    return (to_model_input(np.where(sel, partners, images), dev), to_model_input(np.where(sel, twins, partners), dev))


def explained_labels(dataset_h5, rows) -> np.ndarray:
    """The label maps of explained dataset rows (for a method that reads them: `parts`)."""
    rows = np.asarray(rows, np.int64)
    if (rows < 0).any():
        raise ValueError(f"{dataset_h5}: an explained image without a dataset row has no label map")
    with h5py.File(dataset_h5, "r") as h5:
        return read_rows(h5, "labels", rows)


def _explain_batches(images: np.ndarray, ids: np.ndarray, make_task, explainer, seed: int, batch_size: int, dev,
                     desc: str, progress: bool, labels: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray, dict]:
    """Maps (float16), explained scores and the method's per-row diagnostics for all rows, batch by
    batch; make_task(a, b) gives the task of rows a..b; `labels` the rows' label maps for a method
    that reads them."""
    from tqdm import tqdm

    n, size = len(images), images.shape[1]
    maps = np.zeros((n, size, size), np.float16)
    scores = np.zeros(n, np.float32)
    diagnostics: dict[str, list] = {}
    for start in tqdm(range(0, n, batch_size), disable=not progress, desc=desc, mininterval=2):
        stop = min(start + batch_size, n)
        x = to_model_input(images[start:stop], dev)
        task = make_task(start, stop)
        if labels is not None:
            task.part_labels = labels[start:stop]
        with torch.no_grad():
            scores[start:stop] = task.score(x, list(range(stop - start))).cpu().numpy()
        if not np.isfinite(scores[start:stop]).all():
            bad = ids[start:stop][~np.isfinite(scores[start:stop])]
            raise ValueError(f"{desc}: the model's score is not finite (NaN or inf) for sample ids "
                             f"{[int(i) for i in bad[:10]]}: the model fails on these images")
        batch_maps = explainer(task, x, ids[start:stop], seed)
        for key, values in explainer.diagnostics.items():
            diagnostics.setdefault(key, []).append(np.asarray(values))
        if not np.isfinite(batch_maps).all():
            log.warning("%s produced non-finite values in rows %d..%d", explainer.name, start, stop)
        stored = batch_maps.astype(np.float16)
        if np.isinf(stored).sum() > np.isinf(batch_maps).sum():
            raise OverflowError(f"{explainer.name}: attribution values exceed float16's range (max |a| = "
                                f"{np.nanmax(np.abs(batch_maps)):.3g}); rescale in the method")
        maps[start:stop] = stored
    return maps, scores, {key: np.concatenate(parts) for key, parts in diagnostics.items()}
