"""Train/test splits that keep every identity on one side.

With identities (synthetic set, CelebA's identity file, a photo folder's) the test set is a seeded
random `test_fraction` of the identities (all of them at 1, for runs that train nothing). Without
them, CelebA's official partition is used through the CelebA-HQ -> CelebA index mapping (its
train / val / test parts are identity-disjoint by design).
"""

from __future__ import annotations

import math

import numpy as np

# Official CelebA partition (list_eval_partition.txt): 0-based original indices; from here on an
# image is in CelebA's validation or test part
CELEBA_TRAIN_END = 162770


def identity_test_mask(identities: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask over samples: True for samples whose identity falls in the test split."""
    if not 0.0 < test_fraction <= 1.0:
        raise ValueError(f"split.test_fraction must lie in (0, 1], got {test_fraction}")
    identities = np.asarray(identities)
    if test_fraction == 1.0:  # nothing is trained: every sample is a test sample
        return np.ones(identities.shape, bool)
    unique = np.unique(identities)
    n_test = max(1, math.ceil(test_fraction * unique.size))
    if n_test >= unique.size:
        raise ValueError(f"split.test_fraction={test_fraction} leaves no training identity "
                         f"({unique.size} identities)")
    order = np.random.default_rng(seed).permutation(unique.size)
    test_ids = unique[order[:n_test]]
    return np.isin(identities, test_ids)


def celeba_partition_test_mask(celeba_index: np.ndarray) -> np.ndarray:
    """True for samples in CelebA's official validation or test partition (held out from training)."""
    return np.asarray(celeba_index) >= CELEBA_TRAIN_END


SPLIT_COLUMNS = ("row", "id", "identity", "split")


def make_split(dataset_h5, out_tsv, test_fraction: float, seed: int) -> dict[str, int]:
    """Write the split table (one line per fused sample) and return the counts per split."""
    import h5py
    import pandas as pd

    from ..atomic import atomic_path

    with h5py.File(dataset_h5, "r") as h5:
        ids = h5["ids"][:]
        if "identity" in h5:
            identity = h5["identity"][:]
            test = identity_test_mask(identity, test_fraction, seed)
        else:
            identity = np.full(ids.shape, -1, np.int64)
            test = celeba_partition_test_mask(h5["celeba_index"][:])
    table = pd.DataFrame({"row": np.arange(ids.size), "id": ids, "identity": identity,
                          "split": np.where(test, "test", "train")})
    with atomic_path(out_tsv) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    return table["split"].value_counts().to_dict()


def read_split(path):
    """The split table written by make_split (a pandas DataFrame)."""
    import pandas as pd

    table = pd.read_csv(path, sep="\t")
    if list(table.columns) != list(SPLIT_COLUMNS):
        raise ValueError(f"{path}: not a split table (columns {list(table.columns)})")
    return table
