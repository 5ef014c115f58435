"""Face verification: an embedder trained on the training identities, pair lists, EER.

Embedder: a backbone from `backbones` whose head outputs a `dim`-d embedding (the penultimate layer
of the identity classifier used in training); trained with a cosine-softmax margin loss (CosFace,
Wang et al. 2018): logits = s * (cos(theta_j) - m * [j = y]) over the training identities.
Verification score of a pair = cosine similarity of the two embeddings.

Pairs (test split only, identities unseen in training): genuine (same identity, two photos),
impostor (two identities), region pairs where the dataset provides them (the synthetic set's
synthetic-pairs.txt: one photo and its copy with one region changed), and region-swap pairs on any
data with part masks (`data.pairs`: a photo and its copy with another face's region pasted in).

Embedders of every kind (trained here, dlib, a user's TorchScript or state dict) are loaded by
`embedders.load_embedder`; a pair's score is their similarity (cosine, or minus the Euclidean
distance for dlib).

EER: the error rate where the false-accept rate FAR(t) = P(impostor >= t) equals the false-reject
rate FRR(t) = P(genuine < t); reported with its threshold t.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..atomic import atomic_path
from ..layout import CURVES, META, WEIGHTS
from ..data.pairs import PAIR_COLUMNS
from ..data.samples import read_rows, to_model_input
from ..data.splits import read_split
from ..device import resolve_device
from .backbones import build_model, channels_last, channels_last_trains
from .embedders import embeddings, load_embedder, pair_score, trained_input
from .train import seed_everything

log = logging.getLogger(__name__)


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """(EER, threshold). Scans every observed score as a threshold (accept when score >= t) and
    returns the mean of FAR and FRR where they are closest."""
    genuine, impostor = np.asarray(genuine, float), np.asarray(impostor, float)
    if genuine.size == 0 or impostor.size == 0:
        raise ValueError("equal_error_rate needs genuine and impostor scores")
    if not (np.isfinite(genuine).all() and np.isfinite(impostor).all()):
        raise ValueError(f"equal_error_rate: {int((~np.isfinite(genuine)).sum())} genuine and "
                         f"{int((~np.isfinite(impostor)).sum())} impostor scores are not finite")
    thresholds = np.unique(np.concatenate([genuine, impostor, [np.inf]]))
    g, i = np.sort(genuine), np.sort(impostor)
    frr = np.searchsorted(g, thresholds, side="left") / g.size          # genuine below t
    far = 1 - np.searchsorted(i, thresholds, side="left") / i.size      # impostor at or above t
    k = int(np.argmin(np.abs(far - frr)))
    return float((far[k] + frr[k]) / 2), float(thresholds[k])


def build_pairs(split_tsv, out_tsv, *, n_genuine: int, n_impostor: int, seed: int,
                region_pairs_file: str | os.PathLike | None = None, dataset_h5=None, out_h5=None,
                out_json=None, swap: dict | None = None, regions: dict | None = None,
                triplets: dict | None = None) -> pd.DataFrame:
    """Sample genuine and impostor pairs among test samples; add region pairs when given,
    region-swap pairs (`swap`: regions, pairs_per_region, blend, dilation, feather, seed) and
    triplets (`triplets`: regions, per_region, blend, dilation, feather, seed; `data.pairs`) into the pair store
    `out_h5`. `out_json`: counts per kind, and per swap / triplet region made / skipped."""
    from ..data.pairs import build_swap_pairs, build_triplets, write_pair_store

    split = read_split(split_tsv)
    test = split[split["split"] == "test"].reset_index(drop=True)
    if (test["identity"] < 0).all():
        raise ValueError(f"{split_tsv}: no identities: verification pairs need an identity file")
    rng = np.random.default_rng(seed)
    by_identity = {k: g.index.to_numpy() for k, g in test.groupby("identity") if len(g) >= 2}
    multi = sorted(by_identity)
    records = set()
    if not multi:
        raise ValueError("no test identity has two photos: cannot build genuine pairs")
    tries = 0
    while len({r for r in records if r[0] == "genuine"}) < n_genuine and tries < 50 * n_genuine:
        tries += 1
        members = by_identity[multi[rng.integers(len(multi))]]
        a, b = sorted(rng.choice(members, 2, replace=False))
        records.add(("genuine", int(a), int(b)))
    tries = 0
    while len({r for r in records if r[0] == "impostor"}) < n_impostor and tries < 50 * n_impostor:
        tries += 1
        a, b = sorted(rng.choice(len(test), 2, replace=False))
        if test.at[a, "identity"] != test.at[b, "identity"]:
            records.add(("impostor", int(a), int(b)))
    rows = [(kind, test.at[a, "row"], test.at[b, "row"], test.at[a, "id"], test.at[b, "id"], "", -1, "", "", "")
            for kind, a, b in sorted(records)]
    if region_pairs_file is not None and Path(region_pairs_file).is_file():
        row_of = dict(zip(split["id"], split["row"]))
        for line in Path(region_pairs_file).read_text().splitlines()[1:]:
            id_a, id_b, region, _ = line.split()
            if int(id_a) in row_of and int(id_b) in row_of:
                rows.append(("region", row_of[int(id_a)], row_of[int(id_b)], int(id_a), int(id_b), region, -1,
                             "", "", ""))
    swap, triplets = swap or {}, triplets or {}
    for what, settings in (("region-swap pairs", swap), ("triplets", triplets)):
        if settings.get("regions") and dataset_h5 is None:
            raise ValueError(f"{what} need the fused dataset (dataset_h5)")

    def paste(settings: dict) -> dict:  # the settings both kinds paste a donor's part with
        return {"regions": regions or {}, "names": list(settings.get("regions") or []),
                "dilation": int(settings.get("dilation", 0)), "feather": int(settings.get("feather", 0)),
                "seed": int(settings.get("seed", seed)), "blend": settings.get("blend", "poisson")}

    swapped, images, masks, parts, counts = build_swap_pairs(
        test, dataset_h5, per_region=int(swap.get("pairs_per_region", 0)),
        controls=bool(swap.get("controls", False)), **paste(swap))
    rows.extend(record + ("", "", "") for record in swapped)
    made, extra_images, extra_masks, extra_parts, triplet_counts = build_triplets(
        test, dataset_h5, per_region=int(triplets.get("per_region", 0)), start=len(images), **paste(triplets))
    rows.extend(made)
    if extra_images:  # after the swapped copies (an empty store array has no image size yet)
        images = np.concatenate([images, np.stack(extra_images)]) if len(images) else np.stack(extra_images)
        masks = np.concatenate([masks, np.stack(extra_masks)]) if len(masks) else np.stack(extra_masks)
        parts = np.concatenate([parts, np.stack(extra_parts)]) if len(parts) else np.stack(extra_parts)
    table = pd.DataFrame(rows, columns=list(PAIR_COLUMNS))
    if out_h5 is not None:
        write_pair_store(out_h5, images, masks, counts, triplet_counts, parts)
    summary = {"pairs": {k: int(v) for k, v in table["kind"].value_counts().sort_index().items()},
               "swap": counts, "triplet": triplet_counts}
    if out_json is not None:
        with atomic_path(out_json) as tmp:
            tmp.write_text(json.dumps(summary, indent=2))
    with atomic_path(out_tsv) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    log.info("pairs: %s", summary)
    return table


class CosineMarginHead(nn.Module):
    """CosFace logits s * (cos - m [j = y]) over normalised weights and embeddings."""

    def __init__(self, dim: int, n_classes: int, scale: float, margin: float):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_classes, dim) * 0.01)
        self.scale, self.margin = scale, margin

    def forward(self, embedding, labels):
        cos = F.linear(F.normalize(embedding), F.normalize(self.weight))
        return self.scale * (cos - self.margin * F.one_hot(labels, cos.shape[1]))


def train_embedder(dataset_h5, split_tsv, out_dir, *, arch: str, width: int, dim: int, epochs: int,
                   batch_size: int, lr: float, margin: float, scale: float, seed: int,
                   device: str = "auto", threads: int = 1, progress: bool = True, name: str = "trained") -> dict:
    from tqdm import tqdm

    torch.set_num_threads(max(1, threads))
    seed_everything(seed)
    dev = resolve_device(device)
    split = read_split(split_tsv)
    train = split[split["split"] == "train"]
    if (train["identity"] < 0).any():
        raise ValueError(f"{split_tsv}: training an embedder needs identities (an identity file)")
    rows = train["row"].to_numpy()
    labels = np.unique(train["identity"].to_numpy(), return_inverse=True)[1]
    with h5py.File(dataset_h5, "r") as h5:
        images = read_rows(h5, "images", rows)
    model = build_model(arch, dim, width=width).to(dev)
    if channels_last_trains(dev):
        model = channels_last(model)
    head = CosineMarginHead(dim, int(labels.max()) + 1, scale, margin).to(dev)
    params = list(model.parameters()) + list(head.parameters())
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    steps = epochs * max(1, -(-len(rows) // batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    curves = []
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(rows), generator=generator).numpy()
        total, correct = 0.0, 0
        for start in tqdm(range(0, len(order), batch_size), disable=not progress,
                          desc=f"embedder epoch {epoch + 1}/{epochs}", mininterval=2):
            idx = order[start:start + batch_size]
            y = torch.from_numpy(labels[idx]).to(dev)
            logits = head(model(to_model_input(images[idx], dev)), y)
            loss = F.cross_entropy(logits, y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y).sum())
        curves.append({"epoch": epoch + 1, "train_loss": total / len(rows), "train_accuracy": correct / len(rows)})
        log.info("embedder epoch %d: loss %.4f, identity accuracy %.3f", epoch + 1, curves[-1]["train_loss"],
                 curves[-1]["train_accuracy"])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"kind": "trained", "name": name, "arch": arch, "width": width, "dim": dim,
            "image_size": int(images.shape[1]), **trained_input(int(images.shape[1])), "similarity": "cosine",
            "n_train_identities": int(labels.max()) + 1, "seed": seed}
    with atomic_path(out_dir / CURVES) as tmp:
        pd.DataFrame(curves).to_csv(tmp, sep="\t", index=False)
    with atomic_path(out_dir / META) as tmp:
        tmp.write_text(json.dumps(meta, indent=2))
    with atomic_path(out_dir / WEIGHTS) as tmp:
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, tmp)
    return meta


class NonFiniteEmbedding(ValueError):
    """An embedder gave NaN or infinite values: the job stops naming the embedder and the samples."""


def embed(model: nn.Module, images: np.ndarray, device, batch_size: int = 256,
          similarity: str = "cosine", name: str = "embedder", ids=None, check: bool = True) -> np.ndarray:
    """Embeddings of uint8 images in the space the pair score compares (`embedders.embeddings`).

    Every embedding is checked: a non-finite one (an embedder that fails on these images although
    it passed its import check on grey images) raises NonFiniteEmbedding naming the embedder and
    the sample ids (`ids`, one per image; positions when not given). `check=False` for a network
    that may legitimately overflow (a sanity check's randomised copy)."""
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = to_model_input(images[start:start + batch_size], device)
            out.append(embeddings(model, x, similarity).cpu().numpy())
    emb = np.concatenate(out) if out else np.zeros((0, 0), np.float32)
    if check:
        check_finite_embeddings(emb, name, ids)
    return emb


def check_finite_embeddings(emb: np.ndarray, name: str, ids=None) -> None:
    bad = np.flatnonzero(~np.isfinite(emb).all(axis=1)) if emb.size else np.zeros(0, int)
    if bad.size:
        labels = [int(ids[k]) for k in bad] if ids is not None else [int(k) for k in bad]
        raise NonFiniteEmbedding(
            f"embedder {name}: non-finite embedding (NaN or inf) for {bad.size} of {len(emb)} images, sample ids "
            f"{labels[:10]}{' ...' if bad.size > 10 else ''}; the network fails on these images (check "
            f"verification.embedders.{name}: its input_size, crop, mean and std)")


def evaluate_pairs(model_dir, dataset_h5, pairs_tsv, out_scores, out_json, *, pairs_h5=None,
                   device: str = "auto", triplet_margin: float = 0.0) -> dict:
    """Score per pair (the embedder's similarity); EER and threshold on genuine vs impostor;
    statistics of the region and region-swap pairs at that threshold.

    Triplets (probe P, mate M, twin M', P' = P with the donor's region; `data.pairs`): columns
    `twin_similarity` s(P, M'), `preference` s(P, M) - s(P, M') (the score explained on P),
    `probe_swap_preference` s(P', M) - s(P', M') and `kept` (preference > `triplet_margin`: the
    swap matters to this embedder; only kept triplets are explained). Per region in the summary:
    made, kept, dropped, and among the kept the share whose twin is rejected as a non-mate of P at
    the EER threshold (s(P, M') < t), whose mate is accepted, and whose P' prefers the twin (the
    game can be won: switching every pixel flips the preference)."""
    from ..data.pairs import read_pair_images, triplet_columns

    dev = resolve_device(device)
    model, meta = load_embedder(model_dir, dev)
    similarity = meta["similarity"]
    pairs = pd.read_csv(pairs_tsv, sep="\t", keep_default_na=False)
    extra = triplet_columns(pairs)
    triplet = (pairs["kind"] == "triplet").to_numpy()
    rows = np.unique(np.concatenate([pairs["row_a"], pairs["row_b"], extra["row_c"][triplet],
                                     extra["row_d"][triplet]]))
    # sample ids of the rows (a swapped copy, at a negative row, is named by its source's id)
    id_of = {**dict(zip(extra["row_d"][triplet], pairs["id_a"][triplet])),
             **dict(zip(extra["row_c"][triplet], extra["id_c"][triplet])),
             **dict(zip(pairs["row_b"], pairs["id_b"])), **dict(zip(pairs["row_a"], pairs["id_a"]))}
    name = meta.get("name", Path(model_dir).name)
    emb = embed(model, read_pair_images(dataset_h5, pairs_h5, rows), dev, similarity=similarity, name=name,
                ids=[id_of[r] for r in rows])
    index = {r: k for k, r in enumerate(rows)}

    def score(first, second):
        if not len(first):
            return np.zeros(0)
        a = torch.from_numpy(emb[[index[r] for r in first]])
        b = torch.from_numpy(emb[[index[r] for r in second]])
        return pair_score(a, b, similarity).numpy().astype(np.float64)

    pairs["similarity"] = score(pairs["row_a"], pairs["row_b"])
    genuine = pairs.loc[pairs["kind"] == "genuine", "similarity"].to_numpy()
    impostor = pairs.loc[pairs["kind"] == "impostor", "similarity"].to_numpy()
    eer, threshold = equal_error_rate(genuine, impostor)
    summary = {"embedder": name, "kind": meta["kind"], "similarity": similarity,
               "eer": eer, "threshold": threshold, "n_genuine": int(genuine.size), "n_impostor": int(impostor.size),
               "genuine_mean": float(genuine.mean()), "impostor_mean": float(impostor.mean())}
    for kind in ("region", "swap", "swap_control"):
        changed = pairs[pairs["kind"] == kind]
        if len(changed):
            summary[f"{kind}_pairs"] = {
                r: {"n": int(len(g)), "similarity_mean": float(g["similarity"].mean()),
                    "accepted_at_threshold": float((g["similarity"] >= threshold).mean())}
                for r, g in changed.groupby("region")}
    if triplet.any():
        t_rows = pairs.loc[triplet]
        c, d = extra.loc[triplet, "row_c"], extra.loc[triplet, "row_d"]
        twin = score(t_rows["row_a"], c)
        pairs["twin_similarity"] = np.nan
        pairs["preference"] = np.nan
        pairs["probe_swap_preference"] = np.nan
        pairs.loc[triplet, "twin_similarity"] = twin
        pairs.loc[triplet, "preference"] = t_rows["similarity"].to_numpy() - twin
        pairs.loc[triplet, "probe_swap_preference"] = score(d, t_rows["row_b"]) - score(d, c)
        pairs["kept"] = ""
        pairs.loc[triplet, "kept"] = np.where(pairs.loc[triplet, "preference"] > triplet_margin, "yes", "no")
        summary["triplet_margin"] = float(triplet_margin)
        summary["triplets"] = {}
        for region, g in pairs.loc[triplet].groupby("region"):
            kept = g[g["kept"] == "yes"]
            summary["triplets"][region] = {
                "made": int(len(g)), "kept": int(len(kept)), "dropped": int(len(g) - len(kept)),
                "preference_mean": float(g["preference"].mean()),
                "twin_rejected_at_threshold": float((kept["twin_similarity"] < threshold).mean()) if len(kept)
                else None,
                "mate_accepted_at_threshold": float((kept["similarity"] >= threshold).mean()) if len(kept)
                else None,
                "probe_swap_prefers_twin": float((kept["probe_swap_preference"] < 0).mean()) if len(kept)
                else None}
    with atomic_path(out_scores) as tmp:
        pairs.to_csv(tmp, sep="\t", index=False)
    with atomic_path(out_json) as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    log.info("verification: %s", summary)
    return summary
