"""Checks the schema cannot express (cross-references between keys); each error names its key."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .errors import ConfigError
from .labels import ATTRIBUTE_INDEX, validate_region_tables


def check_config(config: dict) -> None:
    try:
        validate_region_tables(config["regions"], config["attribute_regions"])
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    dataset = config["dataset"]
    if dataset["source"] == "celebamask_hq":
        root = config.get("dataset_root")
        if not root:
            raise ConfigError("dataset_root: must be set when dataset.source is celebamask_hq "
                              "(e.g. --config dataset_root=/data/CelebAMask-HQ)")
        if not Path(root).is_dir():
            raise ConfigError(f"dataset_root: {root} is not a directory")
    shortcut = config["synthetic"].get("shortcut", {}).get("attribute")
    if shortcut is not None and shortcut not in ATTRIBUTE_INDEX:
        raise ConfigError(f"synthetic.shortcut.attribute: unknown attribute {shortcut!r}")
    for name, model in config["models"].items():
        unknown = [a for a in model["attributes"] if a not in ATTRIBUTE_INDEX]
        if unknown:
            raise ConfigError(f"models.{name}.attributes: unknown attribute(s) {unknown}")
        missing = [a for a in config["explain"]["attributes"] if a not in model["attributes"]]
        if missing:
            raise ConfigError(f"explain.attributes: {missing} not predicted by models.{name}")
    for attribute in config["explain"]["attributes"]:
        if attribute not in config["attribute_regions"]:
            raise ConfigError(f"explain.attributes: {attribute!r} has no entry in attribute_regions")


def digest(*sections) -> str:
    """A stable digest of config sections, stored as provenance in outputs."""
    return hashlib.sha256(json.dumps(sections, sort_keys=True, default=str).encode()).hexdigest()[:16]
