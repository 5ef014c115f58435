"""What a subject kind is: the seam between the stages and what they explain.

A *subject* is one explained decision: an attribute classifier's output on one image, or a
verification pair's (or triplet's) score. A *kind* of subject knows, for one shard:

* for the attribution stage (`explained`): which rows the shard holds, their images, the task of
  rows a..b for the model (`tasks.Task`), which dataset rows hold their label maps, and the
  columns stored with the maps;
* for the metric stage (`scored`, from an attribution file): the identification, truth and
  outcome columns, the expected region of each row, the rows that have one, the images and the
  task for any network (the sanity checks re-explain with randomised copies), and its own extra
  columns.

The runners (attributions/run.py `explain_shard`, metrics/run.py `metric_table`) exist once over
this interface; the kinds are registered in `facexai.subjects` (`KINDS`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np


def outcomes(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """The decision's outcome per row: TP, FP, FN or TN (truth and prediction as bool)."""
    truth, predicted = np.asarray(truth, bool), np.asarray(predicted, bool)
    return np.where(predicted, np.where(truth, "TP", "FP"), np.where(truth, "FN", "TN")).astype(object)


@dataclasses.dataclass
class Explained:
    """One shard's subjects, loaded for explaining, in the order they are explained.

    `task(a, b)`: the task of rows a..b (contiguous); `seeds`: per row, the number a method seeds its
    draws with (the sample id: a map never depends on batching); `label_rows`: the dataset rows of
    the explained images (for a method that reads label maps); `columns`: what the attribution file
    stores per row besides the score; `attrs`: file attributes besides method, params, seed and
    version; `order`: with a reordering for explaining, row k is row order[k] of the shard's own
    (stored) order; `unavailable(explainer)`: why the method cannot run on this network (None when it
    can); `bind(explainer)`: tells a method of maps made elsewhere which network it explains."""

    images: np.ndarray
    seeds: np.ndarray
    label_rows: np.ndarray
    task: Callable
    columns: dict
    attrs: dict
    desc: str
    order: np.ndarray | None = None
    unavailable: Callable | None = None
    bind: Callable | None = None

    def __len__(self) -> int:
        return len(self.seeds)


@dataclasses.dataclass
class Scored:
    """One attribution file's subjects, loaded for its metric table.

    `columns`: identification, score, truth and outcome per row (after model, method, budget);
    `masks`: each row's expected region at the label resolution; `with_region`: the rows that have
    one (None: every row), the others get `outside` (per mask column; NaN when not named) in the
    mask metric columns; `load(dev)` -> (model, images, task_for): the network, the explained
    images and `task_for(network, rows)`, the task of those rows for any network (the model or a randomised
    copy); `threshold` / `same`: the decision threshold and truth per row for the metrics that score
    correctness (None: not scored); `not_applicable`: why the method could not run (every metric
    NaN); the hooks add the kind's own columns."""

    columns: dict
    masks: np.ndarray
    load: Callable
    with_region: np.ndarray | None = None
    outside: dict = dataclasses.field(default_factory=dict)
    threshold: np.ndarray | None = None
    same: np.ndarray | None = None
    not_applicable: str = ""
    # (maps, masks, threads) -> columns after the mask metrics, before the registered metrics
    mask_extras: Callable | None = None
    # columns after the registered metrics, before those that call the model
    trailing: dict = dataclasses.field(default_factory=dict)
    # (cols, task, x, maps, regions_model, dev) -> changes the model metric columns in place
    finish: Callable | None = None
    # besides the mask metrics, the columns set to NaN when the method was not applicable
    not_applicable_columns: tuple = ()
    # (table) -> a line for the log
    summary: Callable | None = None


class SubjectKind:
    """One kind of subject (see the module docstring). `inputs` are the job's input files by
    name, as the rules name them (data, split, pairs, store, meta, eer, attributions)."""

    name: str = ""
    # the columns that name one row of the metric table beside model and method (subjects.row_key),
    # and those that do when the table has them
    key_columns: tuple[str, ...] = ()
    optional_key_columns: tuple[str, ...] = ()

    def check(self, method: str, params: dict, selection: dict) -> None:
        """Refuse a method that this kind's selection cannot be explained with (before any loading)."""

    def explained(self, inputs: dict, *, name: str, selection: dict, shard: int, n_shards: int,
                  dev) -> Explained:
        raise NotImplementedError

    def scored(self, shard, inputs: dict, *, regions: dict, settings: dict,
               attribute_regions: dict | None = None) -> Scored:
        raise NotImplementedError
