"""Region-swap pairs, and the pair store every verification job reads images from.

Region swap (any data with part masks): for a region R and two test faces A and B of different
identities, A' is A with B's part pasted in (`swap_region`): by default B's part itself, U =
dilate(R_B, `dilation` px), Poisson-blended so that its colours meet A's at U's border (no seam);
or, with `blend: feather`, B's pixels over dilate(R_A | R_B) with a feathered edge. A' equals A bit
for bit outside U. U is the pair's expected region: where (A, A') differ. Faces
of CelebA-HQ (and of the synthetic set) are aligned, so R lines up in A and B. A draw where R is
absent from A or from B is skipped and counted, never pasted empty.

Triplets (the inpainting game of Williford, May and Byrne, ECCV 2020, on any data with part
masks): a probe P (a test face of identity A), a mate M (another test face of A), a donor B of
another identity, the twin M' = M with B's region R swapped in, and P' = P with the same donor's
R (the game's target). The score explained on P is the embedder's preference for the mate,
s(P, M) - s(P, M'); the ground truth is R in P's own label map. Draws where R is absent from P, M
or B are skipped and counted.

The pair store (`pairs.h5`, written beside pairs.tsv): the swapped copies A', M' and P'
(`swap_images`, uint8 at the dataset's image size), the areas they were pasted over (`swap_masks`,
bool at the label size) and the donor's part within each (`swap_parts`). In pairs.tsv and in
attribution files a swapped copy k has row -1 - k (`copy_row`: it has no dataset row) and id SWAP_ID_OFFSET +
k (a pair's key stays unique, and methods that seed by the partner's id draw afresh for each
pair); `donor_id` names B. A triplet's
row names P (`row_a`) and M (`row_b`), its twin M' in `row_c` / `id_c` and P' in `row_d`; these
columns are empty for the other kinds.
"""

from __future__ import annotations

import json
import logging

import h5py
import numpy as np
import pandas as pd
from scipy import ndimage

from ..atomic import atomic_path
from ..labels import region_class_indices, region_masks
from .samples import read_rows

log = logging.getLogger(__name__)

SWAP_ID_OFFSET = 1_000_000_000
# every pair kind, and whether its two sides count as the same person (the truth of its outcome:
# region, swap and triplet pairs are made from one person's photo)
PAIR_SAME = {"region": True, "swap": True, "swap_control": True, "triplet": True, "genuine": True, "impostor": False}
PAIR_KINDS = tuple(PAIR_SAME)
# the columns of pairs.tsv (row_c, id_c, row_d: a triplet's twin and probe swap, empty otherwise)
PAIR_COLUMNS = ("kind", "row_a", "row_b", "id_a", "id_b", "region", "donor_id", "row_c", "id_c", "row_d")
# pair kinds with an expected region; swap_control: a region-swap pair's control (the same region
# from another photo of the same person: no identity change)
SWAP_KINDS = ("swap", "swap_control")
REGION_KINDS = ("region", *SWAP_KINDS, "triplet")
# kinds whose ground truth is where two images differ: a fill taken from the partner (or mate, or
# twin) would make every map's score depend on that difference alone
GROUND_TRUTH_KINDS = REGION_KINDS
TRIPLET_COLUMNS = ("row_c", "id_c", "row_d")


def copy_row(k):
    """The row of the pair store's swapped copy k in pairs.tsv and attribution files (negative: it
    has no dataset row)."""
    return -1 - k


def store_index(rows):
    """The pair store's index of the swapped copies named by negative `rows` (inverse of copy_row)."""
    return -1 - rows


def refuse_partner_fill(method: str, params: dict, kinds) -> None:
    """A fill taken from the partner is refused for the kinds whose ground truth is where two
    images differ: every map's masked copy would equal the partner outside that area, so the score
    (and the map) would depend only on where the images differ, for any network."""
    chosen = sorted(set(kinds) & set(GROUND_TRUTH_KINDS))
    if params.get("fill") == "partner" and chosen:
        raise ValueError(f"methods.{method}.fill: partner cannot explain the pair kinds {chosen} "
                         "(verification.explain.kinds): outside the changed area the masked copy equals the "
                         "partner, so the map would show where the two images differ whatever the network; "
                         "use a neutral fill (black, blur, mean), or explain only genuine / impostor pairs "
                         "with the partner fill")


def resize_nearest(mask: np.ndarray, size: int) -> np.ndarray:
    """A 2-d array at (size, size) by nearest neighbour (pixel centres)."""
    if mask.shape[0] == size and mask.shape[1] == size:
        return mask
    ys = np.minimum((np.arange(size) + 0.5) * mask.shape[0] / size, mask.shape[0] - 1).astype(int)
    xs = np.minimum((np.arange(size) + 0.5) * mask.shape[1] / size, mask.shape[1] - 1).astype(int)
    return mask[np.ix_(ys, xs)]


def resize_any(mask: np.ndarray, size: int) -> np.ndarray:
    """A boolean mask at (size, size) that loses no pixel of it. Fine pixel f of a side lies in
    coarse pixel floor(f x coarse / fine) in both directions: shrinking, a coarse pixel is in when
    any fine pixel in it is (a block max); growing, a fine pixel takes its coarse pixel's value. So a
    region of the labels taken to the image this way lies inside any area built from it once taken
    back (`to_label_size`), at any ratio of the two sizes."""
    height, width = mask.shape[:2]
    if height == size and width == size:
        return mask
    if height > size:
        ys = np.arange(height) * size // height
        xs = np.arange(width) * size // width
        out = np.zeros((size, size), bool)
        yy, xx = np.nonzero(mask)
        out[ys[yy], xs[xx]] = True
        return out
    ys = np.arange(size) * height // size
    xs = np.arange(size) * width // size
    return np.asarray(mask, bool)[np.ix_(ys, xs)]


# an image-resolution mask at the label resolution, keeping every label pixel that covers a masked
# image pixel
to_label_size = resize_any


BLENDS = ("poisson", "feather")


def poisson_paste(target: np.ndarray, source: np.ndarray, area: np.ndarray) -> np.ndarray:
    """`source` pasted into `target` over `area` by Poisson blending (Perez, Gangnet and Blake 2003):
    inside the area the result keeps the source's gradients (its part, its texture) while its values
    meet the target's on the area's border, so the colours are matched to the surroundings and no
    step is left at the seam. One sparse system (the 4-neighbour Laplacian over the area's pixels;
    neighbours outside the image are left out), factorised once for the 3 colour channels. uint8
    (H, W, 3) in and out; the target is kept bit for bit outside the area."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import factorized

    area = np.asarray(area, bool)
    if not area.any():
        return target.copy()
    h, w = area.shape
    index = -np.ones((h, w), np.int64)
    ys, xs = np.nonzero(area)
    index[ys, xs] = np.arange(ys.size)
    t, g = target.astype(np.float64), source.astype(np.float64)
    rows, cols, vals = [np.arange(ys.size)], [np.arange(ys.size)], [np.zeros(ys.size)]
    rhs = np.zeros((ys.size, 3))
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        k = np.flatnonzero(inside)
        vals[0][k] += 1.0  # degree: the neighbours inside the image
        rhs[k] += g[ys[k], xs[k]] - g[ny[k], nx[k]]  # the source's gradient
        neighbour = index[ny[k], nx[k]]
        in_area = neighbour >= 0
        rows.append(k[in_area])
        cols.append(neighbour[in_area])
        vals.append(-np.ones(int(in_area.sum())))
        border = k[~in_area]
        rhs[border] += t[ny[border], nx[border]]  # the target's value on the border
    matrix = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                        shape=(ys.size, ys.size)).tocsc()
    solve = factorized(matrix)
    out = target.copy()
    out[ys, xs] = np.clip(np.rint(np.stack([solve(rhs[:, c]) for c in range(3)], axis=1)), 0, 255).astype(np.uint8)
    return out


def swap_region(image_a: np.ndarray, region_a: np.ndarray, image_b: np.ndarray, region_b: np.ndarray, *,
                dilation: int, feather: int, blend: str = "poisson",
                cover: str = "donor") -> tuple[np.ndarray, np.ndarray]:
    """(A', U): A with B's region pasted in. Images uint8 (S, S, 3); regions bool at the image
    resolution.

    `poisson` (the default): B's part itself, U = dilate(region_b, `dilation` px), Poisson-blended
    into A (`poisson_paste`: B's texture, A's colours at the border, no seam); where A's own part
    reaches beyond U it stays, unless `cover="union"`: U = dilate(region_a | region_b), so that A's
    own part is replaced whole (by B's part and, where A's reached further, B's surroundings, still
    Poisson-blended). `feather`: U = dilate(region_a | region_b, `dilation`), B's pixels
    with weight min(1, d / (feather + 1)), d the distance to the nearest pixel outside U (most of U is
    then B's skin, and a colour step remains inside the ramp). A' equals A bit for bit outside U."""
    if image_a.shape != image_b.shape:
        raise ValueError(f"region swap: images of different shapes {image_a.shape} and {image_b.shape}")
    if blend not in BLENDS:
        raise ValueError(f"region swap: blend must be one of {BLENDS}, got {blend!r}")
    cross = ndimage.generate_binary_structure(2, 1)
    if cover not in ("donor", "union"):
        raise ValueError(f"region swap: cover must be donor or union, got {cover!r}")
    union = region_b if blend == "poisson" and cover == "donor" else region_a | region_b
    if dilation > 0:
        union = ndimage.binary_dilation(union, structure=cross, iterations=int(dilation))
    if blend == "poisson":
        return poisson_paste(image_a, image_b, union), union
    inside = ndimage.distance_transform_edt(union)  # distance to the nearest pixel outside U
    weight = np.clip(inside / (feather + 1.0), 0.0, 1.0)[..., None]
    blended = weight * image_b.astype(np.float64) + (1.0 - weight) * image_a.astype(np.float64)
    swapped = np.where(union[..., None], np.rint(blended), image_a).astype(np.uint8)
    return swapped, union


def seam_measures(image_a: np.ndarray, swapped: np.ndarray, area: np.ndarray, region_b: np.ndarray) -> dict:
    """How much of the pasted area is the donor's part, and the seam: `part_share` = |R_B ∩ U| / |U|;
    `edge_ratio` = the summed squared Sobel gradient of the grey image of A' over the ring of pixels
    within one pixel of U's border, over the same sum for A (1: the border looks like A's there)."""
    from ..attributions.model_free import LUMA

    cross = ndimage.generate_binary_structure(2, 1)
    ring = ndimage.binary_dilation(area, cross) & ~ndimage.binary_erosion(area, cross)

    def energy(image):
        grey = np.tensordot(image.astype(np.float64) / 255.0, np.asarray(LUMA), axes=([2], [0]))
        return (ndimage.sobel(grey, 0) ** 2 + ndimage.sobel(grey, 1) ** 2)[ring].sum()

    base = energy(image_a)
    return {"part_share": float((region_b & area).sum() / max(area.sum(), 1)),
            "edge_ratio": float(energy(swapped) / base) if base > 0 else np.nan}


def build_swap_pairs(test: pd.DataFrame, dataset_h5, *, regions: dict, names: list[str], per_region: int,
                     dilation: int, feather: int, seed: int, blend: str = "poisson",
                     controls: bool = False) -> tuple[list[tuple], np.ndarray, np.ndarray, np.ndarray, dict]:
    """Region-swap pairs among the test samples `test` (columns row, id, identity).

    For each region, the test faces in a seeded random order each serve once as A (while pairs are
    missing), with a B drawn among the other identities. With `controls`, each swap pair gets a
    control of kind `swap_control`: A with the same region from another photo of A's own person,
    pasted the same way (no identity change: the paste, its border and the photo's differences
    without a new person), when A's person has another test photo with the region. Returns (pair
    rows for pairs.tsv, swapped images, expected regions at the label size, the donor's part
    within each (label size), counts per region: made, skipped, controls)."""
    records, images, masks, parts, counts = [], [], [], [], {}
    if not names or per_region <= 0:
        empty = np.zeros((0, 1, 1), bool)
        return records, np.zeros((0, 1, 1, 3), np.uint8), empty, empty, counts
    rows, ids, identity = (test[c].to_numpy() for c in ("row", "id", "identity"))
    with h5py.File(dataset_h5, "r") as h5:
        image_size, label_size = int(h5["images"].shape[1]), int(h5["labels"].shape[1])
        for r_index, region in enumerate(names):
            classes = region_class_indices(region, regions)
            rng = np.random.default_rng([seed, r_index])
            control_rng = np.random.default_rng([seed, r_index, 0xC0])  # apart: controls change no swap draw
            made = skipped = n_controls = 0
            for a in rng.permutation(len(rows)):
                if made == per_region:
                    break
                others = np.flatnonzero(identity != identity[a])
                if others.size == 0:
                    break
                b = int(rng.choice(others))
                labels = read_rows(h5, "labels", [rows[a], rows[b]])
                region_a = resize_any(np.isin(labels[0], classes), image_size)
                region_b = resize_any(np.isin(labels[1], classes), image_size)
                if not region_a.any() or not region_b.any():
                    skipped += 1
                    continue
                pixels = read_rows(h5, "images", [rows[a], rows[b]])
                swapped, union = swap_region(pixels[0], region_a, pixels[1], region_b,
                                             dilation=dilation, feather=feather, blend=blend)
                k = len(images)
                images.append(swapped)
                masks.append(to_label_size(union, label_size))
                parts.append(to_label_size(union & region_b, label_size))
                records.append(("swap", int(rows[a]), copy_row(k), int(ids[a]), SWAP_ID_OFFSET + k, region,
                                int(ids[b])))
                made += 1
                mates = np.flatnonzero((identity == identity[a]) & (np.arange(len(rows)) != a))
                if controls and mates.size:
                    m = int(control_rng.choice(mates))
                    region_m = resize_any(np.isin(read_rows(h5, "labels", [rows[m]])[0], classes), image_size)
                    if region_m.any():
                        own, area = swap_region(pixels[0], region_a, read_rows(h5, "images", [rows[m]])[0],
                                                region_m, dilation=dilation, feather=feather, blend=blend)
                        k = len(images)
                        images.append(own)
                        masks.append(to_label_size(area, label_size))
                        parts.append(to_label_size(area & region_m, label_size))
                        records.append(("swap_control", int(rows[a]), copy_row(k), int(ids[a]), SWAP_ID_OFFSET + k,
                                        region, int(ids[m])))
                        n_controls += 1
            counts[region] = {"made": made, "skipped_region_absent": skipped, "requested": per_region}
            if controls:
                counts[region]["controls"] = n_controls
            if made < per_region:
                log.warning("region-swap pairs for %s: %d of %d made (%d draws skipped: region absent from A or B; "
                            "test faces exhausted)", region, made, per_region, skipped)
    shape = (0, image_size, image_size, 3)
    empty = np.zeros((0, label_size, label_size), bool)
    return (records, np.stack(images) if images else np.zeros(shape, np.uint8),
            np.stack(masks) if masks else empty, np.stack(parts) if parts else empty, counts)


def build_triplets(test: pd.DataFrame, dataset_h5, *, regions: dict, names: list[str], per_region: int,
                   dilation: int, feather: int, seed: int, start: int,
                   blend: str = "poisson") -> tuple[list[tuple], list, list, list, dict]:
    """Triplets (module docstring) among the test samples `test` (columns row, id, identity).

    For each region, probes in a seeded random order (those whose identity has another test
    photo), each with a mate drawn among its identity's other test photos and a donor among the
    other identities; a probe serves once per region. M' and P' replace the mate's and the probe's
    own part whole (`swap_region` with cover="union"): P' differs from P over all of R in P, the
    triplet's expected region then being P''s pasted area. The twin M' and the probe's swap P' go
    into the store at indices start, start + 1, ... Returns (pair rows with the triplet columns,
    images, pasted areas at the label size, the donor's part within each, counts per region: made
    and skipped)."""
    records, images, masks, parts, counts = [], [], [], [], {}
    if not names or per_region <= 0:
        return records, images, masks, parts, counts
    rows, ids, identity = (test[c].to_numpy() for c in ("row", "id", "identity"))
    members = {k: np.flatnonzero(identity == k) for k in np.unique(identity)}
    with h5py.File(dataset_h5, "r") as h5:
        image_size, label_size = int(h5["images"].shape[1]), int(h5["labels"].shape[1])
        for r_index, region in enumerate(names):
            classes = region_class_indices(region, regions)
            rng = np.random.default_rng([seed, 0x7819, r_index])
            made = skipped = 0
            for p in rng.permutation(len(rows)):
                if made == per_region:
                    break
                mates = members[identity[p]][members[identity[p]] != p]
                others = np.flatnonzero(identity != identity[p])
                if mates.size == 0 or others.size == 0:
                    continue
                m, b = int(rng.choice(mates)), int(rng.choice(others))
                labels = read_rows(h5, "labels", [rows[p], rows[m], rows[b]])
                present = [resize_any(np.isin(lab, classes), image_size) for lab in labels]
                if not all(r.any() for r in present):
                    skipped += 1
                    continue
                pixels = read_rows(h5, "images", [rows[p], rows[m], rows[b]])
                twin, twin_area = swap_region(pixels[1], present[1], pixels[2], present[2],
                                              dilation=dilation, feather=feather, blend=blend, cover="union")
                probe_swap, probe_area = swap_region(pixels[0], present[0], pixels[2], present[2],
                                                     dilation=dilation, feather=feather, blend=blend, cover="union")
                k = start + len(images)
                images.extend([twin, probe_swap])
                masks.extend([to_label_size(twin_area, label_size), to_label_size(probe_area, label_size)])
                parts.extend([to_label_size(twin_area & present[2], label_size),
                              to_label_size(probe_area & present[2], label_size)])
                records.append(("triplet", int(rows[p]), int(rows[m]), int(ids[p]), int(ids[m]), region,
                                int(ids[b]), copy_row(k), SWAP_ID_OFFSET + k, copy_row(k + 1)))
                made += 1
            counts[region] = {"made": made, "skipped_region_absent": skipped, "requested": per_region}
            if made < per_region:
                log.warning("triplets for %s: %d of %d made (%d draws skipped: region absent from the probe, "
                            "mate or donor; test faces exhausted)", region, made, per_region, skipped)
    return records, images, masks, parts, counts


def triplet_columns(pairs: pd.DataFrame) -> pd.DataFrame:
    """The triplet columns (row_c, id_c, row_d) of pairs.tsv as int64. They are empty in the file
    for the other kinds (no number can mark "none": -1 is a swapped copy's row); those rows get
    their own row_b / id_b here, which nothing reads."""
    out = pd.DataFrame(index=pairs.index)
    triplet = (pairs["kind"] == "triplet").to_numpy() if "kind" in pairs else np.zeros(len(pairs), bool)
    for column, fallback in (("row_c", "row_b"), ("id_c", "id_b"), ("row_d", "row_b")):
        values = pairs[column] if column in pairs else pd.Series("", index=pairs.index)
        numeric = pd.to_numeric(values.where(triplet, pairs[fallback]), errors="coerce")
        if numeric.isna().any():
            raise ValueError(f"pairs.tsv: triplet rows without {column}")
        out[column] = numeric.astype(np.int64)
    return out


def write_pair_store(out_h5, images: np.ndarray, masks: np.ndarray, counts: dict,
                     triplet_counts: dict | None = None, parts: np.ndarray | None = None) -> None:
    with atomic_path(out_h5) as tmp, h5py.File(tmp, "w") as h5:
        h5.create_dataset("swap_images", data=images, compression="gzip")
        h5.create_dataset("swap_masks", data=masks, compression="gzip")
        h5.create_dataset("swap_parts", data=masks if parts is None else parts, compression="gzip")
        h5.attrs["swap_counts"] = json.dumps(counts, sort_keys=True)
        h5.attrs["triplet_counts"] = json.dumps(triplet_counts or {}, sort_keys=True)


def read_pair_images(dataset_h5, pairs_h5, rows) -> np.ndarray:
    """Images of pair rows: dataset rows (>= 0) from the fused dataset, swapped copies (< 0) from
    the pair store."""
    rows = np.asarray(rows, np.int64)
    with h5py.File(dataset_h5, "r") as h5:
        ours = read_rows(h5, "images", rows[rows >= 0])
        out = np.empty((rows.size,) + ours.shape[1:], np.uint8)
    out[rows >= 0] = ours
    if (rows < 0).any():
        with h5py.File(pairs_h5, "r") as h5:
            out[rows < 0] = read_rows(h5, "swap_images", store_index(rows[rows < 0]))
    return out


def swap_parts(pairs_h5, partner_rows, kinds, size: int) -> np.ndarray | None:
    """Bool (N, size, size): for a region-swap pair, the donor's part within its pasted area (the rest
    of the area is the border the blend made); empty for other kinds. None for a pair store written
    before the parts were stored."""
    partner_rows = np.asarray(partner_rows, np.int64)
    out = np.zeros((len(partner_rows), size, size), bool)
    swap = np.flatnonzero([k in SWAP_KINDS for k in kinds])
    if swap.size:
        with h5py.File(pairs_h5, "r") as h5:
            if "swap_parts" not in h5:
                return None
            out[swap] = read_rows(h5, "swap_parts", store_index(partner_rows[swap]))
    return out


def expected_regions(dataset_h5, pairs_h5, rows, partner_rows, kinds, region_names, regions: dict,
                     probe_swap_rows=None) -> np.ndarray:
    """Bool (N, M, M) at the label size: a pair's expected region. Swap pairs: the stored U. Region
    pairs (the synthetic set's copies with one region changed): the region in either photo's labels
    (an added hat exists in one of them). Triplets: where P' differs from P, the stored area of
    P' (`probe_swap_rows`, the triplets' `row_d`), which holds all of R in P's own labels and
    the donor's R (dilated). Other kinds: empty."""

    rows, partner_rows = np.asarray(rows, np.int64), np.asarray(partner_rows, np.int64)
    with h5py.File(dataset_h5, "r") as h5:
        size = int(h5.attrs["mask_size"])
        masks = np.zeros((len(rows), size, size), bool)
        sel = np.flatnonzero([k == "region" for k in kinds])
        named = [region_names[i] for i in sel]
        if sel.size:
            masks[sel] = (region_masks(read_rows(h5, "labels", rows[sel]), named, regions)
                          | region_masks(read_rows(h5, "labels", partner_rows[sel]), named, regions))
    probe = np.flatnonzero([k == "triplet" for k in kinds])
    if probe.size:
        if probe_swap_rows is None:
            raise ValueError("triplet rows need their P' rows (row_d) for the expected region")
        with h5py.File(pairs_h5, "r") as h5:
            masks[probe] = read_rows(h5, "swap_masks", store_index(np.asarray(probe_swap_rows, np.int64)[probe]))
    swap = np.flatnonzero([k in SWAP_KINDS for k in kinds])
    if swap.size:
        if (partner_rows[swap] >= 0).any():
            raise ValueError(f"{pairs_h5}: a swap pair whose partner is not a swapped copy")
        with h5py.File(pairs_h5, "r") as h5:
            masks[swap] = read_rows(h5, "swap_masks", store_index(partner_rows[swap]))
    return masks
