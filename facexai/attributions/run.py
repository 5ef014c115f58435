"""Explain one shard of subjects with one method and write the attribution HDF5 atomically.

What a shard's rows are (attribute decisions, verification pairs, ...), their images and the task
for the model come from the subject kind (facexai/subjects); this runner explains them batch by
batch and writes the file. The attribution file: `store` (its one writer and reader).
"""

from __future__ import annotations

import json
import logging

import h5py
import numpy as np
import torch

from ..subjects import get as subject_kind
from .._version import __version__
from ..data.samples import read_rows, to_model_input
from ..device import resolve_device
from ..models.train import seed_everything
from .base import get_method
from .store import write_shard

log = logging.getLogger(__name__)


def explain_shard(kind: str, inputs: dict, out_h5, *, name: str, method: str, params: dict, shard: int,
                  n_shards: int, selection: dict, batch_size: int = 32, seed: int = 0, device: str = "auto",
                  threads: int = 1, progress: bool = True) -> int:
    """Explain shard `shard` of `n_shards` of subject kind `kind` (`inputs`: the job's input files by
    name; `name`: the explained model or embedder; `selection`: which subjects, as the kind reads it:
    config `explain` or `verification.explain`) with `method` and write the attribution file.

    A method that cannot run on the network (the Grad-CAM family on a TorchScript embedder) writes
    NaN maps and the reason in the file's `not_applicable` attribute, which the metrics report per
    row."""
    torch.set_num_threads(max(1, threads))
    seed_everything(seed)
    dev = resolve_device(device)
    subject = subject_kind(kind)
    explainer = get_method(method, params)
    subject.check(method, explainer.params, selection)
    ex = subject.explained(inputs, name=name, selection=selection, shard=shard, n_shards=n_shards, dev=dev)
    if ex.bind is not None:
        ex.bind(explainer)
    labels = explained_labels(inputs["data"], ex.label_rows) if explainer.needs_labels else None
    reason = ex.unavailable(explainer) if ex.unavailable is not None else None
    n = len(ex)
    if reason is None:
        maps, scores, diagnostics = _explain_batches(ex.images, ex.seeds, ex.task, explainer, seed, batch_size, dev,
                                                     f"{method} {ex.desc}", progress, labels=labels)
    else:
        log.warning("%s on %s: not applicable (%s)", method, name, reason)
        maps = np.full((n,) + ex.images.shape[1:3], np.nan, np.float16)
        with torch.no_grad():
            scores = ex.task(0, n).score(to_model_input(ex.images, dev), list(range(n))).cpu().numpy() if n else \
                np.zeros(0, np.float32)
        diagnostics = {}
    columns = dict(ex.columns)
    if ex.order is not None:  # back to the shard's own order
        back = np.argsort(ex.order)
        maps, scores = maps[back], np.asarray(scores)[back]
        diagnostics = {key: np.asarray(values)[back] for key, values in diagnostics.items()}
        columns = {key: np.asarray(values)[back] for key, values in columns.items()}
    write_shard(out_h5, maps, {**columns, "score": scores, **diagnostics}, {
        "method": method, "params": json.dumps(explainer.params, sort_keys=True), **ex.attrs, "seed": seed,
        "not_applicable": reason or "", "facexai_version": __version__})
    log.info("%s on %s (%s) %s: %d maps", method, name, kind, ex.desc, n)
    return n


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
