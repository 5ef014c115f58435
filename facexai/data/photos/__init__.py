"""Any folder of face photos as a CelebAMask-HQ layout: dlib finds and aligns the face, its 68
landmarks give the part masks (facexai/data/landmark_masks.py).

Folder (`dataset_root`):
    any/sub/folders/*.jpg, *.png, ...    the photos (PHOTO_EXTENSIONS; any size, 8 or 16 bits; EXIF
                                         orientation applied)
    identities.tsv (optional)            "file<TAB>identity" (file relative to the root, or a bare
                                         file name when unique); without it, a photo in a
                                         sub-folder belongs to the identity named by that folder
                                         (the LFW layout), and a photo at the top level is its own
    attributes.txt (optional)            CelebA's attribute table (list_attr_celeba.txt format:
                                         count / 40 names / "file v1 .. v40", v in {1, -1})

Per photo: the frontal detector runs on a grey-level copy whose long side is `detect_size` (it sees
faces from about 80 px there, i.e. 80 x long side / detect_size px in the photo; faces scoring below
`min_score` are ignored: dlib's raw threshold 0 finds false faces in textures, scoring 0.1-0.2 on
scikit-image's astronaut photo, where the real face scores 1.5); exactly one face must remain.
The 5-point shape predictor on the full-resolution photo gives
`dlib.get_face_chip_details(shape, chip_size, padding)` and the chip is cut with
`dlib.extract_image_chip`, i.e. exactly `dlib.get_face_chip`. The 68-point predictor, also run
on the full-resolution photo, gives landmarks that are mapped into the chip with the chip's own
affine transform, then drawn as masks.

Written per shard (a directory): CelebA-HQ-img/{id}.jpg, CelebAMask-HQ-mask-anno/{id//2000}/
{id:05d}_{class}.png and shard.tsv (one row per photo: id, file, status, problem, score, box,
roll). `assemble_layout` then writes the annotation files the CelebAMask-HQ reader reads.

Modules, one job each: `folder` (the photo files and the folder's tables), `decode` (any image file as
RGB uint8), `align` (dlib's detector and predictors: the chip and its landmarks), `shards` (a shard
of photos aligned, in a process pool, into sample files and a manifest), `layout` (the shards joined
into the layout the CelebAMask-HQ reader reads).
"""
