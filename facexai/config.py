"""Checks the schema cannot express (cross-references between keys); each error names its key."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .errors import ConfigError
from .labels import ATTRIBUTE_INDEX, CLASS_INDEX, validate_region_tables


def _key_path(parts) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def describe_schema_error(error) -> str:
    """One line for one jsonschema error: the key path, what is wrong, what is allowed."""
    key = _key_path(error.absolute_path)
    schema, value = error.schema, error.instance
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        unknown = sorted(k for k in value if k not in allowed)
        where = "at the top level" if not error.absolute_path else f"under {key}"
        names = ", ".join(f"{key}.{u}" if error.absolute_path else u for u in unknown)
        return f"{names}: unknown key{'s' if len(unknown) > 1 else ''} (allowed {where}: {', '.join(allowed)})"
    if error.validator == "type":
        expected = schema["type"] if isinstance(schema["type"], str) else " or ".join(schema["type"])
        return f"{key}: {_short(value)} is not of type {expected}"
    if error.validator == "enum":
        return f"{key}: {_short(value)} is not one of {schema['enum']}"
    if error.validator == "required":
        return f"{key}: {error.message}"
    if error.validator == "uniqueItems":
        repeated = sorted({repr(v) for k, v in enumerate(value) if v in value[:k]})
        return f"{key}: {', '.join(repeated)} listed more than once; each item may appear once"
    return f"{key}: {_short(value)} fails the schema's {error.validator} {_short(error.validator_value)}"


def check_schema(config: dict, schema_path) -> None:
    """Validate against the JSON schema; every problem becomes one line naming its key (no schema dump)."""
    import jsonschema
    import yaml

    with open(schema_path) as fh:
        schema = yaml.safe_load(fh)
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        lines = [describe_schema_error(e) for e in errors]
        raise ConfigError(f"{len(lines)} problem(s) in the configuration:\n  " + "\n  ".join(lines))


def model_settings(config: dict, name: str) -> dict:
    """A model's settings: its own keys over `model_defaults` (without its name)."""
    own = next((m for m in config["models"] if m["name"] == name), None)
    if own is None:
        raise KeyError(f"models: no model named {name!r}")
    return {k: v for k, v in {**config["model_defaults"], **own}.items() if k != "name"}


# dataset.source: the embedded synthetic set, CelebAMask-HQ's layout, or a folder of photos
SOURCES = ("synthetic", "celebamask_hq", "photos")
# a model's training set: the dataset itself, or the synthetic set with the spurious cue (the biased twin)
DATASETS = ("main", "shortcut")


# what two twins share: they differ only in the draw of their training images
TWIN_SETTINGS = ("arch", "width", "dataset", "attributes", "epochs", "batch_size", "lr", "weight_decay")


def fair_partners(config: dict) -> set[str]:
    """The models another model names as its `group_share.fair`."""
    return {(model_settings(config, m["name"]).get("group_share") or {}).get("fair") for m in config["models"]} - {None}


def group_twin_partner(config: dict, name: str) -> str | None:
    """The fair partner of a model trained with group_share: its `group_share.fair`, or else the first
    model trained here without group_share whose training settings (TWIN_SETTINGS) are its own
    (None: there is none)."""
    model = model_settings(config, name)
    fair = (model.get("group_share") or {}).get("fair")
    if fair is not None:
        return fair
    for m in config["models"]:
        other = model_settings(config, m["name"])
        if (m["name"] != name and not other.get("group_share") and not other.get("weights")
                and all(other.get(k) == model.get(k) for k in TWIN_SETTINGS)):
            return m["name"]
    return None


def check_group_share(config: dict, name: str, model: dict) -> None:
    """A group-imbalanced twin: a known group, a model trained here, and a fair partner that exists, is
    trained here with the same settings (TWIN_SETTINGS); a model named as another's `fair` is only a
    partner (it needs none, and may name none)."""
    share = model.get("group_share")
    if not share:
        return
    key = f"models.{name}.group_share"
    if share["group"] not in ATTRIBUTE_INDEX:
        raise ConfigError(f"{key}.group: {share['group']!r} is not a CelebA attribute (e.g. Pale_Skin, Male)")
    if model.get("weights"):
        raise ConfigError(f"{key}: a user model (weights) is not trained here, so it cannot train on a skewed split")
    if share.get("fair") == name:
        raise ConfigError(f"{key}.fair: {name!r} names itself; name another model")
    if name in fair_partners(config):
        if share.get("fair") is not None:
            raise ConfigError(f"{key}.fair: {name!r} is another model's fair partner, so it is compared with nothing "
                              "itself; a chain of partners is not supported")
        return
    fair = group_twin_partner(config, name)
    if fair is None:
        raise ConfigError(f"{key}: no fair partner (a model trained here without group_share with the same "
                          f"{', '.join(TWIN_SETTINGS)}); add one or name it as {key}.fair")
    if fair == name or fair not in [m["name"] for m in config["models"]]:
        raise ConfigError(f"{key}.fair: {fair!r} is not another model of `models`")
    other = model_settings(config, fair)
    if other.get("group_share") and other["group_share"]["group"] != share["group"]:
        raise ConfigError(f"{key}.fair: {fair!r} draws its training set by {other['group_share']['group']}, this "
                          f"model by {share['group']}: a partner's draw must be by the same group")
    differ = [k for k in TWIN_SETTINGS if other.get(k) != model.get(k)]
    if other.get("weights") or differ:
        raise ConfigError(f"{key}.fair: {fair!r} must be trained here with the same settings; it differs in "
                          f"{differ or ['weights']} (twins differ only in their training draw)")


def check_config(config: dict) -> None:
    try:
        validate_region_tables(config["regions"], config["attribute_regions"])
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    for key in ("region_swap", "triplets"):
        unknown = [r for r in (config["verification"].get(key) or {}).get("regions", []) if r not in config["regions"]]
        if unknown:
            raise ConfigError(f"verification.{key}.regions: {unknown} not defined under `regions` "
                              f"(defined: {sorted(config['regions'])})")
    dataset = config["dataset"]
    if dataset["source"] == "celebamask_hq":
        require_dataset_root(config, "/data/CelebAMask-HQ")
    if dataset["source"] == "photos":
        check_photos(config)
    shortcut = config["synthetic"].get("shortcut", {}).get("attribute")
    if shortcut is not None and shortcut not in ATTRIBUTE_INDEX:
        raise ConfigError(f"synthetic.shortcut.attribute: unknown attribute {shortcut!r}")
    unknown = [a for a in config["explain"]["attributes"] if a not in ATTRIBUTE_INDEX]
    if unknown:
        raise ConfigError(f"explain.attributes: {unknown} not CelebA attribute(s) (known: the 40 columns of "
                          "CelebAMask-HQ-attribute-anno.txt, e.g. Eyeglasses, Smiling)")
    unknown = [g for g in config.get("groups") or [] if g not in ATTRIBUTE_INDEX]
    if unknown:
        raise ConfigError(f"groups: {unknown} not CelebA attribute(s) (a group is an attribute column, e.g. Male, "
                          "Young, Pale_Skin)")
    names = [m["name"] for m in config["models"]]
    if len(set(names)) != len(names):
        raise ConfigError(f"models: names must be unique, got {names}")
    if "verification" in names:
        raise ConfigError("models: 'verification' is reserved (results/attributions/verification/ holds pair maps)")
    for own in config["models"]:
        name = own["name"]
        model = model_settings(config, name)
        if model.get("dataset") == "shortcut":
            if dataset["source"] != "synthetic":
                raise ConfigError(f"models.{name}.dataset: the shortcut dataset exists only for the synthetic set")
            if shortcut is None:
                raise ConfigError(f"models.{name}.dataset: shortcut needs synthetic.shortcut.attribute")
        check_group_share(config, name, model)
        own_input = [k for k in ("mean", "std", "input_size") if k in model]
        if own_input and not model.get("weights"):
            raise ConfigError(f"models.{name}: {'/'.join(own_input)} describe a user model's own input (with "
                              "weights); a model trained here takes the pipeline's input")
        unknown = [a for a in model["attributes"] if a not in ATTRIBUTE_INDEX]
        if unknown:
            raise ConfigError(f"models.{name}.attributes: {unknown} not CelebA attribute(s) (known: the 40 "
                              "columns of CelebAMask-HQ-attribute-anno.txt, e.g. Eyeglasses, Smiling)")
        missing = [a for a in config["explain"]["attributes"] if a not in model["attributes"]]
        if missing:
            raise ConfigError(f"explain.attributes: {missing} not predicted by models.{name}")
    for key, names in (("explain.methods", config["explain"]["methods"]),
                       ("verification.explain.methods", config["verification"]["explain"]["methods"])):
        missing = [m for m in names if m not in config["methods"]]
        if missing:
            raise ConfigError(f"{key}: {missing} have no parameters under `methods` "
                              f"(defined: {sorted(config['methods'])})")
    check_precomputed(config)
    check_pair_fills(config)
    check_oracles(config)
    check_parts(config)
    for attribute in config["explain"]["attributes"]:
        if attribute not in config["attribute_regions"]:
            raise ConfigError(f"explain.attributes: {attribute!r} has no entry in attribute_regions")
    check_embedders(config["verification"])
    trained = [m["name"] for m in config["models"] if not model_settings(config, m["name"]).get("weights")]
    trained += [e["name"] for e in config["verification"]["embedders"] if e["kind"] == "trained"]
    if config["split"]["test_fraction"] >= 1 and trained:
        raise ConfigError(f"split.test_fraction: 1 leaves nothing to train {trained} on (1 suits runs where "
                          "every model and embedder is imported)")


def check_oracles(config: dict) -> None:
    """An oracle (reads where a pair's photos differ) explains pairs only."""
    from .attributions import METHODS

    oracles = [m for m in config["explain"]["methods"] if getattr(METHODS.get(m), "oracle", False)]
    if oracles:
        raise ConfigError(f"explain.methods: {oracles} read where a verification pair's photos differ (the oracle "
                          "of the pair kinds); name them under verification.explain.methods")


def check_parts(config: dict) -> None:
    """`methods.parts.classes`: label classes, and not only those of one region that pairs swap (the
    baseline would then mark the answer of those pairs: an oracle, not the layout of the parts)."""
    classes = (config["methods"].get("parts") or {}).get("classes", [])
    unknown = [c for c in classes if c not in CLASS_INDEX]
    if unknown:
        raise ConfigError(f"methods.parts.classes: {unknown} are not label classes (known: {list(CLASS_INDEX)})")
    if "parts" not in config["verification"]["explain"]["methods"]:
        return
    for key in ("region_swap", "triplets"):
        for region in (config["verification"].get(key) or {}).get("regions", []):
            if classes and set(classes) <= set(config["regions"][region]):
                raise ConfigError(f"methods.parts.classes: {classes} lie within region {region!r} that "
                                  f"verification.{key} swaps: the baseline would mark the answer of those pairs "
                                  "(list every inner part, as the default does)")


def check_pair_fills(config: dict) -> None:
    """`fill: partner` is refused for the pair kinds whose ground truth is where two images differ
    (data.pairs.refuse_partner_fill says why)."""
    from .data.pairs import refuse_partner_fill

    explain = config["verification"]["explain"]
    for method in explain["methods"]:
        try:
            refuse_partner_fill(method, config["methods"].get(method) or {}, explain["kinds"])
        except ValueError as exc:
            raise ConfigError(str(exc)) from None


def check_precomputed(config: dict) -> None:
    """Maps made elsewhere (`methods.NAME.precomputed`): attribute models only, and a file or folder
    for every explained model (its content is checked by the attribution job, naming the sample)."""
    from .attributions.precomputed import FILE_SUFFIXES, is_precomputed, source_path

    for name in config["verification"]["explain"]["methods"]:
        if is_precomputed(config["methods"].get(name)):
            raise ConfigError(f"verification.explain.methods: {name!r} is a set of precomputed maps; they score "
                              "attribute models' decisions (explain.methods), not verification pairs")
    for name in config["explain"]["methods"]:
        params = config["methods"].get(name)
        if not is_precomputed(params):
            continue
        for model in (m["name"] for m in config["models"]):
            path = source_path(params, model)
            if not (path.is_dir() or (path.is_file() and path.suffix in FILE_SUFFIXES)):
                raise ConfigError(f"methods.{name}.precomputed: {path} (model {model}) is neither a "
                                  f"{'/'.join(FILE_SUFFIXES)} file nor a folder of .npy maps")


def require_dataset_root(config: dict, example: str) -> str:
    """dataset_root, which a real-data source needs: set, and a directory."""
    root = config.get("dataset_root")
    if not root:
        raise ConfigError(f"dataset_root: must be set when dataset.source is {config['dataset']['source']} "
                          f"(e.g. --config dataset_root={example})")
    if not Path(root).is_dir():
        raise ConfigError(f"dataset_root: {root} is not a directory")
    return root


def check_photos(config: dict) -> None:
    """dataset.source photos: a folder of photos, dlib installed, its identity and attribute tables
    readable (before any job), enough identities for verification pairs, attribute models only with
    attributes, region swaps only of parts that landmark masks draw."""
    import importlib.util

    from .data.landmark_masks import LANDMARK_CLASSES
    from .data.photos.folder import (ATTRIBUTES_FILE, GROUPS_FILE, PHOTO_EXTENSIONS, list_photos, read_identities,
                                     read_photo_attributes, read_photo_groups, with_groups)
    from .errors import BadInputError

    root = require_dataset_root(config, "/data/my-photos")
    if importlib.util.find_spec("dlib") is None or importlib.util.find_spec("face_recognition_models") is None:
        raise ConfigError("dataset.source: photos needs dlib and its landmark models: pip install 'facexai[dlib]'")
    photos = list_photos(root)
    if not photos:
        raise ConfigError(f"dataset_root: {root} holds no photo ({', '.join(PHOTO_EXTENSIONS)})")
    try:
        identities = read_identities(root, photos)
        attributes = read_photo_attributes(root, photos)
        groups = read_photo_groups(root, photos)
        known = with_groups(attributes, groups, len(photos), photos, root)
    except BadInputError as exc:
        raise ConfigError(f"dataset_root: {exc}") from None
    absent = [g for g in config.get("groups") or [] if g in ATTRIBUTE_INDEX  # other names: refused below
              and (known is None or not (known[:, ATTRIBUTE_INDEX[g]] != 0).any())]
    if absent:
        raise ConfigError(f"groups: {absent} known for no photo of {root}: give them in {GROUPS_FILE} (file<TAB>"
                          f"{absent[0]}, values yes / no) or {ATTRIBUTES_FILE}, or set groups: []")
    if config["models"] and attributes is None:
        raise ConfigError(f"models: attribute models need an attribute table: {Path(root) / ATTRIBUTES_FILE} "
                          "(CelebA's list_attr_celeba.txt format) is missing; set models: [] for a "
                          "verification-only run")
    if not config["models"] and identities is None:
        raise ConfigError(f"dataset_root: {root} has neither {ATTRIBUTES_FILE} nor identities (identities.tsv, "
                          "or one sub-folder per person): nothing to study")
    if identities is not None:
        counts: dict[str, int] = {}
        for name in identities:
            counts[name] = counts.get(name, 0) + 1
        repeated = sorted(n for n, c in counts.items() if c >= 2)
        if len(counts) < 2 or not repeated:
            raise ConfigError(
                f"dataset_root: {root}: verification pairs need at least 2 identities (impostor pairs) and one "
                f"with 2 or more photos (genuine pairs); found {len(counts)} identit"
                f"{'y' if len(counts) == 1 else 'ies'}, {len(repeated)} of them with 2 or more photos")
        swap = config["verification"].get("region_swap") or {}
        for region in swap.get("regions") or []:
            if not set(config["regions"][region]) & set(LANDMARK_CLASSES):
                raise ConfigError(
                    f"verification.region_swap.regions: {region!r} ({', '.join(config['regions'][region])}) is "
                    f"never drawn on photos: landmark masks have only {', '.join(LANDMARK_CLASSES)}, so it "
                    "would make no swap pair")
    if config["dataset"]["image_size"] > config["photos"]["chip_size"]:
        raise ConfigError(f"dataset.image_size: {config['dataset']['image_size']} exceeds photos.chip_size "
                          f"{config['photos']['chip_size']} (images would be upsampled)")


def check_embedders(verification: dict) -> None:
    """Embedder names, their files, the dlib extra, region-swap regions (each error names its key)."""
    import importlib.util

    names = [e["name"] for e in verification["embedders"]]
    if len(set(names)) != len(names):
        raise ConfigError(f"verification.embedders: names must be unique, got {names}")
    for spec in verification["embedders"]:
        key = f"verification.embedders.{spec['name']}"
        if spec["kind"] == "dlib":
            if importlib.util.find_spec("face_recognition_models") is None:
                raise ConfigError(f"{key}: kind dlib needs the optional extra that ships dlib's model file: "
                                  "pip install 'facexai[dlib]' (or pip install face-recognition-models)")
        elif spec["kind"] in ("torchscript", "state_dict"):
            if not Path(spec["weights"]).is_file():
                raise ConfigError(f"{key}.weights: {spec['weights']} is not a file")
        elif any(k in spec for k in ("weights", "input_size", "mean", "std", "crop", "similarity")):
            raise ConfigError(f"{key}: weights/input_size/mean/std/crop/similarity apply to imported embedders "
                              "(kinds dlib, torchscript, state_dict), not to kind trained")
    swap = verification.get("region_swap") or {}
    if "swap" in verification["explain"]["kinds"] and not (swap.get("regions") and swap.get("pairs_per_region")):
        raise ConfigError("verification.explain.kinds: 'swap' needs region-swap pairs "
                          "(verification.region_swap.regions and pairs_per_region)")
    if "swap_control" in verification["explain"]["kinds"] and not (swap.get("controls") and swap.get("regions")):
        raise ConfigError("verification.explain.kinds: 'swap_control' needs verification.region_swap.controls: true")
    triplets = verification.get("triplets") or {}
    if "triplet" in verification["explain"]["kinds"] and not (triplets.get("regions") and triplets.get("per_region")):
        raise ConfigError("verification.explain.kinds: 'triplet' needs verification.triplets (regions, per_region)")


def digest(*sections) -> str:
    """A stable digest of config sections, stored as provenance in outputs."""
    return hashlib.sha256(json.dumps(sections, sort_keys=True, default=str).encode()).hexdigest()[:16]
