"""The label scheme: class order, attribute names and the default region tables.

This module is the one place these constants live; the HDF5 files store them again as attributes
so that a file can be read without the package.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

# CelebAMask-HQ class indices, in the dataset authors' fusion order: a later class overwrites an
# earlier one where masks overlap. Index 0 (background) has no mask file.
CLASS_NAMES: tuple[str, ...] = (
    "background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear",
    "r_ear", "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth",
)
CLASS_INDEX: dict[str, int] = {name: i for i, name in enumerate(CLASS_NAMES)}
MASK_CLASSES: tuple[str, ...] = CLASS_NAMES[1:]

# The 40 CelebA attributes, in the column order of CelebAMask-HQ-attribute-anno.txt.
ATTRIBUTE_NAMES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones",
    "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin",
    "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair",
    "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace",
    "Wearing_Necktie", "Young",
)
ATTRIBUTE_INDEX: dict[str, int] = {name: i for i, name in enumerate(ATTRIBUTE_NAMES)}

DEFAULT_REGIONS: dict[str, tuple[str, ...]] = {
    "eyes": ("l_brow", "r_brow", "l_eye", "r_eye", "eye_g"),
    "nose": ("nose",),
    "mouth": ("mouth", "u_lip", "l_lip"),
    "ears": ("l_ear", "r_ear", "ear_r"),
    "face": ("skin", "l_brow", "r_brow", "l_eye", "r_eye", "nose", "mouth", "u_lip", "l_lip"),
    "accessories": ("eye_g", "ear_r", "neck_l", "hat"),
    "hair": ("hair",),
    "hat": ("hat",),
    "glasses": ("eye_g",),
    "earrings": ("ear_r",),
    "necklace": ("neck_l",),
    "background": ("background",),
}

# A partition of the fused classes (every pixel in exactly one part), for "where does a map's mass go".
MASS_PARTS: dict[str, tuple[str, ...]] = {
    "background": ("background",), "skin": ("skin",), "eyes": ("l_brow", "r_brow", "l_eye", "r_eye", "eye_g"),
    "nose": ("nose",), "mouth": ("mouth", "u_lip", "l_lip"), "ears": ("l_ear", "r_ear", "ear_r"),
    "hair": ("hair",), "hat": ("hat",), "neck & cloth": ("neck", "neck_l", "cloth"),
}

# Attribute -> the region expected to drive its decision (docs/definitions.md, Label scheme).
DEFAULT_ATTRIBUTE_REGIONS: dict[str, str] = {
    "Eyeglasses": "eyes",
    "Smiling": "mouth",
    "Mouth_Slightly_Open": "mouth",
    "Big_Lips": "mouth",
    "Wearing_Lipstick": "mouth",
    "Big_Nose": "nose",
    "Pointy_Nose": "nose",
    "Wearing_Hat": "hat",
    "Wearing_Earrings": "earrings",
    "Wearing_Necklace": "necklace",
    "Bangs": "hair",
    "Black_Hair": "hair",
    "Blond_Hair": "hair",
    "Brown_Hair": "hair",
    "Gray_Hair": "hair",
    "Bushy_Eyebrows": "eyes",
    "Arched_Eyebrows": "eyes",
    "Narrow_Eyes": "eyes",
    "Bags_Under_Eyes": "eyes",
}


def region_class_indices(region: str, regions: Mapping[str, Sequence[str]]) -> list[int]:
    """Class indices that make up `region`, looked up by class NAME in a region table."""
    if region not in regions:
        raise KeyError(f"region {region!r} is not defined (known: {sorted(regions)})")
    out = []
    for name in regions[region]:
        if name not in CLASS_INDEX:
            raise KeyError(f"region {region!r} names unknown class {name!r} (known: {list(CLASS_NAMES)})")
        out.append(CLASS_INDEX[name])
    return out


def region_masks(labels: np.ndarray, regions_of_rows: list[str], regions: Mapping[str, Sequence[str]]) -> np.ndarray:
    """Boolean (N, M, M): for each row, the pixels whose fused class belongs to that row's region."""
    out = np.zeros(labels.shape, bool)
    for region in set(regions_of_rows):
        sel = np.array([r == region for r in regions_of_rows])
        out[sel] = np.isin(labels[sel], region_class_indices(region, regions))
    return out


def validate_region_tables(regions: Mapping[str, Sequence[str]],
                           attribute_regions: Mapping[str, str]) -> None:
    """Raise a ValueError naming the config key when a region table is inconsistent."""
    for region, classes in regions.items():
        for name in classes:
            if name not in CLASS_INDEX:
                raise ValueError(f"config regions.{region}: unknown class {name!r}; "
                                 f"classes are {list(CLASS_NAMES)}")
    for attribute, region in attribute_regions.items():
        if attribute not in ATTRIBUTE_INDEX:
            raise ValueError(f"config attribute_regions.{attribute}: unknown attribute; "
                             f"attributes are the 40 CelebA names")
        if region not in regions:
            raise ValueError(f"config attribute_regions.{attribute}: region {region!r} is not "
                             f"defined under regions")
