"""A small folder of real face photos from public-domain images that installed packages ship:
scikit-image's `astronaut` (Eileen Collins, NASA) and matplotlib's `grace_hopper.jpg` (US Navy).
Each is written as found and as a second photo of the same person: mirrored and re-lit (a
left-to-right light gradient and a gamma change). identities.tsv names the two people.

    python -m facexai.data.demo_photos photos-demo
    snakemake --cores all --configfile config/photos.yaml --config dataset_root=photos-demo

Nothing is downloaded; the folder is made on the fly (tests build it the same way).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

PEOPLE = ("astronaut", "grace_hopper")


def source_photo(name: str) -> np.ndarray:
    """RGB uint8 of a packaged public-domain photo."""
    if name == "astronaut":
        from skimage import data

        return np.asarray(data.astronaut(), np.uint8)
    if name == "grace_hopper":
        import matplotlib.cbook

        with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as im:
            return np.asarray(im.convert("RGB"), np.uint8)
    raise ValueError(f"unknown demo photo {name!r} (known: {PEOPLE})")


def relit_mirror(image: np.ndarray, gamma: float = 1.3, low: float = 0.65) -> np.ndarray:
    """Mirror left-right, then light falling from 1 (left) to `low` (right) and a gamma change."""
    flipped = image[:, ::-1].astype(np.float64) / 255.0
    ramp = np.linspace(1.0, low, image.shape[1])[None, :, None]
    return np.clip(255.0 * (flipped ** gamma) * ramp + 0.5, 0, 255).astype(np.uint8)


def write_demo_folder(out: str | Path, upscale: int | None = None) -> list[str]:
    """Write the demo folder (4 photos and identities.tsv); `upscale` resizes each photo's long side
    (e.g. 1024 for speed measurements on CelebA-HQ-sized photos). Returns the photo names."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in PEOPLE:
        image = source_photo(name)
        for suffix, photo in (("", image), ("_mirrored_relit", relit_mirror(image))):
            im = Image.fromarray(photo)
            if upscale:
                scale = upscale / max(im.size)
                im = im.resize((round(im.size[0] * scale), round(im.size[1] * scale)), Image.Resampling.LANCZOS)
            file = f"{name}{suffix}.jpg"
            im.save(out / file, quality=95)
            rows.append((file, name))
    (out / "identities.tsv").write_text("".join(f"{f}\t{n}\n" for f, n in rows))
    return [f for f, _ in rows]


if __name__ == "__main__":
    from ..cli import main

    sys.exit(main(["demo-photos", *sys.argv[1:]]))
