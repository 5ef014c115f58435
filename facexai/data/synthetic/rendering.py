"""Synthetic faces, rendering: the colour layer of each class, painted where that class wins in the
official fusion order, then lighting and fine noise."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ...labels import CLASS_INDEX
from .geometry import FaceShapes, _ellipse, face_coordinates, fuse_class_masks


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

    paint("l_eye", eye(1))  # the subject's left: the image's right (geometry.class_masks)
    paint("r_eye", eye(-1))

    def brow(side):
        def colour(sel):
            out = skin_at(sel)
            off = np.abs(v[sel] - shapes.brow_centre_line(u[sel], side))
            width = 0.045 if shapes.a["Bushy_Eyebrows"] else 0.014
            hairs = off <= width
            tex = 0.8 + 0.2 * strands[sel][:, None]
            out[hairs] = (0.85 * hair * tex + 0.02)[hairs]
            return out

        return colour

    paint("l_brow", brow(1))
    paint("r_brow", brow(-1))
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
