"""Procedural faces with per-part masks, written in the exact CelebAMask-HQ on-disk layout.

Why: no real face data can be downloaded on a fresh machine, and a synthetic set has what real
data lacks, the region that can drive each attribute known by construction.

Geometry. Every part is a shape in a face-centred frame (u to the right, v down, face half-height 1).
A pixel maps to (u, v) through the image's pose (roll = in-plane rotation, scale, translation;
yaw and pitch shift the inner features). Masks are those shapes evaluated on the mask grid;
the image is the same shapes evaluated on the image grid.

Consistency with fusion. Each class mask is the part's natural extent, overlapping others the
way real annotations do (the skin mask covers the whole face oval, eyes lie over glasses ...).
The image shows at each pixel the colour layer of the class that WINS in the official fusion
order, so the image agrees with the fused label map by construction.

Attributes. Each signal attribute changes only the colour layers of classes inside its own
region, and for non-accessory attributes inside masks that do not depend on the attribute
(the lips oval is fixed; a smile moves the lip line inside it). So the pixels an attribute
changes lie inside its region of the image that carries it (and, for non-accessories, also of
the image that does not). This holds for the rendered image before JPEG encoding; JPEG's 8x8
blocks smear a difference by a few pixels of small amplitude, as on real data.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from ..atomic import atomic_path
from ..labels import ATTRIBUTE_INDEX, ATTRIBUTE_NAMES, CLASS_INDEX, MASK_CLASSES
from .splits import identity_test_mask

log = logging.getLogger(__name__)

# Prevalence of each attribute that carries signal. Every other column is drawn with p = 0.5 and
# changes no pixel (present in the file, unlearnable by design).
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
PAIR_ATTRIBUTES: dict[str, str] = {"Eyeglasses": "eyes", "Big_Nose": "nose", "Smiling": "mouth",
                                   "Wearing_Hat": "hat", "Bangs": "hair"}
PAIRS_FILE = "synthetic-pairs.txt"


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


# ----------------------------------------------------------------------------- random draws


def draw_identity(rng: np.random.Generator) -> dict:
    """Geometry and colours that stay fixed for one person."""
    tone = rng.uniform(0.25, 1.0)
    skin = np.array([0.95, 0.78, 0.65]) * (0.45 + 0.55 * tone) + rng.normal(0, 0.02, 3)
    hair_palette = np.array([[0.08, 0.06, 0.05], [0.35, 0.22, 0.12], [0.75, 0.6, 0.35],
                             [0.55, 0.25, 0.1], [0.6, 0.6, 0.6], [0.2, 0.15, 0.1]])
    hair = hair_palette[rng.integers(len(hair_palette))] * rng.uniform(0.85, 1.15)
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
    """Independent draws: 1 / -1 per CelebA attribute; only SIGNAL_ATTRIBUTES change pixels."""
    p = np.full(len(ATTRIBUTE_NAMES), 0.5)
    for name, prevalence in SIGNAL_ATTRIBUTES.items():
        p[ATTRIBUTE_INDEX[name]] = prevalence
    return np.where(rng.random(len(ATTRIBUTE_NAMES)) < p, 1, -1).astype(np.int8)


# ----------------------------------------------------------------------------- geometry


def face_coordinates(scene: dict, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) face-frame coordinates of the centres of a size x size pixel grid."""
    centres = (np.arange(size) + 0.5) / size
    x, y = np.meshgrid(centres, centres)
    dx, dy = (x - scene["cx"]) / scene["scale"], (y - scene["cy"]) / scene["scale"]
    t = math.radians(scene["roll"])
    return math.cos(t) * dx + math.sin(t) * dy, -math.sin(t) * dx + math.cos(t) * dy


def _ellipse(u, v, cu, cv, a, b, power=2.0):
    return np.abs((u - cu) / a) ** power + np.abs((v - cv) / b) ** power <= 1.0


class FaceShapes:
    """Every part's geometry for one (identity, scene, attributes); evaluated on any (u, v) grid."""

    def __init__(self, identity: dict, scene: dict, attributes: np.ndarray):
        self.p = identity
        self.s = scene
        self.a = {name: bool(attributes[ATTRIBUTE_INDEX[name]] > 0) for name in SIGNAL_ATTRIBUTES}
        # yaw / pitch move the inner features across the face oval
        self.du = 0.22 * math.sin(math.radians(scene["yaw"]))
        self.dv = 0.15 * math.sin(math.radians(scene["pitch"]))

    # --- parts in the face frame
    def face(self, u, v):
        p = self.p
        half_width = p["face_w"] * (1 - 0.25 * p["jaw"] * np.clip(v, 0, 1) ** 2)
        return (u / half_width) ** 2 + v**2 <= 1.0

    def eye_centre(self, side):
        return side * self.p["eye_dx"] + self.du, self.p["eye_y"] + self.dv

    def eye(self, u, v, side):
        cu, cv = self.eye_centre(side)
        return _ellipse(u, v, cu, cv, self.p["eye_a"], self.p["eye_b"])

    def brow_centre_line(self, u, side):
        cu, cv = self.eye_centre(side)
        t = np.clip((u - cu) / 0.18, -1, 1)
        return cv - self.p["brow_gap"] - 0.035 * self.p["brow_arch"] * (1 - t**2)

    def brow(self, u, v, side):
        cu, _ = self.eye_centre(side)
        return (np.abs(u - cu) <= 0.18) & (np.abs(v - self.brow_centre_line(u, side)) <= 0.045)

    def glasses_lens(self, u, v, side):
        cu, cv = self.eye_centre(side)
        return _ellipse(u, v, cu, cv + 0.01, 0.205, 0.135, power=4)

    def glasses(self, u, v):
        if not self.a["Eyeglasses"]:
            return np.zeros(np.shape(u), bool)
        lenses = self.glasses_lens(u, v, -1) | self.glasses_lens(u, v, 1)
        _, cv = self.eye_centre(1)
        bridge = (np.abs(u - self.du) <= self.p["eye_dx"] - 0.15) & (np.abs(v - cv + 0.04) <= 0.02)
        return lenses | bridge

    def nose_span(self, v):
        top = self.p["eye_y"] + 0.04 + self.dv
        t = np.clip((v - top) / self.p["nose_len"], 0, 1)
        inside = (v >= top) & (v <= top + self.p["nose_len"])
        return inside, self.p["nose_w"] * (0.35 + 0.65 * t**1.5), t

    def nose(self, u, v):
        inside, half_width, _ = self.nose_span(v)
        return inside & (np.abs(u - 1.1 * self.du) <= half_width)

    def lips_centre(self):
        return 1.1 * self.du, self.p["mouth_y"] + self.dv

    def lips(self, u, v):
        cu, cv = self.lips_centre()
        return _ellipse(u, v, cu, cv, self.p["mouth_w"], self.p["mouth_h"], power=2.4)

    def lip_line(self, u):
        cu, cv = self.lips_centre()
        un = np.clip((u - cu) / self.p["mouth_w"], -1, 1)
        curve = 0.1 * (0.45 - un**2) if self.a["Smiling"] else 0.01 * (1 - un**2)
        return cv + curve

    def mouth_opening(self, u, v):
        if not self.a["Mouth_Slightly_Open"]:
            return np.zeros(np.shape(u), bool)
        cu, _ = self.lips_centre()
        un = np.clip((u - cu) / (0.85 * self.p["mouth_w"]), -1, 1)
        half_height = 0.045 * np.sqrt(1 - un**2)
        return self.lips(u, v) & (np.abs(v - self.lip_line(u)) < half_height)

    def ear(self, u, v, side):
        size = self.p["ear_size"]
        cu = side * (self.p["face_w"] + 0.03) - 0.6 * self.du
        return _ellipse(u, v, cu, -0.02 + 0.5 * self.dv, 0.1 * size, 0.2 * size) & ~self.face(u, v)

    def earrings(self, u, v):
        if not self.a["Wearing_Earrings"]:
            return np.zeros(np.shape(u), bool)
        out = np.zeros(np.shape(u), bool)
        for side in (-1, 1):
            cu = side * (self.p["face_w"] + 0.03) - 0.6 * self.du
            cv = 0.2 * self.p["ear_size"] + 0.5 * self.dv + 0.03
            out |= _ellipse(u, v, cu, cv + 0.09, 0.085, 0.13) & ~self.face(u, v)
        return out

    def bangs(self, u, v):
        fringe = self.p["hair_line"] + 0.28 + 0.03 * np.sin(40 * u + self.s["fringe_phase"])
        return self.face(u, v) & (v < fringe)

    def hair(self, u, v):
        head = _ellipse(u, v, 0.0, -0.1, self.p["face_w"] + 0.14, 1.14)
        bottom = 0.95 if self.p["long_hair"] else -0.15
        sides = head & (v < bottom)
        if self.p["long_hair"]:
            sides |= (np.abs(u) <= self.p["face_w"] + 0.16) & (v >= -0.2) & (v < bottom)
        out = sides & ~self.face(u, v)
        out |= self.face(u, v) & (v < self.p["hair_line"])
        if self.a["Bangs"]:
            out |= self.bangs(u, v)
        return out

    def hat(self, u, v):
        if not self.a["Wearing_Hat"]:
            return np.zeros(np.shape(u), bool)
        crown = _ellipse(u, v, 0.0, -0.8, self.p["face_w"] + 0.1, 0.52) & (v < -0.62)
        brim = (np.abs(v + 0.64) <= 0.05) & (np.abs(u) <= self.p["face_w"] + 0.24)
        return crown | brim

    def necklace_curve(self, u):
        return 0.98 + 0.16 * (1 - np.clip(u / 0.3, -1, 1) ** 2)

    def necklace(self, u, v):
        if not self.a["Wearing_Necklace"]:
            return np.zeros(np.shape(u), bool)
        chain = (np.abs(v - self.necklace_curve(u)) <= 0.035) & (np.abs(u) <= 0.3)
        pendant = _ellipse(u, v, 0.0, 1.2, 0.07, 0.08)
        return (chain | pendant) & ~self.face(u, v)

    def neck(self, u, v):
        column = (np.abs(u - 0.3 * self.du) <= 0.3) & (v >= 0.3) & (v <= 2.2)
        return column & ~self.face(u, v) & ~self.necklace(u, v)

    def cloth(self, u, v):
        return v >= 1.32 + 0.3 * np.clip(1 - np.abs(u) / 0.3, 0, 1)

    def class_masks(self, u, v) -> dict[str, np.ndarray]:
        """Boolean mask per class name, as annotators would draw them (overlaps included)."""
        lips = self.lips(u, v)
        opening = self.mouth_opening(u, v)
        line = self.lip_line(u)
        return {
            "skin": self.face(u, v),
            "nose": self.nose(u, v),
            "eye_g": self.glasses(u, v),
            "l_eye": self.eye(u, v, -1),
            "r_eye": self.eye(u, v, 1),
            "l_brow": self.brow(u, v, -1),
            "r_brow": self.brow(u, v, 1),
            "l_ear": self.ear(u, v, -1),
            "r_ear": self.ear(u, v, 1),
            "mouth": opening,
            "u_lip": lips & (v < line) & ~opening,
            "l_lip": lips & (v >= line) & ~opening,
            "hair": self.hair(u, v),
            "hat": self.hat(u, v),
            "ear_r": self.earrings(u, v),
            "neck_l": self.necklace(u, v),
            "neck": self.neck(u, v),
            "cloth": self.cloth(u, v),
        }


def fuse_class_masks(masks: dict[str, np.ndarray]) -> np.ndarray:
    """Paint masks in the official class order (later wins); 0 = background."""
    shape = next(iter(masks.values())).shape
    labels = np.zeros(shape, np.uint8)
    for name in MASK_CLASSES:
        if name in masks:
            labels[masks[name]] = CLASS_INDEX[name]
    return labels


# ----------------------------------------------------------------------------- rendering


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    grid = rng.normal(0, 1, (cells + 1, cells + 1))
    return ndimage.zoom(grid, size / (cells + 1), order=1)[:size, :size]


def render_face(identity: dict, scene: dict, attributes: np.ndarray, size: int,
                shortcut_tint: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Render one face: (float RGB image in [0, 1] (size, size, 3), fused label map (size, size)).

    Deterministic: all randomness comes from scene["noise_seed"], drawn independently of the
    attributes, so two renders that differ in one attribute differ only where it acts.
    """
    shapes = FaceShapes(identity, scene, attributes)
    u, v = face_coordinates(scene, size)
    labels = fuse_class_masks(shapes.class_masks(u, v))
    rng = np.random.default_rng(scene["noise_seed"])
    blotch = _smooth_noise(rng, size, 6)
    fine = rng.normal(0, 1, (size, size))
    strands = np.sin(55 * u + 3 * _smooth_noise(rng, size, 10))

    skin = np.array(identity["skin"])
    hair = np.array(identity["hair"])
    img = np.zeros((size, size, 3))

    def paint(name, colour):
        sel = labels == CLASS_INDEX[name]
        if sel.any():
            img[sel] = colour(sel)

    # background: a two-colour gradient, plus the shortcut tint when asked for
    def background(sel):
        direction = math.cos(scene["bg_angle"]) * u[sel] + math.sin(scene["bg_angle"]) * v[sel]
        t = np.clip(0.5 + 0.25 * direction, 0, 1)[:, None]
        c0, c1 = np.array(scene["bg"])
        out = (1 - t) * c0 + t * c1 + 0.03 * blotch[sel][:, None]
        if shortcut_tint:
            out = 0.55 * out + 0.45 * np.array([0.15, 0.75, 0.3])
        return out

    def skin_at(sel, shade=1.0):
        radius = np.sqrt((u[sel] / identity["face_w"]) ** 2 + v[sel] ** 2)
        falloff = 1 - 0.18 * np.clip(radius, 0, 1.2) ** 4
        return skin * (shade * falloff * (1 + 0.04 * blotch[sel]))[:, None]

    paint("background", background)
    paint("skin", skin_at)

    def nose(sel):
        inside, half_width, t = shapes.nose_span(v[sel])
        drawn = half_width * (1.0 if shapes.a["Big_Nose"] else 0.5)
        off = np.abs(u[sel] - 1.1 * shapes.du)
        edge = np.exp(-(((off - drawn) / 0.018) ** 2))
        depth = 0.45 if shapes.a["Big_Nose"] else 0.15
        out = skin_at(sel) * (1 - depth * edge * t)[:, None]
        # nostrils near the bottom of the drawn nose
        nostril_w = 0.07 if shapes.a["Big_Nose"] else 0.025
        bottom = np.abs(t - 0.88) < (0.1 if shapes.a["Big_Nose"] else 0.06)
        nostril = bottom & (np.abs(off - 0.6 * drawn) < nostril_w)
        out[nostril] *= 0.35
        return out

    paint("nose", nose)

    def glasses(sel):
        lens = shapes.glasses_lens(u[sel], v[sel], -1) | shapes.glasses_lens(u[sel], v[sel], 1)
        inner = np.zeros_like(lens)
        for side in (-1, 1):
            cu, cv = shapes.eye_centre(side)
            inner |= _ellipse(u[sel], v[sel], cu, cv + 0.01, 0.175, 0.11, power=4)
        out = np.tile(np.array(scene["frame"]), (sel.sum(), 1))
        glass = lens & inner
        out[glass] = skin_at(sel)[glass] * np.array([0.85, 0.9, 1.0]) + 0.05
        return out

    paint("eye_g", glasses)

    def eye(side):
        def colour(sel):
            cu, cv = shapes.eye_centre(side)
            du, dv = u[sel] - cu, v[sel] - cv
            out = np.tile(np.array([0.93, 0.92, 0.9]), (sel.sum(), 1))
            gu, gv = scene["gaze"]
            iris_r = identity["eye_b"] * 0.95
            dist = np.hypot(du - gu * 0.04, dv - gv * 0.01)
            out[dist < iris_r] = identity["iris"]
            out[dist < iris_r * 0.45] = 0.03
            # eyelids: narrow eyes close the lids over more of the eye
            closed = 0.42 if shapes.a["Narrow_Eyes"] else 0.1
            top = -identity["eye_b"] + 2 * identity["eye_b"] * closed
            lid = dv < top
            out[lid] = skin_at(sel, 0.85)[lid]
            lash = np.abs(dv - top) < 0.012
            out[lash] = 0.05
            if shapes.a["Eyeglasses"]:
                out = out * np.array([0.85, 0.9, 1.0]) + 0.05
            return out

        return colour

    paint("l_eye", eye(-1))
    paint("r_eye", eye(1))

    def brow(side):
        def colour(sel):
            out = skin_at(sel)
            off = np.abs(v[sel] - shapes.brow_centre_line(u[sel], side))
            width = 0.045 if shapes.a["Bushy_Eyebrows"] else 0.014
            hairs = off <= width
            tex = 0.8 + 0.2 * strands[sel][:, None]
            out[hairs] = (0.6 * hair * tex + 0.02)[hairs]
            return out

        return colour

    paint("l_brow", brow(-1))
    paint("r_brow", brow(1))
    paint("l_ear", lambda sel: skin_at(sel, 0.9))
    paint("r_ear", lambda sel: skin_at(sel, 0.9))

    def mouth(sel):
        out = np.tile(np.array([0.25, 0.05, 0.06]), (sel.sum(), 1))
        if shapes.a["Smiling"]:
            teeth = v[sel] < shapes.lip_line(u[sel]) + 0.005
            out[teeth] = [0.95, 0.93, 0.88]
        return out

    lip = np.array(identity["lip"])
    paint("mouth", mouth)
    def lips(shade):
        def colour(sel):
            out = np.tile(lip * shade, (sel.sum(), 1)) * (1 + 0.03 * blotch[sel])[:, None]
            crease = np.abs(v[sel] - shapes.lip_line(u[sel])) < 0.015  # the line between the lips
            out[crease] *= 0.35
            return out

        return colour

    paint("u_lip", lips(0.9))
    paint("l_lip", lips(1.0))
    paint("hair", lambda sel: hair * (0.8 + 0.2 * strands[sel] + 0.05 * blotch[sel])[:, None])

    def hat(sel):
        colour = np.array(scene["hat"])
        band = np.abs(v[sel] + 0.7) < 0.03
        out = np.tile(colour, (sel.sum(), 1)) * (0.9 + 0.05 * blotch[sel])[:, None]
        out[band] = colour[::-1] * 0.6
        return out

    paint("hat", hat)

    def metal(sel):
        glint = np.clip(1.2 - 0.8 * np.abs(fine[sel]), 0.5, 1.2)
        return np.array(scene["metal"]) * glint[:, None]

    paint("ear_r", metal)
    paint("neck_l", metal)
    paint("neck", lambda sel: skin_at(sel, 0.85))

    def cloth(sel):
        colour = np.array(scene["cloth"])
        out = np.tile(colour, (sel.sum(), 1))
        if scene["cloth_stripes"]:
            stripe = (np.floor(u[sel] * 8) % 2 == 0)
            out[stripe] *= 0.7
        return out

    paint("cloth", cloth)

    # lighting and sensor noise act on the whole photo, identically for any attribute values
    x = (np.arange(size) + 0.5) / size - 0.5
    gx, gy = np.meshgrid(x, x)
    light = scene["brightness"] * (1 + scene["light_strength"]
                                   * (math.cos(scene["light_angle"]) * gx + math.sin(scene["light_angle"]) * gy))
    img = img * light[..., None] + 0.012 * fine[..., None]
    return np.clip(img, 0, 1), labels


# ----------------------------------------------------------------------------- writing the layout


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
    tint = False
    if cfg.shortcut_attribute is not None:
        positive = attributes[ATTRIBUTE_INDEX[cfg.shortcut_attribute]] > 0
        if plan["test"][i]:
            tint = bool(rng.random() < 0.5)  # de-correlated in the test split
        else:
            agree = rng.random() < cfg.shortcut_strength
            tint = bool(positive == agree)
    return identity, scene, attributes, tint


def _mask_image(mask: np.ndarray, rng: np.random.Generator, odd_fraction: float) -> Image.Image:
    """A mask as CelebAMask-HQ stores it: mostly grey 0/255, some RGB or other non-zero values."""
    if rng.random() < odd_fraction:
        if rng.random() < 0.5:
            return Image.fromarray(np.repeat(mask[..., None] * np.uint8(255), 3, axis=2), "RGB")
        return Image.fromarray(mask.astype(np.uint8) * np.uint8(rng.integers(1, 255)), "L")
    return Image.fromarray(mask.astype(np.uint8) * np.uint8(255), "L")


def _write_sample(args) -> tuple[int, np.ndarray, bool, np.ndarray]:
    cfg, plan, i, root = args
    identity, scene, attributes, tint = _sample(cfg, plan, i)
    image, _ = render_face(identity, scene, attributes, cfg.image_size, shortcut_tint=tint)
    Image.fromarray((image * 255 + 0.5).astype(np.uint8)).save(
        root / "CelebA-HQ-img" / f"{i}.jpg", quality=cfg.jpeg_quality)
    u, v = face_coordinates(scene, cfg.mask_size)
    masks = FaceShapes(identity, scene, attributes).class_masks(u, v)
    folder = root / "CelebAMask-HQ-mask-anno" / str(i // 2000)
    rng = np.random.default_rng([cfg.seed, 3, i])
    for name in MASK_CLASSES:
        mask = masks[name]
        if mask.any():  # an absent part has no file, as in the real dataset
            _mask_image(mask, rng, cfg.odd_mask_fraction).save(folder / f"{i:05d}_{name}.png")
    pose = np.array([scene["yaw"], scene["pitch"], scene["roll"]])
    return i, attributes, tint, pose


def generate(cfg: SyntheticConfig, root: str | os.PathLike, progress: bool = True) -> Path:
    """Write a synthetic set in the CelebAMask-HQ layout under `root` (atomically, as a whole)."""
    from tqdm import tqdm

    root = Path(root)
    plan = _plan(cfg)
    with atomic_path(root) as tmp:
        (tmp / "CelebA-HQ-img").mkdir(parents=True)
        for folder in range((cfg.total - 1) // 2000 + 1):
            (tmp / "CelebAMask-HQ-mask-anno" / str(folder)).mkdir(parents=True)
        attributes = np.zeros((cfg.total, len(ATTRIBUTE_NAMES)), np.int8)
        pose = np.zeros((cfg.total, 3))
        tints = np.zeros(cfg.total, bool)
        jobs = [(cfg, plan, i, tmp) for i in range(cfg.total)]
        if cfg.workers > 1:
            with ProcessPoolExecutor(cfg.workers) as pool:
                results = pool.map(_write_sample, jobs, chunksize=16)
                for i, attr, tint, p in tqdm(results, total=cfg.total, disable=not progress,
                                             desc="synthetic faces", mininterval=2):
                    attributes[i], tints[i], pose[i] = attr, tint, p
        else:
            for job in tqdm(jobs, disable=not progress, desc="synthetic faces", mininterval=2):
                i, attr, tint, p = _write_sample(job)
                attributes[i], tints[i], pose[i] = attr, tint, p
        _write_annotations(tmp, cfg, plan, attributes, pose)
        settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "workers"}  # no effect on output
        meta = {"generator": "facexai.data.synthetic", "config": settings,
                "signal_attributes": SIGNAL_ATTRIBUTES,
                "shortcut_tint": tints.astype(int).tolist(),
                "test_split": plan["test"].astype(int).tolist()}
        (tmp / "synthetic-meta.json").write_text(json.dumps(meta))
    return root


def _write_annotations(root: Path, cfg: SyntheticConfig, plan: dict, attributes: np.ndarray,
                       pose: np.ndarray) -> None:
    n = cfg.total
    lines = [str(n), " ".join(ATTRIBUTE_NAMES)]
    lines += [f"{i}.jpg  " + " ".join(str(int(x)) for x in attributes[i]) for i in range(n)]
    (root / "CelebAMask-HQ-attribute-anno.txt").write_text("\n".join(lines) + "\n")
    lines = [str(n), "Yaw Pitch Roll"]
    lines += [f"{i}.jpg {pose[i, 0]:.4f} {pose[i, 1]:.4f} {pose[i, 2]:.4f}" for i in range(n)]
    (root / "CelebAMask-HQ-pose-anno.txt").write_text("\n".join(lines) + "\n")
    lines = ["idx orig_idx orig_file"]
    lines += [f"{i} {plan['orig_idx'][i]} {plan['orig_idx'][i] + 1:06d}.jpg" for i in range(n)]
    (root / "CelebA-HQ-to-CelebA-mapping.txt").write_text("\n".join(lines) + "\n")
    lines = ["id_a id_b region attribute"]
    lines += [f"{plan['pair_base'][k]} {cfg.n_images + k} {PAIR_ATTRIBUTES[a]} {a}"
              for k, a in enumerate(plan["pair_attribute"])]
    (root / PAIRS_FILE).write_text("\n".join(lines) + "\n")
    identity = plan["celeba_identity"][plan["owner"]]
    order = np.argsort(plan["orig_idx"])  # CelebA's identity file is sorted by file name
    lines = [f"{plan['orig_idx'][i] + 1:06d}.jpg {identity[i]}" for i in order]
    (root / "identity_CelebA.txt").write_text("\n".join(lines) + "\n")
