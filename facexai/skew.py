"""Training splits skewed by a group: the group-imbalanced twin's training images.

A model's `group_share: {group, share, size}` trains it on a seeded draw from the training split in
which the members of `group` (a CelebA attribute column, as in config `groups`) make exactly
round(share x size) of `size` images. `size` defaults to the largest draw the share allows from the
training split (all of the scarcer side); a size the split cannot give is refused with the counts.
Images of unknown membership (attribute 0) are never drawn, and are counted. The test split is not
touched: the twin is evaluated on the same test images as its fair partner.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def _members(share: float, size: int) -> int:
    """round(share x size), halves up (Python's round takes halves to even), on the share as written:
    0.35 x 90 = 31.5 gives 32 (the float product is 31.4999...)."""
    from fractions import Fraction

    return int(math.floor(Fraction(str(share)) * size + Fraction(1, 2)))


def draw_counts(n_member: int, n_rest: int, share: float, size: int | None) -> tuple[int, int]:
    """(members, others) to draw so that members are `share` of `size` images (rounded half up)."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"group_share.share must lie in [0, 1], got {share}")
    if (share > 0 and n_member == 0) or (share < 1 and n_rest == 0):
        raise ValueError(f"group_share: share {share} needs {'members of the group' if n_member == 0 else 'others'}, "
                         f"and the training split has none ({n_member} members, {n_rest} others)")
    if size is None:
        limits = []
        if share > 0:
            limits.append(n_member / share)
        if share < 1:
            limits.append(n_rest / (1 - share))
        size = int(math.floor(min(limits) + 1e-9))
        # rounding may ask for one image more than a side has: step down until both fit
        while size > 0 and (_members(share, size) > n_member or size - _members(share, size) > n_rest):
            size -= 1
    members = _members(share, size)
    rest = int(size) - members
    if (share > 0 and members == 0) or (share < 1 and rest == 0):
        raise ValueError(f"group_share: share {share} of {size} images rounds to {members} members and {rest} others; "
                         "give a larger size (or a share of 0 or 1 to leave a side out on purpose)")
    if members > n_member or rest > n_rest or size < 1:
        raise ValueError(f"group_share: {size} training images with share {share} need {members} members and "
                         f"{rest} others; the training split has {n_member} and {n_rest}")
    return members, rest


def skewed_rows(train_rows: np.ndarray, member: np.ndarray, share: float, size: int | None,
                seed: int) -> tuple[np.ndarray, dict]:
    """The dataset rows of the skewed training set (sorted) and its counts.

    train_rows: the training split's rows; member: per row, True / False / None (unknown)."""
    train_rows = np.asarray(train_rows, np.int64)
    member = pd.Series(list(member), dtype=object)
    known = member.notna().to_numpy()
    is_member = known & (member.fillna(False).astype(bool).to_numpy())
    members_pool, rest_pool = train_rows[is_member], train_rows[known & ~is_member]
    n_members, n_rest = draw_counts(members_pool.size, rest_pool.size, share, size)
    rng = np.random.default_rng(seed)
    chosen = np.concatenate([rng.choice(members_pool, n_members, replace=False),
                             rng.choice(rest_pool, n_rest, replace=False)])
    counts = {"share": float(share), "n_train": int(chosen.size), "n_member": n_members, "n_rest": n_rest,
              "pool_member": int(members_pool.size), "pool_rest": int(rest_pool.size),
              "pool_unknown": int((~known).sum())}
    return np.sort(chosen), counts


def group_column(dataset_h5, rows: np.ndarray, group: str) -> np.ndarray:
    """Per dataset row: True (member), False, None (unknown) for `group`."""
    import h5py

    from .data.samples import read_rows
    from .labels import ATTRIBUTE_INDEX

    if group not in ATTRIBUTE_INDEX:
        raise ValueError(f"group_share.group: unknown attribute {group!r} (a CelebA attribute, e.g. Pale_Skin)")
    with h5py.File(dataset_h5, "r") as h5:
        values = read_rows(h5, "attributes", np.asarray(rows, np.int64))[:, ATTRIBUTE_INDEX[group]]
    return np.where(values > 0, True, np.where(values < 0, False, None)).astype(object)
