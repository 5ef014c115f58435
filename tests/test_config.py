import subprocess
import sys

import pytest
import yaml

from facexai.config import check_config
from facexai.errors import ConfigError
from facexai.labels import DEFAULT_ATTRIBUTE_REGIONS, DEFAULT_REGIONS

from conftest import REPO


def load_default():
    with open(f"{REPO}/config/config.yaml") as fh:
        return yaml.safe_load(fh)


def test_config_tables_equal_the_package_defaults():
    config = load_default()
    assert {k: tuple(v) for k, v in config["regions"].items()} == DEFAULT_REGIONS
    assert config["attribute_regions"] == DEFAULT_ATTRIBUTE_REGIONS


def dry_run(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "-s", f"{REPO}/Snakefile",
                           "-d", str(tmp_path), *args], capture_output=True, text=True, timeout=300)


def test_default_config_builds_a_dag(tmp_path):
    result = dry_run(tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "generate_synthetic" in result.stdout and "overlay_figure" in result.stdout


@pytest.mark.parametrize("override, key", [
    ("seeed=1", "seeed"),
    ("threads=two", "threads"),
    ("device=gpu", "device"),
])
def test_bad_top_level_key_is_named(tmp_path, override, key):
    result = dry_run(tmp_path, "--config", override)
    assert result.returncode != 0
    assert key in result.stdout + result.stderr


def test_misspelt_nested_key_is_named(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("models:\n  - name: resnet\n    arch: resnet_small\n    epoch: 3\n")
    result = dry_run(tmp_path, "--configfile", str(config))
    assert result.returncode != 0
    assert "epoch" in result.stdout + result.stderr


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["regions"].update(mouth=["mouth", "lips"]), "regions.mouth: unknown class 'lips'"),
    (lambda c: c["attribute_regions"].update(Smiling="lips"), "attribute_regions.Smiling: region 'lips'"),
    (lambda c: c["explain"].update(attributes=["Male"]), "explain.attributes: ['Male'] not predicted"),
    (lambda c: c["dataset"].update(source="celebamask_hq"), "dataset_root: must be set"),
    (lambda c: c["models"][0].update(attributes=["Smilling"]), "models.resnet.attributes"),
    (lambda c: c["models"].append({"name": "resnet"}), "models: names must be unique"),
    (lambda c: c["synthetic"]["shortcut"].update(attribute=None), "models.resnet_biased.dataset: shortcut needs"),
    (lambda c: c["methods"]["parts"].update(classes=["nose", "nostril"]), "methods.parts.classes: ['nostril']"),
    (lambda c: c["methods"]["parts"].update(classes=["nose"]), "lie within region 'nose' that verification"),
])
def test_cross_key_errors_name_the_key(edit, message):
    config = load_default()
    edit(config)
    with pytest.raises(ConfigError) as info:
        check_config(config)
    assert message in str(info.value)


def test_config_errors_are_one_line_per_problem_not_a_schema_dump(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("metricz: 1\nmodels:\n  - name: resnet\n    epoch: 3\nmetrics:\n  deletion: {steps: x}\n")
    result = dry_run(tmp_path, "--configfile", str(config))
    text = result.stdout + result.stderr
    assert result.returncode != 0
    assert "3 problem(s) in the configuration" in text
    assert "metricz: unknown key (allowed at the top level: aggregate, attribute_regions," in text
    assert "models[0].epoch: unknown key (allowed under models[0]: arch, attributes," in text
    assert "metrics.deletion.steps: 'x' is not of type integer" in text
    assert "$schema" not in text and "Failed validating" not in text
    assert len(text.splitlines()) < 20, text


def _schema_properties(schema, config, path=()):
    """(dotted key, value in config or a marker) for every object property the schema declares."""
    for key, sub in schema.get("properties", {}).items():
        here = path + (key,)
        value = config.get(key, _ABSENT) if isinstance(config, dict) else _ABSENT
        yield ".".join(here), sub, value
        if isinstance(sub, dict) and "properties" in sub and isinstance(value, dict):
            yield from _schema_properties(sub, value, here)


_ABSENT = object()
# per-model keys for user models: no default, a model without them is trained
OPTIONAL_KEYS = {"model_defaults.weights", "model_defaults.format", "model_defaults.mean", "model_defaults.std",
                 "model_defaults.input_size"}


def test_defaults_live_in_one_place():
    """config/config.yaml holds every default; the schema only says what a key may hold, so the two
    cannot disagree; the method classes' own defaults equal config.yaml's."""
    import yaml

    from facexai.attributions import METHODS

    schema_text = open(f"{REPO}/config/schema/config.schema.yaml").read()
    schema = yaml.safe_load(schema_text)
    config = load_default()
    declared = list(_schema_properties(schema, config))
    with_default = [key for key, sub, _ in declared if isinstance(sub, dict) and "default" in sub]
    assert with_default == [], f"defaults belong in config/config.yaml, not the schema: {with_default}"
    missing = [key for key, _, value in declared if value is _ABSENT and key not in OPTIONAL_KEYS]
    assert missing == [], f"keys without a value in config/config.yaml: {missing}"
    for name, cls in METHODS.items():
        assert name in config["methods"], f"methods.{name}: no parameters in config/config.yaml"
        assert cls.defaults == config["methods"][name], (name, cls.defaults, config["methods"][name])


def test_study_config_builds_its_dag(tmp_path):
    result = dry_run(tmp_path, "--configfile", f"{REPO}/config/study.yaml")
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    text = result.stdout + result.stderr
    assert "results-study/tables/twin_shift.csv" in text and "densenet" in text
    assert "results-study/figures/group_twin.png" in text and "resnet_skewed" in text


def photos_config(root, **changes):
    from snakemake.utils import validate

    config = load_default()
    with open(f"{REPO}/config/photos.yaml") as fh:
        for key, value in yaml.safe_load(fh).items():
            config[key] = {**config[key], **value} if isinstance(value, dict) and key in config else value
    config["dataset_root"] = str(root) if root is not None else None
    config.update(changes)
    validate(config, f"{REPO}/config/schema/config.schema.yaml")
    return config


def test_photo_config_problems_name_their_key(tmp_path):
    pytest.importorskip("dlib")
    from conftest import has_dlib_extra

    if not has_dlib_extra():
        pytest.skip("needs the dlib extra")
    with pytest.raises(ConfigError, match="dataset_root: must be set when dataset.source is photos"):
        check_config(photos_config(None))
    with pytest.raises(ConfigError, match=r"holds no photo \(.jpg, .jpeg, .png, .webp"):
        check_config(photos_config(tmp_path))
    (tmp_path / "a.jpg").write_bytes(b"x")
    with pytest.raises(ConfigError, match="neither attributes.txt nor identities.*nothing to study"):
        check_config(photos_config(tmp_path))
    (tmp_path / "identities.tsv").write_text("a.jpg\tsomeone\n")
    with pytest.raises(ConfigError, match="need at least 2 identities.*found 1 identity, 0 of them with 2"):
        check_config(photos_config(tmp_path))
    for name in ("b.jpg", "c.jpg"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "identities.tsv").write_text("a.jpg\tsomeone\nb.jpg\tsomeone\nc.jpg\tother\n")
    check_config(photos_config(tmp_path))
    # a group the folder gives for no photo is refused; groups.tsv gives it
    with pytest.raises(ConfigError, match=r"groups: \['Young'\] known for no photo of .*: give them in groups.tsv"):
        check_config(photos_config(tmp_path, groups=["Young"]))
    (tmp_path / "groups.tsv").write_text("file\tYoung\na.jpg\tyes\nc.jpg\tno\n")
    check_config(photos_config(tmp_path, groups=["Young"]))
    (tmp_path / "groups.tsv").write_text("file\tYoung\nd.jpg\tyes\n")
    with pytest.raises(ConfigError, match=r"dataset_root: .*groups.tsv: 1 listed file\(s\) not in the folder"):
        check_config(photos_config(tmp_path, groups=["Young"]))
    (tmp_path / "groups.tsv").unlink()
    models = [{"name": "resnet", "arch": "resnet_small"}]
    with pytest.raises(ConfigError, match="models: attribute models need an attribute table.*attributes.txt"):
        check_config(photos_config(tmp_path, models=models))
    config = photos_config(tmp_path)
    config["dataset"]["image_size"] = 1024
    with pytest.raises(ConfigError, match="dataset.image_size: 1024 exceeds photos.chip_size 512"):
        check_config(config)


def test_input_normalisation_only_for_user_models():
    config = load_default()
    config["models"][0]["mean"] = [0.5, 0.5, 0.5]
    with pytest.raises(ConfigError, match="models.resnet: mean describe a user model's own input"):
        check_config(config)


def test_test_fraction_one_only_when_nothing_is_trained():
    config = load_default()
    config["split"]["test_fraction"] = 1
    with pytest.raises(ConfigError, match=r"split.test_fraction: 1 leaves nothing to train \['resnet'"):
        check_config(config)


def schema_enums(node, path=()):
    """(dotted config key, enum) for every `enum` in the schema (array items as `key[]`)."""
    if isinstance(node, dict):
        if "enum" in node:
            yield ".".join(path), tuple(node["enum"])
        for key, value in node.items():
            if key == "properties":
                for name, child in value.items():
                    yield from schema_enums(child, (*path, name))
            elif key == "items":
                yield from schema_enums(value, (*path[:-1], f"{path[-1]}[]") if path else ("[]",))
            elif key not in ("enum",):
                yield from schema_enums(value, path)


def test_schema_enumerations_are_the_codes_own():
    """Every closed list of values in the schema is the code's own tuple, so adding a fill, a pair
    kind or an architecture in the code without the schema (or the reverse) fails here."""
    from facexai.perturbation import BASELINES
    from facexai.attributions.lime_shap import ENGINES
    from facexai.attributions.rise import ESTIMATORS, FILLS
    from facexai.config import DATASETS, SOURCES
    from facexai.data.fusion import ON_BAD_SAMPLE
    from facexai.data.pairs import BLENDS, PAIR_KINDS
    from facexai.device import DEVICES
    from facexai.metrics.localisation import MASS_MODES
    from facexai.models.backbones import ARCHITECTURES
    from facexai.models.embedders import KINDS, SIMILARITIES
    from facexai.models.user import FORMATS

    code = {
        "device": DEVICES, "dataset.source": SOURCES, "dataset.on_bad_sample": ON_BAD_SAMPLE,
        "model_defaults.arch": tuple(ARCHITECTURES), "models[].arch": tuple(ARCHITECTURES),
        "verification.embedders[].arch": tuple(ARCHITECTURES),
        "model_defaults.dataset": DATASETS, "models[].dataset": DATASETS,
        "model_defaults.format": FORMATS, "models[].format": FORMATS,
        "verification.embedders[].kind": KINDS, "verification.embedders[].similarity": SIMILARITIES,
        "verification.region_swap.blend": BLENDS, "verification.triplets.blend": BLENDS,
        "verification.explain.kinds[]": PAIR_KINDS,
        "methods.integrated_gradients.baseline": BASELINES, "methods.occlusion.baseline": BASELINES,
        "metrics.deletion.baseline": BASELINES, "metrics.occlusion.fill": BASELINES,
        "methods.rise.estimator": ESTIMATORS, "methods.rise.fill": FILLS, "methods.corrrise.fill": FILLS,
        "methods.lime.engine": ENGINES, "methods.shap.engine": ENGINES, "metrics.mass": MASS_MODES,
    }
    schema = yaml.safe_load(open(f"{REPO}/config/schema/config.schema.yaml"))
    found = dict(schema_enums(schema))
    assert set(found) == set(code), f"enums in the schema but not mapped here: {sorted(set(found) - set(code))}; " \
                                    f"mapped but gone from the schema: {sorted(set(code) - set(found))}"
    for key, values in found.items():
        assert values == tuple(code[key]), f"{key}: schema {values}, code {tuple(code[key])}"


def test_an_unknown_group_is_named():
    config = load_default()
    config["groups"] = ["Pale_Skin", "Tall"]
    with pytest.raises(ConfigError, match=r"groups: \['Tall'\] not CelebA attribute"):
        check_config(config)
