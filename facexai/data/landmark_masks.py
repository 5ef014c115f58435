"""CelebAMask-HQ part masks drawn from dlib's 68 face landmarks (the iBUG 300-W scheme).

Landmark indices (0-based): jaw 0-16, brows 17-21 and 22-26, nose bridge 27-30, nostrils 31-35,
eyes 36-41 and 42-47, outer lips 48-59, inner lips 60-67. Points 17-21 and 36-41 are the brow and
eye on the IMAGE's left, i.e. the subject's right. CelebAMask-HQ's `l_` classes are the subject's
left (in the dataset authors' own label maps l_eye lies at x ~ 320 of 512, r_eye at ~ 195), so
36-41 -> r_eye, 17-21 -> r_brow, and 42-47 -> l_eye, 22-26 -> l_brow.

Classes drawn: l_brow, r_brow, l_eye, r_eye, nose, u_lip, l_lip, mouth (the opening inside the
lips) and skin (the jaw line closed over a forehead estimate, minus every other drawn part). Hair,
hat, ears, neck, cloth, glasses, earrings and necklace cannot be read from these landmarks and are
left absent, never guessed.

Shapes beyond the landmarks themselves (brow thickness, nose width, forehead height) are fixed
fractions of the inter-ocular distance or of the brow-to-chin distance, named below.
"""

from __future__ import annotations

import numpy as np

LANDMARK_CLASSES = ("skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "u_lip", "l_lip")

JAW = list(range(0, 17))
R_BROW, L_BROW = list(range(17, 22)), list(range(22, 27))  # image's left = subject's right
BRIDGE, NOSTRILS = list(range(27, 31)), list(range(31, 36))
R_EYE, L_EYE = list(range(36, 42)), list(range(42, 48))
UPPER_LIP = [48, 49, 50, 51, 52, 53, 54, 64, 63, 62, 61, 60]
LOWER_LIP = [54, 55, 56, 57, 58, 59, 48, 60, 67, 66, 65, 64]
MOUTH = list(range(60, 68))

BROW_THICKNESS = 0.16     # x inter-ocular distance: brow landmarks trace the brow's upper edge
BRIDGE_HALF_WIDTH = 0.10  # x inter-ocular distance, at landmark 27
ALA_FLARE = 0.08          # x inter-ocular distance: the nostril wings reach beyond points 31 and 35
FOREHEAD = 0.40           # forehead height above the brows as a fraction of the brow-to-chin distance


def face_axes(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(right, down, inter-ocular distance): unit vectors of the face in image coordinates (x, y);
    `right` points to the image's right (from the subject's right eye to their left eye)."""
    image_left_eye, image_right_eye = points[R_EYE].mean(0), points[L_EYE].mean(0)
    axis = image_right_eye - image_left_eye
    iod = float(np.hypot(*axis))
    if iod <= 0:
        raise ValueError("landmarks: both eyes at the same point")
    right = axis / iod
    down = np.array([-right[1], right[0]])  # image y points down: rotate 'right' by +90 degrees
    return right, down, iod


def landmark_polygons(points: np.ndarray) -> dict[str, list[np.ndarray]]:
    """Polygons (lists of (k, 2) x/y arrays) of each class from 68 landmarks in pixel coordinates."""
    p = np.asarray(points, np.float64)
    if p.shape != (68, 2):
        raise ValueError(f"landmarks: expected (68, 2) points, got {p.shape}")
    right, down, iod = face_axes(p)

    def brow(idx):
        upper = p[idx]
        return np.concatenate([upper, (upper + BROW_THICKNESS * iod * down)[::-1]])

    half = BRIDGE_HALF_WIDTH * iod
    flare = ALA_FLARE * iod
    nose = np.array([p[27] - half * right, p[30] - 2 * half * right, p[31] - flare * right - 0.5 * flare * down,
                     *p[NOSTRILS], p[35] + flare * right - 0.5 * flare * down, p[30] + 2 * half * right,
                     p[27] + half * right])
    brow_mid = p[L_BROW + R_BROW].mean(0)
    height = FOREHEAD * float(np.dot(p[8] - brow_mid, down))
    # the forehead: the jaw line mirrored upwards and flattened. Each jaw point keeps its position
    # across the face and rises in proportion to its depth below the jaw's ends: the ends stay
    # where they are, the chin maps to FOREHEAD x (brow-to-chin distance) above the brows' mean
    depth = (p[JAW] - brow_mid) @ down
    across = (p[JAW] - brow_mid) @ right
    t = (depth - depth.min()) / max(float(depth.max() - depth.min()), 1e-9)
    top = brow_mid + np.outer(across, right) + np.outer(depth.min() * (1 - t) - height * t, down)
    face = np.concatenate([p[JAW], top[::-1]])
    return {
        "skin": [face],
        "nose": [nose],
        "l_eye": [p[L_EYE]],
        "r_eye": [p[R_EYE]],
        "l_brow": [brow(L_BROW)],
        "r_brow": [brow(R_BROW)],
        "mouth": [p[MOUTH]],
        "u_lip": [p[UPPER_LIP]],
        "l_lip": [p[LOWER_LIP]],
    }


def fill_polygon(xy: np.ndarray, size: int) -> np.ndarray:
    """(size, size) bool: pixels whose centre (integer x, y) lies inside the polygon `xy` ((k, 2) x, y),
    by the even-odd rule. A scanline fill: each row's edge crossings, sorted, bound runs of pixel
    centres [x_a, x_b) (about 100x faster than skimage.draw.polygon's per-pixel test at 512 px, with
    the same pixels but for centres lying exactly on an edge; tests compare the two)."""
    xy = np.asarray(xy, np.float64)
    mask = np.zeros((size, size), bool)
    x0, y0 = xy[:, 0], xy[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    first = max(0, int(np.ceil(y0.min())))
    last = min(size - 1, int(np.floor(y0.max())))
    if last < first:
        return mask
    rows = np.arange(first, last + 1, dtype=np.float64)[:, None]
    low, high = np.minimum(y0, y1)[None], np.maximum(y0, y1)[None]
    crosses = (low <= rows) & (rows < high)  # half-open: a vertex shared by two edges counts once
    dy = np.where(y1 != y0, y1 - y0, 1.0)[None]
    xs = np.where(crosses, x0[None] + (rows - y0[None]) / dy * (x1 - x0)[None], np.inf)
    xs.sort(axis=1)
    counts = crosses.sum(axis=1)
    diff = np.zeros((rows.shape[0], size + 1), np.int32)
    index = np.arange(rows.shape[0])
    for j in range(0, int(counts.max(initial=0)) - 1, 2):
        valid = counts >= j + 2
        start = np.clip(np.ceil(xs[valid, j]), 0, size).astype(np.int64)
        end = np.clip(np.ceil(xs[valid, j + 1]), 0, size).astype(np.int64)
        np.add.at(diff, (index[valid], start), 1)
        np.add.at(diff, (index[valid], end), -1)
    mask[first:last + 1] = np.cumsum(diff[:, :size], axis=1) % 2 == 1
    return mask


def _fill(polygons: list[np.ndarray], size: int, scale: float) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    for poly in polygons:
        # pixel centres sit at integer coordinates at both resolutions: x_mask = (x_chip + 0.5) * scale - 0.5
        mask |= fill_polygon((np.asarray(poly, np.float64) + 0.5) * scale - 0.5, size)
    return mask


def landmark_masks(points: np.ndarray, chip_size: int, mask_size: int) -> dict[str, np.ndarray]:
    """Binary masks (mask_size, mask_size) per class from 68 landmarks given in chip pixels.

    Skin excludes every other drawn part; the other masks may touch (upper lip and mouth share
    the inner lip line) as annotators' masks do.
    """
    scale = mask_size / chip_size
    polygons = landmark_polygons(points)
    masks = {name: _fill(polygons[name], mask_size, scale) for name in LANDMARK_CLASSES}
    others = np.zeros((mask_size, mask_size), bool)
    for name in LANDMARK_CLASSES:
        if name != "skin":
            others |= masks[name]
    masks["skin"] &= ~others
    return masks
