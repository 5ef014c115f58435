"""Random baseline: i.i.d. uniform maps, seeded per sample id (independent of batching).

A localisation metric that cannot tell a real method from this one measures nothing. With
`cells` > 0 the noise is drawn on a cells x cells grid and upsampled, for a blobby baseline.

Attribute decisions: uniform in [0, 1). Verification pairs: uniform in [-1, 1) (the same draws,
2u - 1), because pair maps are read signed: the positive part as the similarity map and the
negative part as the dissimilarity map, and the baseline must give both (each a uniform random map
on about half the pixels).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .base import AttributionMethod, PairTask


class RandomBaseline(AttributionMethod):
    name = "random"
    defaults = {"cells": 0}
    model_free = True

    def attribute(self, task, images, sample_ids, seed):
        n, _, h, w = images.shape
        cells = int(self.params["cells"])
        out = np.empty((n, h, w), np.float32)
        # seeded by sample and what is explained (the target index, or the partner's id), never by
        # anything the model computes
        if isinstance(task, PairTask):
            keys = [int(p) for p in task.partner_ids]
        else:
            keys = [int(t) for t in task.extra[0]]
        for k, (sample_id, key) in enumerate(zip(sample_ids, keys)):
            rng = np.random.default_rng([seed, int(sample_id), key])
            if cells > 0:
                grid = torch.from_numpy(rng.random((1, 1, cells, cells), dtype=np.float32))
                out[k] = F.interpolate(grid, (h, w), mode="bilinear", align_corners=False)[0, 0].numpy()
            else:
                out[k] = rng.random((h, w), dtype=np.float32)
        if isinstance(task, PairTask):
            out = 2.0 * out - 1.0
        return out
