"""Train a multi-label attribute classifier on the fused HDF5's training split.

Loss: binary cross-entropy over the configured attributes (targets (v + 1) / 2 for v in {1, -1}).
Reported on the test split, per attribute: accuracy at probability 0.5 and AUROC; an attribute
with AUROC below `min_auroc` is flagged (its explanations explain a model that cannot do the task).
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
from torch import nn

from ..atomic import atomic_path
from ..data.samples import read_rows, to_model_input
from ..data.splits import read_split
from ..device import resolve_device
from ..labels import ATTRIBUTE_INDEX
from ..layout import CURVES, META, WEIGHTS
from .backbones import build_model, channels_last, channels_last_trains, for_inference

log = logging.getLogger(__name__)


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U / (n+ n-)); NaN when one class is missing."""
    from scipy.stats import rankdata  # here: scipy.stats costs every job that loads a model 0.5 s to import

    positive = np.asarray(positive, bool)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def attribute_metrics(proba: np.ndarray, targets: np.ndarray, attributes: list[str],
                      min_auroc: float) -> pd.DataFrame:
    """Per attribute: n, prevalence, accuracy at p = 0.5, AUROC, and flagged = not (AUROC >= min_auroc)."""
    rows = []
    for k, name in enumerate(attributes):
        positive = targets[:, k] > 0.5
        score = auroc(proba[:, k], positive)
        rows.append({"attribute": name, "n_test": len(positive), "prevalence": float(positive.mean()),
                     "accuracy": float(((proba[:, k] > 0.5) == positive).mean()), "auroc": score,
                     "flagged": bool(not score >= min_auroc)})
    return pd.DataFrame(rows)


def seed_everything(seed: int) -> None:
    """Seed torch and numpy and ask for deterministic kernels (CPU and CUDA).

    `torch.use_deterministic_algorithms` also sets the flag for torch.compile's code generator, and
    importing that configuration costs 1-2 s per job; we never compile, so the kernels' own switch is
    set directly where torch has it, and the public call is the fallback."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None:  # pragma: no cover - other torch versions
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        setter(True, warn_only=True)


def _load_split_arrays(dataset_h5, split_tsv, attributes, group_share=None, seed=0):
    """{train, test: (images, targets)} and, with `group_share`, the skewed draw's counts."""
    split = read_split(split_tsv)
    columns = [ATTRIBUTE_INDEX[a] for a in attributes]
    out, counts = {}, None
    with h5py.File(dataset_h5, "r") as h5:
        for part in ("train", "test"):
            rows = split.loc[split["split"] == part, "row"].to_numpy()
            if part == "train" and group_share:
                from ..skew import group_column, skewed_rows

                rows, counts = skewed_rows(rows, group_column(dataset_h5, rows, group_share["group"]),
                                           group_share["share"], group_share.get("size"), seed)
                counts = {"group": group_share["group"], **counts}
            images = read_rows(h5, "images", rows)
            targets = (read_rows(h5, "attributes", rows)[:, columns] > 0).astype(np.float32)
            out[part] = (images, targets)
    return out, counts


def predict_proba(model: nn.Module, images: np.ndarray, device, batch_size: int = 256) -> np.ndarray:
    model.eval()
    chunks = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = to_model_input(images[start:start + batch_size], device)
            chunks.append(torch.sigmoid(model(x)).cpu().numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)


def train_attribute_classifier(dataset_h5, split_tsv, out_dir, *, arch: str, attributes: list[str],
                               epochs: int, batch_size: int, lr: float, weight_decay: float,
                               seed: int, min_auroc: float = 0.7, device: str = "auto",
                               threads: int = 1, width: int = 32, group_share: dict | None = None,
                               progress: bool = True) -> pd.DataFrame:
    """Train, evaluate on the test split, write weights, metadata, per-attribute metrics and curves.

    group_share: {group, share, size}: train on a seeded draw of the training split in which the
    group's members are `share` of the images (`facexai.skew`; the counts go to model.json)."""
    from tqdm import tqdm

    unknown = [a for a in attributes if a not in ATTRIBUTE_INDEX]
    if unknown:
        raise ValueError(f"model attributes: unknown attribute(s) {unknown}")
    torch.set_num_threads(max(1, threads))
    seed_everything(seed)
    dev = resolve_device(device)
    data, skew = _load_split_arrays(dataset_h5, split_tsv, attributes, group_share, seed)
    train_x, train_y = data["train"]
    test_x, test_y = data["test"]
    if skew is not None:
        log.info("group_share: %d training images, %d of them %s (share %.3f; the split offered %d members, %d "
                 "others, %d unknown)", skew["n_train"], skew["n_member"], skew["group"], skew["share"],
                 skew["pool_member"], skew["pool_rest"], skew["pool_unknown"])
    log.info("training %s on %d images, testing on %d, device %s", arch, len(train_x), len(test_x), dev)
    model = build_model(arch, len(attributes), width=width).to(dev)
    if channels_last_trains(dev):
        model = channels_last(model)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * max(1, -(-len(train_x) // batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps)
    loss_fn = nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(seed)
    curves = []
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train_x), generator=generator).numpy()
        flips = torch.rand(len(train_x), generator=generator).numpy() < 0.5
        total, seen = 0.0, 0
        bar = tqdm(range(0, len(order), batch_size), disable=not progress, desc=f"epoch {epoch + 1}/{epochs}",
                   mininterval=2)
        for start in bar:
            idx = order[start:start + batch_size]
            x = to_model_input(train_x[idx], dev)
            flip = torch.from_numpy(flips[idx]).to(dev)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)  # mirror augmentation
            y = torch.from_numpy(train_y[idx]).to(dev)
            loss = loss_fn(model(x), y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        test_proba = torch.from_numpy(predict_proba(model, test_x, dev)).clamp(1e-6, 1 - 1e-6)
        test_loss = float(loss_fn(torch.logit(test_proba), torch.from_numpy(test_y)))
        curves.append({"epoch": epoch + 1, "train_loss": total / max(seen, 1), "test_loss": test_loss})
        log.info("epoch %d: train loss %.4f, test loss %.4f", epoch + 1, curves[-1]["train_loss"], test_loss)

    proba = predict_proba(model, test_x, dev)
    metrics = attribute_metrics(proba, test_y, attributes, min_auroc)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"kind": "attribute_classifier", "arch": arch, "width": width, "attributes": list(attributes),
            "image_size": int(train_x.shape[1]), "seed": seed, "min_auroc": min_auroc, "n_train": len(train_x),
            **({"group_share": skew} if skew is not None else {})}
    with atomic_path(out_dir / "test_metrics.tsv") as tmp:
        metrics.to_csv(tmp, sep="\t", index=False)
    with atomic_path(out_dir / CURVES) as tmp:
        pd.DataFrame(curves).to_csv(tmp, sep="\t", index=False)
    with atomic_path(out_dir / META) as tmp:
        tmp.write_text(json.dumps(meta, indent=2))
    with atomic_path(out_dir / WEIGHTS) as tmp:
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, tmp)
    for row in metrics.itertuples():
        log.info("%-20s acc %.3f auroc %.3f%s", row.attribute, row.accuracy, row.auroc,
                 "  FLAGGED" if row.flagged else "")
    return metrics


def load_model(model_dir: str | os.PathLike, device="cpu") -> tuple[nn.Module, dict]:
    """Load a model directory (ours or an imported user model) without unpickling arbitrary objects."""
    from .user import load_weights, with_input

    model_dir = Path(model_dir)
    meta_path = model_dir / META
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path}: model file not found")
    meta = json.loads(meta_path.read_text())
    model = for_inference(load_weights(model_dir / WEIGHTS, meta.get("format", "state_dict"), meta.get("arch"),
                                       len(meta["attributes"]), meta.get("width", 32)))
    # a user network with its own input normalisation is called through it (model.json `input`)
    model = with_input(model, meta.get("input"), int(meta.get("image_size", 0)))
    return model.to(device).eval(), meta
