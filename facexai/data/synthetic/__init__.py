"""Procedural faces with per-part masks, written in the exact CelebAMask-HQ on-disk layout.

Modules: sampling (random draws), geometry (part shapes and masks), rendering (the image),
writer (the CelebAMask-HQ layout).

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

from .geometry import FaceShapes, face_coordinates, fuse_class_masks  # noqa: F401
from .rendering import render_face  # noqa: F401
from .sampling import (CELEBA_SIZE, PAIR_ATTRIBUTES, SIGNAL_ATTRIBUTES, SyntheticConfig, _plan,  # noqa: F401
                       _sample, draw_attributes, draw_identity, draw_scene)
from .writer import META_FILE, PAIRS_FILE, generate  # noqa: F401
