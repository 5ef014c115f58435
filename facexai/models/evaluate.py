"""Evaluate a trained attribute model on any fused dataset's test split.

With a synthetic shortcut dataset (a background tint correlated with one attribute in the training
split, independent of it in the test split), the shortcut attribute's accuracy is also reported on
the test samples where the cue agrees with the label and where it conflicts: a model that learned
the cue instead of the region is right on the first and wrong on the second.
"""

from __future__ import annotations

import json
import logging

import h5py
import numpy as np
import pandas as pd

from ..atomic import atomic_path
from ..data.samples import read_rows
from ..data.splits import read_split
from ..device import resolve_device
from ..labels import ATTRIBUTE_INDEX
from .train import attribute_metrics, load_model, predict_proba

log = logging.getLogger(__name__)


def evaluate_attribute_model(model_dir, dataset_h5, split_tsv, out_tsv, *, model_name: str, dataset_name: str,
                             synthetic_meta=None, device: str = "auto") -> pd.DataFrame:
    dev = resolve_device(device)
    model, meta = load_model(model_dir, dev)
    split = read_split(split_tsv)
    rows = split.loc[split["split"] == "test", "row"].to_numpy()
    with h5py.File(dataset_h5, "r") as h5:
        images = read_rows(h5, "images", rows)
        ids = read_rows(h5, "ids", rows)
        columns = [ATTRIBUTE_INDEX[a] for a in meta["attributes"]]
        targets = (read_rows(h5, "attributes", rows)[:, columns] > 0).astype(np.float32)
    proba = predict_proba(model, images, dev)
    table = attribute_metrics(proba, targets, meta["attributes"], meta.get("min_auroc", 0.7))
    table.insert(0, "dataset", dataset_name)
    table.insert(0, "model", model_name)
    table["cue_agrees_n"] = np.nan
    table["cue_agrees_accuracy"] = np.nan
    table["cue_conflicts_n"] = np.nan
    table["cue_conflicts_accuracy"] = np.nan
    if synthetic_meta is not None:
        info = json.loads(open(synthetic_meta).read())
        cue_attribute = info["config"].get("shortcut_attribute")
        if cue_attribute in meta["attributes"]:
            k = meta["attributes"].index(cue_attribute)
            tint = np.array(info["shortcut_tint"], bool)[ids]
            positive = targets[:, k] > 0.5
            correct = (proba[:, k] > 0.5) == positive
            agrees = tint == positive
            i = table.index[table["attribute"] == cue_attribute][0]
            table.loc[i, ["cue_agrees_n", "cue_agrees_accuracy", "cue_conflicts_n", "cue_conflicts_accuracy"]] = [
                agrees.sum(), correct[agrees].mean() if agrees.any() else np.nan,
                (~agrees).sum(), correct[~agrees].mean() if (~agrees).any() else np.nan]
    with atomic_path(out_tsv) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    log.info("%s on %s:\n%s", model_name, dataset_name, table.to_string())
    return table
