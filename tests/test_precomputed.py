"""Maps made elsewhere as a named method (facexai/attributions/precomputed.py): read, checked, and
scored through the workflow exactly as facexai.evaluate scores them."""


import h5py
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import facexai
from facexai.attributions import ClassTask, get_method
from facexai.attributions.precomputed import PrecomputedMaps, read_source
from facexai.config import check_config
from facexai.errors import BadInputError, ConfigError

from conftest import REPO, copy_run, snakemake


def test_the_three_formats_read_alike(tmp_path):
    rng = np.random.default_rng(0)
    maps, ids = rng.random((3, 6, 5)).astype(np.float32), np.array([7, 8, 9])
    np.savez(tmp_path / "m.npz", maps=maps, ids=ids, attributes=np.array(["Smiling", "Smiling", "Bangs"]))
    with h5py.File(tmp_path / "m.h5", "w") as h5:
        h5["maps"], h5["ids"] = maps, ids
        h5["attributes"] = np.array([b"Smiling", b"Smiling", b"Bangs"])
    (tmp_path / "folder").mkdir()
    for k, (i, a) in enumerate(zip(ids, ("Smiling", "Smiling", "Bangs"))):
        np.save(tmp_path / "folder" / f"{i}_{a}.npy", maps[k])
    for source in ("m.npz", "m.h5", "folder"):
        found = read_source(tmp_path / source)
        assert sorted(found) == [(7, "Smiling"), (8, "Smiling"), (9, "Bangs")], source
        np.testing.assert_array_equal(found[(9, "Bangs")], maps[2])


@pytest.mark.parametrize("arrays, message", [
    ({"maps": np.ones((2, 4, 4))}, "no array named 'ids'"),
    ({"maps": np.ones((2, 4)), "ids": np.arange(2)}, r"maps must be \(N, h, w\)"),
    ({"maps": np.ones((2, 4, 4), bool), "ids": np.arange(2)}, "maps must be real numbers, not bool"),
    ({"maps": np.ones((2, 4, 4)), "ids": np.arange(3)}, "ids must be 2 integers"),
    ({"maps": np.stack([np.ones((4, 4)), np.full((4, 4), np.nan)]), "ids": np.array([5, 6])},
     r"sample id\(s\) \[6\] hold NaN"),
    ({"maps": np.ones((2, 4, 4)), "ids": np.array([5, 5])}, "sample id 5 is listed twice"),
    ({"maps": np.ones((1, 4, 4)), "ids": np.array([5]), "attributes": np.array(["Beard"])},
     "not CelebA attributes"),
])
def test_bad_files_are_refused_naming_the_file_and_sample(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(BadInputError, match=f"bad.npz: .*{message}"):
        read_source(tmp_path / "bad.npz")


def test_a_folder_names_attributes_with_digits_and_refuses_one_id_twice(tmp_path):
    np.save(tmp_path / "3_5_o_Clock_Shadow.npy", np.ones((4, 4)))
    np.save(tmp_path / "1.npy", np.ones((4, 4)))
    (tmp_path / "._1.npy").write_bytes(b"macOS metadata")   # hidden files are not maps
    assert sorted(read_source(tmp_path)) == [(1, None), (3, "5_o_Clock_Shadow")]
    np.save(tmp_path / "0001.npy", np.zeros((4, 4)))
    with pytest.raises(BadInputError, match="sample id 1 is listed twice"):
        read_source(tmp_path)


def test_lookup_by_sample_and_attribute_resized_to_the_model(tmp_path):
    per_sample = np.zeros((8, 8), np.float32)
    per_sample[:4] = 1.0
    np.savez(tmp_path / "m.npz", maps=np.stack([per_sample, 2 * per_sample]), ids=np.array([3, 4]),
             attributes=np.array(["Eyeglasses", "Smiling"]))
    np.savez(tmp_path / "n.npz", maps=per_sample[None], ids=np.array([3]))  # one map for every attribute
    method = get_method("mine", {"precomputed": str(tmp_path / "m.npz")})
    assert isinstance(method, PrecomputedMaps) and method.budget() == "precomputed" and not method.recomputable
    method.bind("model", ["Eyeglasses", "Smiling"])
    task = ClassTask(torch.nn.Identity(), torch.tensor([0, 1]))
    maps = method(task, torch.zeros(2, 3, 16, 16), np.array([3, 4]), seed=0)
    assert maps.shape == (2, 16, 16) and maps[0, :6].min() == pytest.approx(1.0) and maps[1].max() == 2.0
    with pytest.raises(BadInputError, match=r"m.npz: no map for sample id 3 \(attribute Smiling\)"):
        method(ClassTask(torch.nn.Identity(), torch.tensor([1])), torch.zeros(1, 3, 16, 16), np.array([3]), 0)
    shared = get_method("mine", {"precomputed": str(tmp_path / "n.npz")}).bind("model", ["Eyeglasses", "Smiling"])
    assert shared(task, torch.zeros(2, 3, 8, 8), np.array([3, 3]), 0).shape == (2, 8, 8)


def _config(**methods):
    with open(f"{REPO}/config/config.yaml") as fh:
        config = yaml.safe_load(fh)
    config["methods"].update(methods)
    config["explain"]["methods"] = ["gradcam", *methods]
    return config


def test_config_check_names_a_missing_maps_file_and_refuses_pair_use(tmp_path):
    with pytest.raises(ConfigError, match=r"methods.mine.precomputed: .*nowhere/resnet.npz \(model resnet\)"):
        check_config(_config(mine={"precomputed": str(tmp_path / "nowhere/{model}.npz")}))
    np.savez(tmp_path / "resnet.npz", maps=np.ones((1, 4, 4)), ids=np.array([0]))
    np.savez(tmp_path / "resnet_biased.npz", maps=np.ones((1, 4, 4)), ids=np.array([0]))
    config = _config(mine={"precomputed": str(tmp_path / "{model}.npz")})
    check_config(config)
    config["verification"]["explain"]["methods"] = ["mine"]
    with pytest.raises(ConfigError, match="verification.explain.methods: 'mine' is a set of precomputed maps"):
        check_config(config)


def _tiny_settings():
    with open(f"{REPO}/config/config.yaml") as fh:
        metrics = yaml.safe_load(fh)["metrics"]
    with open(f"{REPO}/tests/tiny.yaml") as fh:
        tiny = yaml.safe_load(fh)["metrics"]
    return {k: ({**metrics[k], **tiny[k]} if isinstance(metrics[k], dict) and k in tiny else tiny.get(k, metrics[k]))
            for k in metrics}


@pytest.mark.slow
def test_precomputed_maps_through_the_workflow_equal_facexai_evaluate(tiny_run, tmp_path):
    """Maps written to a file per model enter the tiny workflow as a method; its per-sample table
    equals facexai.evaluate on the same maps (mask and model metrics), the statistics and gallery
    take it up, and the sanity checks say why they cannot run."""
    from facexai.models.train import load_model

    work = copy_run(tiny_run, tmp_path / "run")
    rng = np.random.default_rng(5)
    expected = {}
    (tmp_path / "maps").mkdir()
    for model in ("resnet", "biased"):
        shards = sorted((work / f"results/attributions/{model}/gradcam").glob("*.h5"))
        ids, attributes = [], []
        for shard in shards:
            with h5py.File(shard, "r") as h5:
                ids += list(h5["ids"][()])
                attributes += [a.decode() if isinstance(a, bytes) else a for a in h5["attribute"][()]]
        # at the model's resolution, values a float16 store keeps exactly: nothing to resize or round
        maps = (rng.integers(0, 256, (len(ids), 32, 32)) / 256).astype(np.float32)
        np.savez(tmp_path / "maps" / f"{model}.npz", maps=maps, ids=np.array(ids), attributes=np.array(attributes))
        expected[model] = (maps, np.array(ids), attributes)
    extra = tmp_path / "extra.yaml"
    extra.write_text(f"methods:\n  mine: {{precomputed: \"{tmp_path}/maps/{{model}}.npz\"}}\n"
                     "explain:\n  methods: [gradcam, random, edge, mine]\n")
    # what the assertions below read (no figure or report is drawn)
    result = snakemake(work, "results/tables/beats_random.csv", "results/gallery/index.html", "--configfile",
                       str(extra))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    settings = _tiny_settings()
    regions = {"Eyeglasses": "eyes", "Wearing_Hat": "hat", "Bangs": "hair"}
    for model, (maps, ids, attributes) in expected.items():
        table = pd.concat([pd.read_csv(p) for p in sorted((work / f"results/metrics/{model}/mine").glob("*.csv"))],
                          ignore_index=True)
        assert list(table["id"]) == list(ids) and (table["budget"] == "precomputed").all()
        dataset = work / ("results/data/shortcut/dataset.h5" if model == "biased" else "results/data/main/dataset.h5")
        with h5py.File(dataset, "r") as h5:
            row_of = {int(i): k for k, i in enumerate(h5["ids"][()])}
            rows = [row_of[int(i)] for i in ids]
            labels = np.stack([h5["labels"][r] for r in rows])
            images = np.stack([h5["images"][r] for r in rows])
        net, meta = load_model(work / f"results/models/{model}")
        targets = [meta["attributes"].index(a) for a in attributes]
        ours = facexai.evaluate(maps, labels, [regions[a] for a in attributes], ids=ids, model=net, images=images,
                                target=targets, settings=settings)
        for column in ("rp", "lift", "recall", "iou", "pointing", "auc", "energy_pointing_lift", "deletion_auc",
                       "insertion_auc", "road_gap", "drop_subject", "falsified_sized"):
            np.testing.assert_allclose(table[column].to_numpy(float), ours[column].to_numpy(float), rtol=1e-5,
                                       atol=1e-7, equal_nan=True, err_msg=f"{model} {column}")
        checked = table["sanity_checked"].astype(bool)
        assert checked.any() and (table.loc[checked, "sanity_reason"] == "needs_the_method").all()
        assert table.loc[checked, "sanity_spearman"].isna().all()
    verdicts = pd.read_csv(work / "results/tables/beats_random.csv")
    assert "mine" in set(verdicts["method"])
    assert '"mine"' in (work / "results/gallery/index.html").read_text()


def test_the_readme_config_example_is_valid_yaml():
    import re

    text = open(f"{REPO}/README.md").read()
    block = re.search(r"### Your own maps in the pipeline.*?```yaml\n(.*?)```", text, re.S).group(1)
    config = yaml.safe_load(block)
    assert config["methods"]["my_gradcam"] == {"precomputed": "/data/maps/{model}.npz"}
