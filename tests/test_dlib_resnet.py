"""dlib's face-recognition ResNet in PyTorch against dlib's own Python binding, on real photos that ship
inside packages (skimage's astronaut, matplotlib's Grace Hopper)."""

import numpy as np
import pytest
import torch

from facexai.models import dlib_resnet as D

try:
    MODEL_PATH = D.default_model_path()
except FileNotFoundError as exc:
    pytest.skip(f"optional extra not installed ({exc}); CI installs it with pip install '.[dlib]'",
                allow_module_level=True)


def test_integer_and_float_encodings_hand_made(tmp_path):
    # 1 -> 01 01; 300 -> 02 2c 01; -28 -> 81 1c; 0 -> 01 00; float 0.04 = 10737418 * 2^-28
    s = D._Stream(bytes.fromhex("0101 022c01 811c 0100 030ad7a3 811c"), "hand-made")
    assert [s.int(), s.int(), s.int(), s.int()] == [1, 300, -28, 0]
    assert s.float() == pytest.approx(0.04, rel=1e-7)
    with pytest.raises(D.DlibFormatError, match="hand-made: byte 15: unexpected end of file"):
        s.int()


def test_truncated_or_foreign_files_are_named(tmp_path):
    bad = tmp_path / "cut.dat"
    bad.write_bytes(MODEL_PATH.read_bytes()[:50_000])
    with pytest.raises(D.DlibFormatError, match="cut.dat: byte"):
        D.load_dlib_face_resnet(bad)
    other = tmp_path / "other.dat"
    other.write_bytes(b"\x01\x01\x01\x08loss_mmod" + b"\x00" * 10)
    with pytest.raises(D.DlibFormatError, match="expected a loss_metric network"):
        D.load_dlib_face_resnet(other)
    with pytest.raises(FileNotFoundError, match="missing.dat: dlib model file not found"):
        D.load_dlib_face_resnet(tmp_path / "missing.dat")


def test_architecture_read_from_the_file():
    model = D.load_dlib_face_resnet()
    assert [len(level) for level in model.levels] == [3, 4, 3, 3, 1]  # 14 residual blocks: ResNet-29
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) == 29
    shapes = []
    hooks = [level.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:]))) for level in model.levels]
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 150, 150))
    for h in hooks:
        h.remove()
    assert out.shape == (1, 128)
    assert shapes == [(32, 35, 35), (64, 17, 17), (128, 8, 8), (256, 4, 4), (256, 2, 2)]
    assert model.cam_layer is model.levels[3]  # the documented Grad-CAM target: 4x4


dlib = pytest.importorskip("dlib", reason="dlib's Python binding (pip install dlib-bin) is needed to compare "
                                          "descriptors; CI installs it")


@pytest.fixture(scope="module")
def chips():
    import matplotlib.cbook
    import skimage.data
    from PIL import Image

    folder = MODEL_PATH.parent
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat"))
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
        hopper = np.asarray(Image.open(fh).convert("RGB"))
    out = {}
    for name, image in {"astronaut": skimage.data.astronaut(), "hopper": hopper}.items():
        faces = detector(image, 1)
        faces = sorted(faces, key=lambda r: -r.area())
        shape = predictor(image, faces[0])
        out[name] = dlib.get_face_chip(image, shape, size=150, padding=0.25)
        out[name + "_tight"] = dlib.get_face_chip(image, shape, size=150, padding=0.1)
    return out


def test_descriptors_equal_dlibs_own(chips):
    reference = dlib.face_recognition_model_v1(str(MODEL_PATH))
    model = D.load_dlib_face_resnet()
    batch = np.stack(list(chips.values()))
    with torch.no_grad():
        ours = model(model.preprocess(batch)).numpy()
    theirs = np.array([np.array(reference.compute_face_descriptor(chip)) for chip in chips.values()])
    assert np.abs(ours - theirs).max() <= 1e-4
    assert np.linalg.norm(theirs, axis=1).min() > 0.1  # a real descriptor, not zeros


def test_same_person_at_two_crops_is_closer_than_two_people(chips):
    model = D.load_dlib_face_resnet()
    with torch.no_grad():
        d = {k: model(model.preprocess(v[None])).numpy()[0] for k, v in chips.items()}
    same_a = np.linalg.norm(d["astronaut"] - d["astronaut_tight"])
    same_h = np.linalg.norm(d["hopper"] - d["hopper_tight"])
    different = np.linalg.norm(d["astronaut"] - d["hopper"])
    assert max(same_a, same_h) < different
    assert different > 0.6 > max(same_a, same_h)  # dlib's own decision threshold
