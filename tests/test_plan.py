"""RunPlan: what rules/common.smk wires into Snakemake, decided and tested here."""

import copy

import pytest
import yaml

from facexai.errors import BadInputError
from facexai.plan import RunPlan, jobs_will_run

from conftest import REPO


@pytest.fixture(scope="module")
def default_config():
    from snakemake.utils import validate

    config = yaml.safe_load(open(f"{REPO}/config/config.yaml"))
    validate(config, f"{REPO}/config/schema/config.schema.yaml")  # fills the schema's defaults
    return config


def test_models_and_their_settings(default_config):
    config = copy.deepcopy(default_config)
    config["models"].append({"name": "theirs", "weights": "/m/theirs.pt", "format": "torchscript"})
    plan = RunPlan(config)
    assert plan.models[-1] == "theirs" and plan.user_models == ["theirs"]
    assert "theirs" not in plan.trained_models and "resnet" in plan.trained_models
    # own keys over model_defaults, name left out
    settings = plan.model_config("resnet_biased")
    assert settings["dataset"] == "shortcut" and settings["epochs"] == config["model_defaults"]["epochs"]
    assert "name" not in settings
    assert plan.datasets == ["main", "shortcut"]
    assert plan.dataset_h5("resnet_biased") == "results/data/shortcut/dataset.h5"


def test_shards_from_counts_and_sizes(default_config):
    config = copy.deepcopy(default_config)
    n = config["synthetic"]["n_images"] + config["synthetic"]["region_pairs"]
    config["dataset"]["shard_size"] = 100
    config["explain"].update(shard_size=10, max_samples=None)
    plan = RunPlan(config)
    assert len(plan.fuse_shards) == -(-n // 100)
    assert len(plan.explain_shards) == -(-int(n * config["split"]["test_fraction"]) // 10)
    config["explain"].update(shard_size=None, shards=3)
    assert RunPlan(config).explain_shards == [0, 1, 2]


def test_attribution_params_leave_out_the_method_list(default_config):
    plan = RunPlan(default_config)
    params = plan.explain_params()
    assert "methods" not in params and params["shards"] == len(plan.explain_shards)
    assert set(params) == {"attributes", "only_positive", "max_samples", "batch_size", "shards"}


def test_twins_pair_each_biased_model_with_a_fair_one_of_its_architecture(default_config):
    config = copy.deepcopy(default_config)
    config["models"] = [{"name": "a", "arch": "vgg_small"}, {"name": "b", "arch": "resnet_small"},
                        {"name": "b_biased", "arch": "resnet_small", "dataset": "shortcut"},
                        {"name": "orphan", "arch": "densenet_small", "dataset": "shortcut"}]
    plan = RunPlan(config)
    assert plan.twins == [("b", "b_biased")] and plan.twin_models == ["b", "b_biased"]
    config["explain"]["attributes"] = [a for a in config["explain"]["attributes"]
                                       if a != config["synthetic"]["shortcut"]["attribute"]]
    assert RunPlan(config).twins == []  # the shortcut attribute is not explained: no twin figure


def test_final_outputs_list_every_shard(default_config):
    plan = RunPlan(default_config)
    outputs = plan.final_outputs()
    per_kind = len(plan.models) * len(plan.methods) * len(plan.explain_shards)
    assert sum(o.startswith("results/attributions/") and "verification" not in o for o in outputs) == per_kind
    assert "results/figures/twin_mass.png" in outputs and "results/verification/trained/eer.json" in outputs
    assert "results/tables/verification/trained/localisation.csv" in outputs
    assert len(outputs) == len(set(outputs))


def test_real_data_sample_count_is_line_one_of_the_attribute_file(default_config, tmp_path):
    config = copy.deepcopy(default_config)
    config["dataset"]["source"] = "celebamask_hq"
    config["dataset_root"] = str(tmp_path)
    attributes = tmp_path / "CelebAMask-HQ-attribute-anno.txt"
    attributes.write_text("1234\n5_o_Clock_Shadow ...\n")
    assert RunPlan(config).n_samples() == 1234
    attributes.write_text("many\n")
    with pytest.raises(BadInputError, match="CelebAMask-HQ-attribute-anno.txt: line 1 must be the sample count"):
        RunPlan(config)


@pytest.mark.parametrize("argv, runs", [
    (["--cores", "2"], True),
    (["--profile", "profiles/slurm", "--rerun-incomplete"], True),
    (["-n"], False), (["-np", "--cores", "1"], False), (["--dry-run"], False),
    (["--report", "r.html"], False), (["--dag"], False), (["--rulegraph"], False), (["--lint"], False),
    (["--unlock"], False), (["--summary"], False), (["--touch"], False),
])
def test_the_integrity_check_runs_only_when_jobs_will_run(argv, runs):
    assert jobs_will_run(argv) is runs


def photo_config(default_config, folder, **dataset):
    config = copy.deepcopy(default_config)
    with open(f"{REPO}/config/photos.yaml") as fh:
        photos = yaml.safe_load(fh)
    for key, value in photos.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) and key in config else value
    config["dataset_root"] = str(folder)
    config["dataset"].update(dataset)
    return config


def test_photo_folder_plan(default_config, tmp_path):
    """dataset.source photos: the layout is made under results, shards follow the photo count, and
    a verification-only run (no attribute models) leaves out every attribute-model output."""
    folder = tmp_path / "photos"
    for k in range(5):
        (folder / f"p{k % 2}").mkdir(parents=True, exist_ok=True)
        (folder / f"p{k % 2}" / f"{k}.jpg").write_bytes(b"x" * (k + 1))
    plan = RunPlan(photo_config(default_config, folder, shard_size=2))
    assert plan.is_photos and not plan.is_synthetic
    assert plan.n_samples() == 5 and plan.fuse_shards == [0, 1, 2]
    assert plan.dataset_root("main") == "results-photos/photos/main/CelebAMask-HQ"
    assert plan.identity_file() == "results-photos/photos/main/CelebAMask-HQ/identity_CelebA.txt"
    assert plan.dataset_inputs("main") == {"root": "results-photos/photos/main/CelebAMask-HQ"}
    assert plan.has_verification()  # one sub-folder per person
    outputs = plan.final_outputs()
    assert "results-photos/verification/dlib/eer.json" in outputs
    assert not [o for o in outputs if o.endswith("summary.json") or "/tables/localisation_by" in o
                or "/gallery/index.html" in o]
    # a photo's size is in its shard's digest: a rewritten photo reruns its shard only (sorted paths:
    # p0/0, p0/2, p0/4, p1/1, p1/3, so p1/3.jpg is in shard 2)
    before = [plan.photo_shard_digest(s) for s in plan.fuse_shards]
    (folder / "p1" / "3.jpg").write_bytes(b"longer than before")
    after = [RunPlan(photo_config(default_config, folder, shard_size=2)).photo_shard_digest(s) for s in range(3)]
    assert [b != a for b, a in zip(before, after)] == [False, False, True]


def test_flat_photo_folder_without_identities_has_no_verification(default_config, tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    plan = RunPlan(photo_config(default_config, tmp_path))
    assert not plan.has_verification()
    assert not [o for o in plan.final_outputs() if "/verification/" in o]


def test_pair_only_metric_settings_stay_out_of_the_attribute_metric_jobs(default_config):
    """metrics.game is read by the pair jobs only: the attribute metric jobs' params leave it out, so
    changing it reruns no attribute job; triplet outputs (the game figure) only when triplets are explained."""
    plan = RunPlan(default_config)
    assert "game" in default_config["metrics"] and "game" not in plan.class_metric_settings()
    assert {k: v for k, v in default_config["metrics"].items() if k != "game"} == plan.class_metric_settings()
    assert plan.triplets and any("triplet_game_" in t for t in plan.final_outputs())
    config = copy.deepcopy(default_config)
    config["verification"]["explain"]["kinds"] = ["genuine", "impostor"]
    assert not RunPlan(config).triplets
    assert not any("triplet_game_" in t for t in RunPlan(config).final_outputs())


def test_each_subject_s_jobs_read_what_its_kind_needs(default_config):
    """One attribute rule and one metrics rule serve every subject (a model's decisions,
    verification/EMBEDDER for an embedder's pairs): the plan gives each job its kind's inputs and
    settings, and only those (a pair setting reruns no attribute job, and back)."""
    plan = RunPlan(default_config)
    model, embedder = plan.models[0], plan.embedders[0]
    pairs = f"verification/{embedder}"
    assert plan.subjects == [*plan.models, *(f"verification/{e}" for e in plan.embedders)]
    ours = plan.attribution_inputs(model, "gradcam")
    assert set(ours) == {"data", "split", "weights", "meta", "precomputed"} and ours["precomputed"] == []
    assert ours["meta"] == f"results/models/{model}/model.json"
    theirs = plan.attribution_inputs(pairs, "gradcam")
    assert set(theirs) == {"data", "pairs", "store", "weights", "meta"}
    assert theirs["pairs"] == f"results/verification/{embedder}/scores.tsv"
    assert plan.metric_inputs(model, "gradcam", 1)["attributions"] == f"results/attributions/{model}/gradcam/1.h5"
    assert plan.metric_inputs(pairs, "gradcam", 0)["attributions"] == \
        f"results/attributions/verification/{embedder}/gradcam/0.h5"
    assert "eer" in plan.metric_inputs(pairs, "gradcam", 0) and "eer" not in plan.metric_inputs(model, "gradcam", 0)
    assert plan.explain_selection(model) == plan.explain_params()
    assert plan.explain_selection(pairs) == plan.pair_explain_params()
    assert plan.metric_settings(model) == plan.class_metric_settings()
    assert plan.metric_settings(pairs) == default_config["metrics"]
    assert plan.attribute_regions(model) == default_config["attribute_regions"] and plan.attribute_regions(pairs) == {}
