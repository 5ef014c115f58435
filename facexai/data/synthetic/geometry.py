"""Synthetic faces, geometry: every part is a shape in a face-centred frame (u to the right, v down,
face half-height 1); a pixel maps to (u, v) through the image's pose. Masks are the shapes on the
mask grid, the image the same shapes on the image grid."""

from __future__ import annotations

import math

import numpy as np

from ...labels import ATTRIBUTE_INDEX, CLASS_INDEX, MASK_CLASSES
from .sampling import SIGNAL_ATTRIBUTES


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
            # l_ / r_ are the subject's left and right, as CelebAMask-HQ has them: the subject's left
            # eye is on the image's right (side +1, u grows to the image's right)
            "l_eye": self.eye(u, v, 1),
            "r_eye": self.eye(u, v, -1),
            "l_brow": self.brow(u, v, 1),
            "r_brow": self.brow(u, v, -1),
            "l_ear": self.ear(u, v, 1),
            "r_ear": self.ear(u, v, -1),
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
