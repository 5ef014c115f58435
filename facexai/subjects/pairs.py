"""Verification pairs and triplets: an embedder's score of an image against its partner.

Which pairs a shard holds (`pair_shard`): the configured kinds, at most `max_pairs` of each, from
pairs.tsv with the embedder's scores (which triplets it kept). The map is over image a, the
partner b fixed (`tasks.PairTask`); a triplet's score is the preference s(P, M) - s(P, M'). The
expected region: the region a pair was made by (data/pairs.expected_regions); genuine and impostor
pairs have none. The outcome: the kind's truth (data/pairs.PAIR_SAME) against acceptance at the
embedder's EER threshold (a triplet's: the probe prefers its mate, preference >= 0).

The pair facts themselves (kinds, their truth, the row encoding of swapped copies, the pair store)
are data/pairs.py's.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data.pairs import (GROUND_TRUTH_KINDS, PAIR_KINDS, PAIR_SAME, REGION_KINDS, SWAP_KINDS, expected_regions,
                          read_pair_images, refuse_partner_fill, swap_parts, triplet_columns)
from ..data.samples import to_model_input
from ..tasks import PairTask
from .base import Explained, Scored, SubjectKind, outcomes

log = logging.getLogger(__name__)

# the columns set to NaN in a metric table whose method could not run on the embedder
DISSIMILARITY_COLUMNS = ("rp_dissimilarity", "lift_dissimilarity")


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
    rows of a batch. The pairs are explained in this order and stored in their own order."""
    first = {}
    for i, image in enumerate(pairs["id_a"].to_numpy()):
        first.setdefault(int(image), i)
    key = np.array([first[int(image)] for image in pairs["id_a"].to_numpy()], np.int64)
    return np.argsort(key, kind="stable")


def oracle_pair(images: np.ndarray, partners: np.ndarray, twins: np.ndarray, has_twin: np.ndarray,
                dev) -> tuple[torch.Tensor, torch.Tensor]:
    """The two photos whose difference is each row's answer, as model input: (the image, its
    partner) for a pair, (the mate M, the twin M') for a triplet."""
    sel = np.asarray(has_twin, bool)[:, None, None, None]
    return (to_model_input(np.where(sel, partners, images), dev), to_model_input(np.where(sel, twins, partners), dev))


class PairRows:
    """Pairs (and triplets) with their photos loaded, and the one place their `PairTask` is built:
    the embedder's score of image a with the partner's embedding fixed (a triplet's: the preference
    over the twin), the partner photos for a method that fills from them (none when a kind with a
    ground truth is among the rows: the fill would carry the answer), and the oracle's two photos."""

    def __init__(self, dataset_h5, pairs_h5, *, rows, partner_rows, twin_rows, partner_ids, twin_ids, kinds,
                 model, similarity: str, name: str, dev, partner_fill: bool = True):
        self.model, self.similarity, self.name, self.dev = model, similarity, name, dev
        self.has_twin = np.array([k == "triplet" for k in kinds], bool)
        self.partner_ids = np.asarray(partner_ids, np.int64)
        self.twin_ids = np.asarray(twin_ids, np.int64)
        self.images = read_pair_images(dataset_h5, pairs_h5, rows)
        self.partners = read_pair_images(dataset_h5, pairs_h5, partner_rows)
        self.twins = read_pair_images(dataset_h5, pairs_h5, twin_rows) if self.has_twin.any() else None
        self.oracle = oracle_pair(self.images, self.partners, self.partners if self.twins is None else self.twins,
                                  self.has_twin, dev)
        self.partner_x = None if not partner_fill or np.isin(kinds, GROUND_TRUTH_KINDS).any() else \
            to_model_input(self.partners, dev)
        self._all = None

    def __len__(self) -> int:
        return len(self.images)

    def _embed(self, network, sel, check: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        from ..models.verification import embed

        def embedded(pixels, who):
            return torch.from_numpy(embed(network, pixels[sel], self.dev, similarity=self.similarity, name=self.name,
                                          ids=who[sel], check=check))

        return embedded(self.partners, self.partner_ids), \
            None if self.twins is None else embedded(self.twins, self.twin_ids)

    def task(self, network, sel) -> PairTask:
        """The task of rows `sel` for `network`, their partners (and twins) embedded by it (an
        embedding of the model itself is checked to be finite; a randomised copy's may overflow)."""
        partner_emb, twin_emb = self._embed(network, sel, check=network is self.model)
        return self._task(network, sel, partner_emb, twin_emb)

    def span(self, a: int, b: int) -> PairTask:
        """The model's task of rows a..b, every row's partner embedded once (in one pass)."""
        if self._all is None:
            self._all = self._embed(self.model, slice(None), check=True)
        partner_emb, twin_emb = self._all
        return self._task(self.model, slice(a, b), partner_emb[a:b], None if twin_emb is None else twin_emb[a:b])

    def _task(self, network, sel, partner_emb, twin_emb) -> PairTask:
        out = PairTask(network, partner_emb.to(self.dev), partner_ids=self.partner_ids[sel],
                       partner_images=None if self.partner_x is None else self.partner_x[sel],
                       similarity=self.similarity, twin_embeddings=None if twin_emb is None else twin_emb.to(self.dev),
                       has_twin=self.has_twin[sel])
        out.oracle_images = (self.oracle[0][sel], self.oracle[1][sel])
        return out


def load_pairs(inputs: dict, *, shard: int, n_shards: int, kinds: list[str], max_pairs: int | None, dev,
               name: str | None = None, partner_fill: bool = True, grouped: bool = False
               ) -> tuple[pd.DataFrame, pd.DataFrame, PairRows, dict, np.ndarray | None]:
    """One shard of pairs and the embedder: (pairs, their triplet columns, the loaded rows, the
    embedder's meta, the explaining order or None). `grouped` puts the rows in `by_image` order;
    `partner_fill` keeps the partner photos as model input for a method that fills from them."""
    from ..models.verification import load_embedder

    model, meta = load_embedder(Path(inputs["meta"]).parent, dev)
    pairs = pair_shard(pd.read_csv(inputs["pairs"], sep="\t", keep_default_na=False), shard, n_shards, kinds,
                       max_pairs)
    order = by_image(pairs) if grouped else None
    if grouped:
        pairs = pairs.iloc[order].reset_index(drop=True)
    extra = triplet_columns(pairs)
    loaded = PairRows(inputs["data"], inputs.get("store"), rows=pairs["row_a"].to_numpy(),
                      partner_rows=pairs["row_b"].to_numpy(), twin_rows=extra["row_c"].to_numpy(),
                      partner_ids=pairs["id_b"].to_numpy(), twin_ids=extra["id_c"].to_numpy(),
                      kinds=list(pairs["kind"]), model=model, similarity=meta["similarity"],
                      name=name or meta.get("name") or "embedder", dev=dev, partner_fill=partner_fill)
    return pairs, extra, loaded, meta, order


def part_and_seam(maps, masks, kinds, partner_rows, pairs_h5, settings) -> dict[str, np.ndarray]:
    """For region-swap pairs and their controls: the lift of the map (the configured mass) in the donor's part and in
    the rest of the pasted area (the border the blend made), apart: a map on the seam rather than
    on the part shows in `lift_seam`. NaN for other kinds (and for a pair store without parts)."""
    from ..metrics.topq import mask_metrics

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


def game_columns(task, x_all, maps, ids, regions_model, has_twin, game_rows, dataset_h5, pairs_h5, settings,
                 dev) -> dict[str, np.ndarray]:
    """The inpainting game's columns: its values on the triplet rows, NaN and `not_a_triplet`
    elsewhere."""
    from ..metrics.game import inpainting_game

    n = len(maps)
    out = {"game_flip_fraction": np.full(n, np.nan), "game_region_share": np.full(n, np.nan),
           "game_region_lift": np.full(n, np.nan),
           "game_degenerate": np.full(n, "not_a_triplet", dtype=object)}
    sel = np.flatnonzero(has_twin)
    if sel.size:
        swapped = to_model_input(read_pair_images(dataset_h5, pairs_h5, game_rows[sel]), dev)
        game = inpainting_game(task, x_all[sel], swapped, maps[sel], regions_model[sel],
                               steps=int((settings.get("game") or {}).get("steps", 32)), seeds=ids[sel],
                               batch_size=int(settings["batch_size"]), rows=sel)
        for key, values in game.items():
            out[key][sel] = values
    return out


class VerificationPairs(SubjectKind):
    name = "pairs"
    # a probe and its mate may form a genuine pair and a triplet per region (the kind follows)
    key_columns = ("id", "partner_id")
    optional_key_columns = ("region",)

    def check(self, method, params, selection):
        refuse_partner_fill(method, params, selection["kinds"])

    def explained(self, inputs, *, name, selection, shard, n_shards, dev):
        from ..models.embedders import cam_unavailable

        # explained in by_image order (rows of one image side by side), stored in the shard's own order
        pairs, extra, loaded, meta, order = load_pairs(
            inputs, shard=shard, n_shards=n_shards, kinds=selection["kinds"], max_pairs=selection.get("max_pairs"),
            dev=dev, name=name, grouped=True)
        similarity = meta["similarity"]
        return Explained(
            images=loaded.images, seeds=pairs["id_a"].to_numpy(), label_rows=pairs["row_a"].to_numpy(),
            task=loaded.span,
            columns={"row": pairs["row_a"].to_numpy(np.int64), "ids": pairs["id_a"].to_numpy(np.int64),
                     "partner_row": pairs["row_b"].to_numpy(np.int64), "partner_id": pairs["id_b"].to_numpy(np.int64),
                     "kind": pairs["kind"].to_numpy(), "region": pairs["region"].to_numpy(),
                     "twin_row": extra["row_c"].to_numpy(np.int64), "twin_id": extra["id_c"].to_numpy(np.int64),
                     "game_row": extra["row_d"].to_numpy(np.int64)},
            attrs={"model": loaded.name, "target": f"pair {similarity} similarity", "similarity": similarity},
            desc=f"pairs shard {shard}", order=order,
            unavailable=lambda explainer: cam_unavailable(loaded.model) if explainer.needs_layer_hooks else None)

    def scored(self, shard, inputs, *, regions, settings, attribute_regions=None):
        from ..metrics import registry

        rows, partner_rows = shard["row"], shard["partner_row"]
        partner_ids, score = shard["partner_id"], shard["score"]
        kinds, region_names = list(shard["kind"]), list(shard["region"])
        has_twin = np.array([k == "triplet" for k in kinds], bool)
        if has_twin.any() and "twin_row" not in shard.columns:
            raise ValueError(f"{shard.path}: triplet rows without twin_row (a file from an older version: delete it "
                             "to have it made again)")
        unknown = sorted(set(kinds) - set(PAIR_SAME))
        if unknown:
            raise ValueError(f"{shard.path}: unknown pair kind(s) {unknown}")
        threshold = float(json.loads(Path(inputs["eer"]).read_text())["threshold"])
        has_region = np.array([k in REGION_KINDS for k in kinds], bool)
        pairs_h5 = inputs.get("store")
        masks = expected_regions(inputs["data"], pairs_h5, rows, partner_rows, kinds, region_names, regions,
                                 probe_swap_rows=shard["game_row"] if has_twin.any() else None)
        # outcome of the verification decision at the EER threshold (accept when similarity >= threshold);
        # a triplet's decision: the probe prefers its mate over the twin (preference >= 0)
        thresholds = np.where(has_twin, 0.0, threshold)
        same = np.array([PAIR_SAME[k] for k in kinds])

        def mask_extras(maps, masks, threads):
            from ..metrics.topq import mask_metrics

            dis = mask_metrics(maps, masks, q=float(settings["q"]), mode="negative", workers=threads)
            out = {"rp_dissimilarity": np.where(has_region, dis["rp"], np.nan),
                   "lift_dissimilarity": np.where(has_region, dis["lift"], np.nan),
                   "degenerate_dissimilarity": np.where(has_region, dis["degenerate"], "not_a_region_pair")}
            return {**out, **part_and_seam(maps, masks, kinds, partner_rows, pairs_h5, settings)}

        def load(dev):
            from ..models.verification import load_embedder

            model, meta = load_embedder(Path(inputs["meta"]).parent, dev)
            loaded = PairRows(inputs["data"], pairs_h5, rows=rows, partner_rows=partner_rows,
                              twin_rows=shard["twin_row"] if has_twin.any() else partner_rows,
                              partner_ids=partner_ids, twin_ids=shard["twin_id"] if has_twin.any() else partner_ids,
                              kinds=kinds, model=model, similarity=meta["similarity"], name=shard.model, dev=dev)
            return model, loaded.images, loaded.task

        def finish(cols, task, x_all, maps, regions_model, dev):
            # the relative drop (Y - O) / Y divides by the score: a triplet's preference is a difference that
            # may sit just above its margin, so the ratio would be float noise amplified; not reported there
            for key in ("drop_subject", "increase_subject", "drop_background", "increase_background"):
                cols[key] = np.where(has_region & ~has_twin, cols[key], np.nan)
            cols["occlusion_degenerate"] = np.where(has_twin, "relative_drop_of_a_preference",
                                                    cols["occlusion_degenerate"]).astype(object)
            cols.update(game_columns(task, x_all, maps, shard["ids"], regions_model, has_twin,
                                     shard["game_row"] if has_twin.any() else None, inputs["data"], pairs_h5,
                                     settings, dev))

        return Scored(
            columns={"id": shard["ids"], "partner_id": partner_ids, "kind": kinds, "region": region_names,
                     "score": score, "outcome": outcomes(same, np.asarray(score) >= thresholds)},
            masks=masks, load=load, with_region=has_region,
            outside={"degenerate": "not_a_region_pair", "auc_degenerate": ""}, threshold=thresholds, same=same,
            not_applicable=str(shard.attrs.get("not_applicable", "") or ""),
            mask_extras=mask_extras, trailing={"not_applicable": ""}, finish=finish,
            not_applicable_columns=(*registry.summarised(pairs=True), *DISSIMILARITY_COLUMNS, "game_degenerate"),
            summary=lambda table: (f"verification/{shard.method} on {shard.model}: {len(table)} pairs "
                                   f"({int(has_region.sum())} with a region)"))
