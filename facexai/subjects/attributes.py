"""Attribute decisions: an attribute classifier's output on one test image.

Which decisions a shard holds: every test sample (the first `max_samples` by id, split into
`n_shards` contiguous shards) times every configured attribute the model predicts; with
`only_positive`, only where the ground truth is positive (an absent hat has no region to find).
The expected region: the attribute's region (`attribute_regions`) in the image's own label map.
The outcome: truth (the dataset's attribute) against the prediction at probability 0.5.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch

from ..data.samples import read_rows
from ..data.splits import read_split
from ..labels import ATTRIBUTE_INDEX, region_masks
from ..tasks import ClassTask
from .base import Explained, Scored, SubjectKind, outcomes


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


def _model_dir(inputs: dict) -> Path:
    return Path(inputs["meta"]).parent


class AttributeDecisions(SubjectKind):
    name = "attributes"
    key_columns = ("id", "attribute")

    def explained(self, inputs, *, name, selection, shard, n_shards, dev):
        from ..models.train import load_model

        model, meta = load_model(_model_dir(inputs), dev)
        rows = shard_rows(read_split(inputs["split"]), shard, n_shards, selection.get("max_samples"))
        with h5py.File(inputs["data"], "r") as h5:
            table = explanation_table(read_rows(h5, "attributes", rows), rows, read_rows(h5, "ids", rows),
                                      meta["attributes"], selection["attributes"],
                                      selection.get("only_positive", True))
            images = read_rows(h5, "images", table["row"].to_numpy(np.int64))
        # int64 also for a shard without a decision to explain (an empty table's columns are objects)
        targets = torch.from_numpy(table["target"].to_numpy(np.int64))

        def bind(explainer):
            if hasattr(explainer, "bind"):  # maps made elsewhere: this model's file
                explainer.bind(name, meta["attributes"])

        return Explained(
            images=images, seeds=table["id"].to_numpy(np.int64), label_rows=table["row"].to_numpy(np.int64),
            task=lambda a, b: ClassTask(model, targets[a:b].to(dev), probability=True),
            columns={"row": table["row"].to_numpy(np.int64), "ids": table["id"].to_numpy(np.int64),
                     "target": table["target"].to_numpy(np.int64), "attribute": table["attribute"].to_numpy()},
            attrs={"model": name}, desc=f"shard {shard}", bind=bind)

    def scored(self, shard, inputs, *, regions, settings, attribute_regions=None):
        rows, score, targets = shard["row"], shard["score"], shard["target"]
        attributes = list(shard["attribute"])
        attribute_regions = attribute_regions or {}
        missing = sorted({a for a in attributes if a not in attribute_regions})
        if missing:
            raise ValueError(f"attribute_regions: no expected region for explained attribute(s) {missing}")
        with h5py.File(inputs["data"], "r") as h5:
            labels = read_rows(h5, "labels", rows)
            truth = read_rows(h5, "attributes", rows)[np.arange(len(rows)),
                                                      [ATTRIBUTE_INDEX[a] for a in attributes]] > 0
        region_names = [attribute_regions[a] for a in attributes]

        def load(dev):
            from ..models.train import load_model

            with h5py.File(inputs["data"], "r") as h5:
                images = read_rows(h5, "images", rows)
            model, _ = load_model(_model_dir(inputs), dev)
            target_t = torch.from_numpy(targets).to(dev)
            return model, images, lambda network, sel: ClassTask(network, target_t[sel])

        return Scored(
            # outcome at the model's decision threshold (probability 0.5, as its test metrics use)
            columns={"id": shard["ids"], "attribute": attributes, "region": region_names, "score": score,
                     "outcome": outcomes(truth, np.asarray(score) > 0.5)},
            masks=region_masks(labels, region_names, regions), load=load,
            summary=lambda table: (f"{shard.model}/{shard.method}: {len(table)} rows, "
                                   f"{int((table['degenerate'] != '').sum())} degenerate against the masks"))
