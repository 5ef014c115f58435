"""dlib's frontal face detector and its 5- and 68-point shape predictors: a photo's one face as
dlib.get_face_chip's chip, with the 68 landmarks mapped into the chip by the chip's own affine map."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

# the frontal detector's smallest face, in pixels of the image it runs on (its 80x80 HOG window)
DETECTOR_MIN_FACE = 80


@dataclass(frozen=True)
class AlignSettings:
    chip_size: int = 512
    padding: float = 0.5
    detect_size: int = 512
    min_score: float = 0.3
    mask_size: int = 512
    jpeg_quality: int = 95

    @classmethod
    def from_config(cls, photos: dict, mask_size: int) -> "AlignSettings":
        return cls(chip_size=int(photos["chip_size"]), padding=float(photos["padding"]),
                   detect_size=int(photos["detect_size"]), min_score=float(photos["min_score"]),
                   mask_size=int(mask_size), jpeg_quality=int(photos.get("jpeg_quality", 95)))


class PhotoProblem(Exception):
    """A photo that cannot become a sample (no face, several faces, undecodable)."""


def chip_affine(details) -> np.ndarray:
    """The 2x3 affine map from photo pixels (x, y) to chip pixels of a dlib chip_details, the map
    dlib's extract_image_chip samples with (its get_mapping_to_chip): the rectangle's corners,
    rotated by `angle` about its centre, go to the chip's corners."""
    rect = details.rect
    cx, cy = (rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2
    c, s = math.cos(details.angle), math.sin(details.angle)

    def rotated(x, y):
        dx, dy = x - cx, y - cy
        return cx + c * dx - s * dy, cy + s * dx + c * dy

    src = np.array([rotated(rect.left(), rect.top()), rotated(rect.right(), rect.top()),
                    rotated(rect.right(), rect.bottom())])
    dst = np.array([[0, 0], [details.cols - 1, 0], [details.cols - 1, details.rows - 1]], np.float64)
    a = np.hstack([src, np.ones((3, 1))])
    return np.linalg.solve(a, dst).T  # rows: x' = m[0] . (x, y, 1), y' = m[1] . (x, y, 1)


def apply_affine(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, np.float64)
    return points @ m[:, :2].T + m[:, 2]


@dataclass
class AlignedFace:
    chip: np.ndarray        # uint8 (chip_size, chip_size, 3)
    landmarks: np.ndarray   # float64 (68, 2): x, y in chip pixels
    score: float
    box: tuple[int, int, int, int]   # left, top, right, bottom in photo pixels
    roll: float             # degrees: the in-plane rotation the alignment removed

    @property
    def face_size(self) -> int:
        """The detected face's side in photo pixels (the chip upsamples a face smaller than it)."""
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


class FaceAligner:
    """dlib's detector and shape predictors, loaded once per process."""

    def __init__(self, settings: AlignSettings):
        import dlib

        from ...models.dlib_resnet import default_model_path

        folder = default_model_path().parent
        self.dlib = dlib
        self.settings = settings
        self.detector = dlib.get_frontal_face_detector()
        self.five = dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat"))
        self.sixty_eight = dlib.shape_predictor(str(folder / "shape_predictor_68_face_landmarks.dat"))

    def detect(self, image: np.ndarray) -> list[tuple[object, float]]:
        """Faces scoring at least min_score: (rectangle in photo pixels, score), best first."""
        dlib, s = self.dlib, self.settings
        h, w = image.shape[:2]
        scale = s.detect_size / max(h, w)
        # on grey levels: half the time of RGB (HOG takes the strongest channel's gradient), the same faces
        grey = Image.fromarray(image).convert("L")
        if scale != 1:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            grey = grey.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        rects, scores, _ = self.detector.run(np.asarray(grey), 0, min(0.0, s.min_score))
        found = []
        for r, score in zip(rects, scores):
            if score >= s.min_score:
                box = dlib.rectangle(int(round(r.left() / scale)), int(round(r.top() / scale)),
                                     int(round(r.right() / scale)), int(round(r.bottom() / scale)))
                found.append((box, float(score)))
        return sorted(found, key=lambda f: -f[1])

    def align(self, image: np.ndarray, face) -> AlignedFace:
        dlib, s = self.dlib, self.settings
        box, score = face
        details = dlib.get_face_chip_details(self.five(image, box), s.chip_size, s.padding)
        chip = np.asarray(dlib.extract_image_chip(image, details))
        shape = self.sixty_eight(image, box)
        points = np.array([(p.x, p.y) for p in shape.parts()], np.float64)
        landmarks = apply_affine(chip_affine(details), points)
        return AlignedFace(chip, landmarks, score, (box.left(), box.top(), box.right(), box.bottom()),
                           math.degrees(details.angle))

    def __call__(self, image: np.ndarray) -> AlignedFace:
        faces = self.detect(image)
        if not faces:
            s = self.settings
            smallest = DETECTOR_MIN_FACE * max(image.shape[:2]) / s.detect_size
            raise PhotoProblem(
                f"no face found (detector score >= {s.min_score}; the detector sees the photo at "
                f"{s.detect_size} px on its long side, where it finds faces from about {DETECTOR_MIN_FACE} px, "
                f"i.e. faces from about {smallest:.0f} px in this {image.shape[1]}x{image.shape[0]} photo: "
                "raise photos.detect_size for smaller faces, and give one face per photo)")
        if len(faces) > 1:
            raise PhotoProblem(f"{len(faces)} faces found (scores {', '.join(f'{f[1]:.2f}' for f in faces)}); "
                               "one face per photo")
        return self.align(image, faces[0])
