"""Synthetic faces, random draws: the generator's settings, who appears in which image, each
image's pose, lighting and attributes, the region pairs. Everything an image depends on comes from
(seed, image index): images can be drawn in any order, by any number of workers."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ...labels import ATTRIBUTE_INDEX, ATTRIBUTE_NAMES
from ..splits import identity_test_mask

# Prevalence of each attribute that carries signal. Every other column is drawn with p = 0.5 and
# changes no pixel (present in the file, unlearnable by design), but Pale_Skin: the person's skin
# tone (PALE_TONE).
SIGNAL_ATTRIBUTES: dict[str, float] = {
    "Eyeglasses": 0.35,
    "Smiling": 0.5,
    "Mouth_Slightly_Open": 0.45,
    "Big_Nose": 0.4,
    "Wearing_Hat": 0.3,
    "Wearing_Earrings": 0.35,
    "Wearing_Necklace": 0.35,
    "Bangs": 0.35,
    "Bushy_Eyebrows": 0.4,
    "Narrow_Eyes": 0.4,
}

CELEBA_SIZE = 202599

# Verification pairs that differ in exactly one region: the base photo and a copy with one of
# these attributes flipped (same person, pose, lighting and noise). Region names: DEFAULT_REGIONS.
PAIR_ATTRIBUTES: tuple[str, ...] = ("Eyeglasses", "Big_Nose", "Smiling", "Wearing_Hat", "Bangs")


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    n_images: int = 1200
    n_identities: int = 150
    image_size: int = 256
    mask_size: int = 128
    jpeg_quality: int = 92
    odd_mask_fraction: float = 0.02
    seed: int = 0
    test_fraction: float = 0.25
    split_seed: int = 0
    shortcut_attribute: str | None = None
    shortcut_strength: float = 0.95
    region_pairs: int = 0
    workers: int = 1

    @property
    def total(self) -> int:
        """Samples written: the regular images, then one partner image per region pair."""
        return self.n_images + self.region_pairs

    def __post_init__(self):
        if self.n_images < 1 or self.n_identities < 2 or self.n_identities > self.n_images:
            raise ValueError("synthetic: need n_images >= n_identities >= 2")
        if self.image_size < 32 or self.mask_size < 16:
            raise ValueError("synthetic: image_size >= 32 and mask_size >= 16 required")
        if self.shortcut_attribute is not None and self.shortcut_attribute not in ATTRIBUTE_INDEX:
            raise ValueError(f"synthetic.shortcut.attribute: unknown attribute {self.shortcut_attribute!r}")
        if self.region_pairs < 0:
            raise ValueError("synthetic.region_pairs must be >= 0")
        if not 0.5 <= self.shortcut_strength <= 1.0:
            raise ValueError("synthetic.shortcut.strength must lie in [0.5, 1]")




# the skin tone (drawn uniform in [0.25, 1]) above which a person counts as Pale_Skin: the group
# variable of the synthetic set (`groups`), a property of the person that changes the skin's pixels
PALE_TONE = 0.7
# rows of the hair palette in `draw_identity`: light (blond, red, grey) and dark (black, brown, dark brown)
LIGHT_HAIR, DARK_HAIR = (2, 3, 4), (0, 1, 5)


def draw_identity(rng: np.random.Generator) -> dict:
    """Geometry and colours that stay fixed for one person."""
    tone = rng.uniform(0.25, 1.0)
    skin = np.array([0.95, 0.78, 0.65]) * (0.45 + 0.55 * tone) + rng.normal(0, 0.02, 3)
    hair_palette = np.array([[0.08, 0.06, 0.05], [0.35, 0.22, 0.12], [0.75, 0.6, 0.35],
                             [0.55, 0.25, 0.1], [0.6, 0.6, 0.6], [0.2, 0.15, 0.1]])
    # hair (and so eyebrows and a fringe) follows the tone as it tends to in people: pale persons draw
    # from the light shades (blond, red, grey), the others from the dark ones
    shades = LIGHT_HAIR if tone > PALE_TONE else DARK_HAIR
    hair = hair_palette[shades[rng.integers(len(shades))]] * rng.uniform(0.85, 1.15)
    return {
        "face_w": rng.uniform(0.68, 0.82),
        "jaw": rng.uniform(0.0, 0.8),
        "eye_dx": rng.uniform(0.29, 0.36),
        "eye_y": rng.uniform(-0.2, -0.12),
        "eye_a": rng.uniform(0.12, 0.15),
        "eye_b": rng.uniform(0.06, 0.075),
        "brow_gap": rng.uniform(0.14, 0.18),
        "brow_arch": rng.uniform(-0.2, 1.0),
        "nose_len": rng.uniform(0.36, 0.44),
        "nose_w": rng.uniform(0.12, 0.15),
        "mouth_y": rng.uniform(0.46, 0.54),
        "mouth_w": rng.uniform(0.24, 0.31),
        "mouth_h": rng.uniform(0.09, 0.115),
        "ear_size": rng.uniform(0.9, 1.1),
        "long_hair": bool(rng.random() < 0.5),
        "hair_line": rng.uniform(-0.72, -0.6),
        "skin": np.clip(skin, 0, 1).tolist(),
        "hair": np.clip(hair, 0, 1).tolist(),
        "iris": rng.choice([[0.25, 0.15, 0.08], [0.2, 0.35, 0.55], [0.3, 0.4, 0.2]]).tolist(),
        "lip": np.clip(np.array([0.75, 0.35, 0.35]) * (0.6 + 0.4 * tone) + rng.normal(0, 0.03, 3),
                       0, 1).tolist(),
        "pale": bool(tone > PALE_TONE),
    }


def draw_scene(rng: np.random.Generator, size: int) -> dict:
    """Pose, lighting, clothing and accessory colours of one photo."""
    return {
        "yaw": float(rng.uniform(-25, 25)),
        "pitch": float(rng.uniform(-15, 15)),
        "roll": float(rng.uniform(-12, 12)),
        "cx": 0.5 + rng.uniform(-0.04, 0.04),
        "cy": 0.44 + rng.uniform(-0.03, 0.03),
        "scale": 0.28 * rng.uniform(0.92, 1.08),
        "light_angle": float(rng.uniform(0, 2 * math.pi)),
        "light_strength": float(rng.uniform(0.05, 0.3)),
        "brightness": float(rng.uniform(0.82, 1.12)),
        "bg": rng.uniform(0.1, 0.9, (2, 3)).tolist(),
        "bg_angle": float(rng.uniform(0, 2 * math.pi)),
        "cloth": rng.uniform(0.05, 0.9, 3).tolist(),
        "cloth_stripes": bool(rng.random() < 0.4),
        "hat": rng.uniform(0.05, 0.9, 3).tolist(),
        "frame": rng.choice([[0.05, 0.05, 0.05], [0.45, 0.3, 0.15], [0.7, 0.7, 0.75]]).tolist(),
        "metal": rng.choice([[0.85, 0.7, 0.3], [0.8, 0.8, 0.85]]).tolist(),
        "gaze": rng.uniform(-0.3, 0.3, 2).tolist(),
        "noise_seed": int(rng.integers(2**31)),
        "fringe_phase": float(rng.uniform(0, 2 * math.pi)),
    }


def draw_attributes(rng: np.random.Generator) -> np.ndarray:
    """Independent draws: 1 / -1 per CelebA attribute; only SIGNAL_ATTRIBUTES change pixels (and
    Pale_Skin, set from the person's skin tone in `_sample`)."""
    p = np.full(len(ATTRIBUTE_NAMES), 0.5)
    for name, prevalence in SIGNAL_ATTRIBUTES.items():
        p[ATTRIBUTE_INDEX[name]] = prevalence
    return np.where(rng.random(len(ATTRIBUTE_NAMES)) < p, 1, -1).astype(np.int8)



def _plan(cfg: SyntheticConfig) -> dict:
    """Everything drawn up front (cheap): identities, their images, attributes, splits, mapping."""
    rng = np.random.default_rng([cfg.seed, 0])
    identities = [draw_identity(np.random.default_rng([cfg.seed, 1, k])) for k in range(cfg.n_identities)]
    # every identity gets at least one image; the rest are spread at random
    owner = np.concatenate([np.arange(cfg.n_identities),
                            rng.integers(0, cfg.n_identities, cfg.n_images - cfg.n_identities)])
    owner = owner[rng.permutation(cfg.n_images)]
    celeba_identity = rng.choice(np.arange(1, 10178), cfg.n_identities, replace=False)
    orig_idx = np.sort(rng.choice(CELEBA_SIZE, cfg.total, replace=False))
    orig_idx = orig_idx[rng.permutation(cfg.total)]
    test = identity_test_mask(celeba_identity[owner], cfg.test_fraction, cfg.split_seed)
    # region pairs: partners of test photos (verification is evaluated on unseen identities)
    pair_rng = np.random.default_rng([cfg.seed, 4])
    candidates = np.flatnonzero(test)
    pair_base = pair_rng.choice(candidates, cfg.region_pairs, replace=cfg.region_pairs > candidates.size)
    names = list(PAIR_ATTRIBUTES)
    pair_attribute = [names[k % len(names)] for k in range(cfg.region_pairs)]
    owner = np.concatenate([owner, owner[pair_base]])
    test = np.concatenate([test, np.ones(cfg.region_pairs, bool)])
    return {"identities": identities, "owner": owner, "celeba_identity": celeba_identity,
            "orig_idx": orig_idx, "test": test, "pair_base": pair_base, "pair_attribute": pair_attribute}


def _sample(cfg: SyntheticConfig, plan: dict, i: int) -> tuple[dict, dict, np.ndarray, bool]:
    if i >= cfg.n_images:  # a region-pair partner: its base photo with one attribute flipped
        k = i - cfg.n_images
        identity, scene, attributes, tint = _sample(cfg, plan, int(plan["pair_base"][k]))
        attributes = attributes.copy()
        attributes[ATTRIBUTE_INDEX[plan["pair_attribute"][k]]] *= -1
        return identity, scene, attributes, tint
    rng = np.random.default_rng([cfg.seed, 2, i])
    identity = plan["identities"][plan["owner"][i]]
    scene = draw_scene(rng, cfg.image_size)
    attributes = draw_attributes(rng)
    attributes[ATTRIBUTE_INDEX["Pale_Skin"]] = 1 if identity["pale"] else -1
    tint = False
    if cfg.shortcut_attribute is not None:
        positive = attributes[ATTRIBUTE_INDEX[cfg.shortcut_attribute]] > 0
        if plan["test"][i]:
            tint = bool(rng.random() < 0.5)  # de-correlated in the test split
        else:
            agree = rng.random() < cfg.shortcut_strength
            tint = bool(positive == agree)
    return identity, scene, attributes, tint
