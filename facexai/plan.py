"""What a run consists of, derived from the (validated) config: models, datasets, shards, twins, the
parameters each job depends on, and the files a complete run leaves. rules/common.smk only wires
these into Snakemake; every decision here is unit-tested (tests/test_plan.py).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from .config import digest, fair_partners, group_twin_partner, model_settings
from .data.celebamask import IDENTITY_FILE, annotation_files, read_sample_count
from .layout import Layout, subject, subject_of


class RunPlan:
    def __init__(self, config: dict):
        self.config = config
        self.results = config["results_dir"]
        self.layout = Layout(self.results)
        self.models = [m["name"] for m in config["models"]]
        self.methods = list(config["explain"]["methods"])
        self.pair_methods = list(config["verification"]["explain"]["methods"])
        # models given as a weights file (TorchScript, or a state dict of one of our architectures)
        # are imported, not trained
        self.user_models = [m for m in self.models if self.model_config(m).get("weights")]
        self.trained_models = [m for m in self.models if m not in self.user_models]
        # "main" is the dataset itself; "shortcut" is the synthetic set regenerated with the spurious
        # cue (synthetic.shortcut), made only when a model trains on it (the biased twin)
        self.datasets = sorted({"main"} | {self.model_dataset(m) for m in self.models})
        self.fuse_shards = list(range(math.ceil(self.n_samples() / config["dataset"]["shard_size"])))
        self.explain_shards = list(range(self.explain_shard_count()))
        self.pair_shards = list(range(config["verification"]["explain"]["shards"]))
        # face embedders: trained here, or imported (dlib, a user's TorchScript file or state dict)
        self.embedders = [e["name"] for e in config["verification"]["embedders"]]
        self.trained_embedders = [e["name"] for e in config["verification"]["embedders"] if e["kind"] == "trained"]
        self.imported_embedders = [e for e in self.embedders if e not in self.trained_embedders]
        self.twins = self.twin_pairs()
        self.twin_models = sorted({m for pair in self.twins for m in pair})
        self.group_twins = self.group_twin_pairs()
        self.group_twin_models = sorted({m for fair, skewed, _ in self.group_twins for m in (fair, skewed)})

    # ----------------------------------------------------------------------------- models, data

    def precomputed_inputs(self, model: str, method: str) -> list[str]:
        """The files of a precomputed method's maps for one model (inputs of its attribution jobs:
        replacing one reruns only those jobs); none for a method that computes its maps."""
        from .attributions.precomputed import is_precomputed, source_files, source_path

        params = self.config["methods"].get(method)
        if not is_precomputed(params):
            return []
        return [str(p) for p in source_files(source_path(params, model))]

    def model_config(self, name: str) -> dict:
        return model_settings(self.config, name)

    def model_dataset(self, name: str) -> str:
        return self.model_config(name).get("dataset", "main")

    @property
    def is_synthetic(self) -> bool:
        return self.config["dataset"]["source"] == "synthetic"

    @property
    def is_photos(self) -> bool:
        return self.config["dataset"]["source"] == "photos"

    def synthetic_root(self, dataset: str) -> str:
        return self.layout("synthetic_root", dataset=dataset)

    def photos_root(self, dataset: str = "main") -> str:
        """The CelebAMask-HQ layout the photo stage writes from a folder of photos."""
        return self.layout("photos_root", dataset=dataset)

    def dataset_root(self, dataset: str) -> str:
        """The CelebAMask-HQ layout that fusion reads."""
        if self.is_synthetic:
            return self.synthetic_root(dataset)
        if self.is_photos:
            return self.photos_root(dataset)
        return self.config["dataset_root"]

    def photos(self) -> list[str]:
        """The photo folder's files (relative paths), listed once per plan."""
        if not hasattr(self, "_photos"):
            from .data.photos.folder import list_photos

            self._photos = list_photos(self.config["dataset_root"])
        return self._photos

    def photo_shard_digest(self, shard: int) -> str | None:
        """Names and sizes of a photo shard's files: a changed photo reruns its alignment shard."""
        import hashlib

        from .data.photos.folder import shard_photos

        root = Path(self.config["dataset_root"])
        items = []
        for _, f in shard_photos(self.photos(), shard, self.config["dataset"]["shard_size"]):
            try:
                items.append(f"{f}:{(root / f).stat().st_size}")
            except OSError:
                items.append(f"{f}:missing")
        return hashlib.sha256("\n".join(items).encode()).hexdigest()[:16]

    def photo_tables_digest(self) -> str:
        """identities.tsv and attributes.txt of a photo folder (their change re-assembles the layout)."""
        import hashlib

        from .data.photos.folder import ATTRIBUTES_FILE, IDENTITIES_FILE

        h = hashlib.sha256()
        for name in (IDENTITIES_FILE, ATTRIBUTES_FILE):
            path = Path(self.config["dataset_root"]) / name
            h.update(name.encode() + (path.read_bytes() if path.is_file() else b"<none>"))
        return h.hexdigest()[:16]

    def dataset_h5(self, model: str) -> str:
        """The fused dataset a model trains on and is explained on."""
        return self.layout("dataset_h5", dataset=self.model_dataset(model))

    def split_tsv(self, model: str) -> str:
        return self.layout("split_tsv", dataset=self.model_dataset(model))

    def identity_file(self, dataset: str = "main") -> str | None:
        """The identity file to read, or None (then the split follows CelebA's official partition)."""
        if self.config["dataset"]["identity_file"]:
            return self.config["dataset"]["identity_file"]
        if self.is_synthetic:
            return f"{self.synthetic_root(dataset)}/{IDENTITY_FILE}"
        if self.is_photos:  # always written (a photo of unknown identity is its own)
            return f"{self.photos_root(dataset)}/{IDENTITY_FILE}"
        default = Path(self.config["dataset_root"]) / IDENTITY_FILE
        return str(default) if default.is_file() else None

    def n_samples(self) -> int:
        """Samples in the dataset: the generator's count, or line 1 of the real attribute file."""
        if self.is_synthetic:
            return self.config["synthetic"]["n_images"] + self.config["synthetic"]["region_pairs"]
        if self.is_photos:  # an upper bound: photos without a usable face are left out
            return len(self.photos())
        return read_sample_count(annotation_files(self.config["dataset_root"])["attributes"])

    def dataset_inputs(self, dataset: str) -> dict[str, str]:
        """What fusion reads: the generated folder, or the real dataset's annotation files."""
        if self.is_synthetic:
            return {"root": self.synthetic_root(dataset)}
        if self.is_photos:
            return {"root": self.photos_root(dataset)}
        inputs = {k: str(v) for k, v in annotation_files(self.config["dataset_root"]).items()}
        if self.identity_file():
            inputs["identity"] = self.identity_file()
        return inputs

    def synthetic_params(self, dataset: str) -> dict:
        """Generator settings; only the shortcut dataset carries the spurious cue."""
        settings = dict(self.config["synthetic"])
        if dataset != "shortcut":
            settings["shortcut"] = {"attribute": None, "strength": settings["shortcut"]["strength"]}
        return settings

    def photo_alignment(self) -> dict:
        """The photo settings that change the aligned data (photos.min_face_size only warns)."""
        return {k: v for k, v in self.config.get("photos", {}).items() if k != "min_face_size"}

    def dataset_digest(self, dataset: str) -> str:
        if self.is_synthetic:
            return digest(self.config["dataset"], self.synthetic_params(dataset))
        if self.is_photos:
            return digest(self.config["dataset"], self.config["dataset_root"], self.photo_alignment())
        return digest(self.config["dataset"], self.config["dataset_root"])

    # ----------------------------------------------------------------------------- resources

    def training_mem_mb(self) -> int:
        """Training holds the split's images in memory (uint8, read once, not per epoch): 2 GB plus
        twice their size."""
        size = self.config["dataset"]["image_size"]
        return 2000 + math.ceil(2 * self.n_samples() * size * size * 3 / 1e6)

    @staticmethod
    def tables_mem_mb(input_size_mb: float) -> int:
        """Jobs that read every per-sample table: about 4x the CSVs' size, at least 2 GB."""
        return max(2000, math.ceil(4 * input_size_mb))

    def gpu_request(self) -> int:
        """Ask the scheduler for a GPU only where the config says the jobs need one."""
        return 1 if self.config["device"] == "cuda" else 0

    # ----------------------------------------------------------------------------- explained subjects

    @property
    def subjects(self) -> list[str]:
        """Every value of the `subject` wildcard of the attribution and metric jobs: each model (its
        attribute decisions) and verification/EMBEDDER (an embedder's pairs); layout.subject."""
        return [*self.models, *(subject(embedder=e) for e in self.embedders)]

    def attribution_inputs(self, value: str, method: str) -> dict:
        """An attribution job's input files by name, as its subject kind reads them."""
        kind, name = subject_of(value)
        L = self.layout
        if kind == "attributes":
            return {"data": self.dataset_h5(name), "split": self.split_tsv(name), "weights": L("weights", model=name),
                    "meta": L("model_meta", model=name),
                    # maps made elsewhere (methods.NAME.precomputed): their files, none for other methods
                    "precomputed": self.precomputed_inputs(name, method)}
        return {"data": L("dataset_h5", dataset="main"),
                # the pairs with this embedder's scores (triplets: which ones the swap matters to)
                "pairs": L("scores", embedder=name), "store": L("pairs_h5"),
                "weights": L("embedder_weights", embedder=name), "meta": L("embedder_meta", embedder=name)}

    def metric_inputs(self, value: str, method: str, shard) -> dict:
        """A metric job's input files by name: the attribution file and what its kind reads."""
        kind, name = subject_of(value)
        L = self.layout
        maps = L("maps", subject=value, method=method, shard=shard)
        if kind == "attributes":
            return {"attributions": maps, "data": self.dataset_h5(name), "weights": L("weights", model=name),
                    "meta": L("model_meta", model=name)}
        return {"attributions": maps, "data": L("dataset_h5", dataset="main"), "store": L("pairs_h5"),
                "weights": L("embedder_weights", embedder=name), "meta": L("embedder_meta", embedder=name),
                "eer": L("eer", embedder=name)}

    def explain_selection(self, value: str) -> dict:
        """Which subjects an attribution job explains (config explain or verification.explain,
        without the method list)."""
        return self.explain_params() if subject_of(value)[0] == "attributes" else self.pair_explain_params()

    def metric_settings(self, value: str) -> dict:
        """config `metrics` as a metric job of this subject reads it (attribute jobs: without the
        pair-only settings, so that changing those reruns no attribute job)."""
        return self.class_metric_settings() if subject_of(value)[0] == "attributes" else self.config["metrics"]

    def attribute_regions(self, value: str) -> dict:
        """The expected region of each attribute, for an attribute model's metric jobs only."""
        return self.config["attribute_regions"] if subject_of(value)[0] == "attributes" else {}

    # ----------------------------------------------------------------------------- shards, params

    def explain_shard_count(self) -> int:
        """Attribution jobs per (model, method): explain.shards, or, with explain.shard_size, enough
        shards for the expected number of explained test samples (the exact test split is known
        only after the split; shards are balanced, so each holds about shard_size samples)."""
        e = self.config["explain"]
        if not e.get("shard_size"):
            return e["shards"]
        expected = self.n_samples() * self.config["split"]["test_fraction"]
        if e["max_samples"]:
            expected = min(expected, e["max_samples"])
        return max(1, math.ceil(expected / e["shard_size"]))

    def explain_params(self) -> dict:
        """The settings an attribution job depends on, and no more: the method list is left out, so
        that adding a method does not rerun the others."""
        e = self.config["explain"]
        return {**{k: e[k] for k in ("attributes", "only_positive", "max_samples", "batch_size") if k in e},
                "shards": len(self.explain_shards)}

    def embedder_config(self, name: str) -> dict:
        spec = next((e for e in self.config["verification"]["embedders"] if e["name"] == name), None)
        if spec is None:
            raise KeyError(f"verification.embedders: no embedder named {name!r}")
        return dict(spec)

    def embedder_source(self, name: str) -> str:
        """The file an imported embedder is made from (its change reruns that embedder's jobs)."""
        spec = self.embedder_config(name)
        if spec["kind"] == "dlib":
            from .models.embedders import dlib_model_path

            return str(dlib_model_path())
        return spec["weights"]

    # metric settings read only by the verification pair jobs
    PAIR_ONLY_METRIC_SETTINGS = ("game",)

    def class_metric_settings(self) -> dict:
        """config `metrics` as the attribute metric jobs read it: without the pair-only settings."""
        return {k: v for k, v in self.config["metrics"].items() if k not in self.PAIR_ONLY_METRIC_SETTINGS}

    @property
    def triplets(self) -> bool:
        """Whether triplets are drawn and explained (the inpainting game)."""
        v = self.config["verification"]
        return "triplet" in v["explain"]["kinds"] and bool((v.get("triplets") or {}).get("regions"))

    def pair_regions(self) -> dict:
        """Definitions of the regions that region-swap pairs and triplets swap."""
        v = self.config["verification"]
        names = [*(v.get("region_swap") or {}).get("regions", []), *(v.get("triplets") or {}).get("regions", [])]
        return {r: self.config["regions"][r] for r in dict.fromkeys(names)}

    def pair_explain_params(self) -> dict:
        e = self.config["verification"]["explain"]
        return {k: e[k] for k in ("kinds", "max_pairs", "shards", "batch_size") if k in e}

    def twin_pairs(self) -> list[tuple[str, str]]:
        """(fair, biased) model pairs: each model trained on the shortcut dataset with the first model
        of the same architecture trained on the main one; only when the shortcut attribute is
        explained."""
        attribute = self.config["synthetic"]["shortcut"]["attribute"]
        if not self.is_synthetic or attribute not in self.config["explain"]["attributes"]:
            return []
        pairs = []
        for biased in self.models:
            if self.model_dataset(biased) != "shortcut":
                continue
            arch = self.model_config(biased).get("arch")
            fair = [m for m in self.models
                    if self.model_dataset(m) == "main" and self.model_config(m).get("arch") == arch]
            if fair:
                pairs.append((fair[0], biased))
        return pairs

    def group_twin_pairs(self) -> list[tuple[str, str, str]]:
        """(fair, skewed, group) for each model trained with `group_share` (the group-imbalanced twin)
        that is no other's fair partner; the fair partner is `config.group_twin_partner`'s."""
        # a model trained on a drawn split that is another's fair partner (e.g. a balanced draw of the
        # skewed one's size) is not itself compared with anything
        partners = fair_partners(self.config)
        return [(group_twin_partner(self.config, m), m, self.model_config(m)["group_share"]["group"])
                for m in self.models if self.model_config(m).get("group_share") and m not in partners]

    def training_config(self, name: str) -> dict:
        """A model's settings as its training job sees them: which model it is compared with
        (`group_share.fair`) does not change its training."""
        config = self.model_config(name)
        if config.get("group_share"):
            config = {**config, "group_share": {k: v for k, v in config["group_share"].items() if k != "fair"}}
        return config

    def group_twin_attributes(self) -> dict[str, list[str]]:
        """Per skewed model: the attributes both twins predict (its accuracy table's rows), in its order."""
        out = {}
        for fair, skewed, _ in self.group_twins:
            theirs = set(self.model_config(fair)["attributes"])
            out[skewed] = [a for a in self.model_config(skewed)["attributes"] if a in theirs]
        return out

    # ----------------------------------------------------------------------------- outputs

    def has_verification(self) -> bool:
        if self.is_photos:
            from .data.photos.folder import read_identities

            return read_identities(self.config["dataset_root"], self.photos()) is not None
        return self.identity_file() is not None

    def shard_outputs(self) -> dict[str, list[str]]:
        """The shard files a run reads, by kind, for the integrity check."""
        L = self.layout
        embedders = self.embedders if self.has_verification() else []  # no identities, no pairs
        classes = [dict(subject=subject(m), method=method, shard=s)
                   for m in self.models for method in self.methods for s in self.explain_shards]
        pairs = [dict(subject=subject(embedder=e), method=method, shard=s)
                 for e in embedders for method in self.pair_methods for s in self.pair_shards]
        return {
            "fused": [L("fused_shard", dataset=d, shard=s) for d in self.datasets for s in self.fuse_shards]
            + [L("dataset_h5", dataset=d) for d in self.datasets],
            "attributions": [L("maps", **k) for k in classes + pairs],
            "csv": [L("metrics_csv", **k) for k in classes + pairs],
        }

    def final_outputs(self) -> list[str]:
        L = self.layout
        verification = self.has_verification()
        pair_outputs = verification and bool(self.pair_methods)
        shards = self.shard_outputs()
        # attribute models: none in a verification-only run (a photo folder without attributes)
        attribute_outputs = [
            L.table("localisation_by_attribute"),
            L.table("localisation_by_region"),
            L.table("model_accuracy"),
            L.table("method_comparison"),
            L("summary"),
            L.figure("fr_vs_rp"),
            L("gallery"),
            # per-group audits (config groups)
            *([L.table("localisation_by_group"), L.table("group_differences")] if self.config.get("groups") else []),
        ] if self.models else []
        pair_embedders = self.embedders if pair_outputs else []
        return [
            *attribute_outputs,
            *([L.figure("twin_mass")] if self.twins else []),
            *([L.table("twin_shift_by_group")] if self.twins and self.config.get("groups") else []),
            *([L.figure("group_twin")] if self.group_twins else []),
            *[L.figure(f"overlay_{m}") for m in self.models],
            *[L.figure(f"mean_maps_{m}") for m in self.models],
            *[L.figure(f"training_curves_{m}") for m in self.trained_models],
            *([L("eer", embedder=e) for e in self.embedders] if verification else []),
            *[L.pair_table("localisation", embedder=e) for e in pair_embedders],
            *[L.pair_table(t, embedder=e) for e in (pair_embedders if self.config.get("groups") else [])
              for t in ("localisation_by_group", "group_differences")],
            *[L.figure(f"verification_pairs_{e}") for e in pair_embedders],
            *([L.figure(f"triplet_game_{e}") for e in pair_embedders] if self.triplets else []),
            *[L("pair_gallery", embedder=e) for e in pair_embedders],
            # the per-shard maps and metric tables are results too: a missing or damaged one is remade
            *shards["attributions"],
            *shards["csv"],
        ]


# Snakemake invocations that only look (plan, report, draw, lint, list, unlock): no file is moved.
_LOOK_ONLY = ("dryrun", "report", "dag", "rulegraph", "filegraph", "lint", "summary", "detailed_summary",
              "list_rules", "list_target_rules", "unlock", "touch", "cleanup_metadata", "list_changes",
              "list_input_changes", "list_params_changes", "list_code_changes", "list_untracked",
              "delete_all_output", "delete_temp_output", "archive", "containerize", "print_compilation",
              "d3dag", "export_cwl")


def jobs_will_run(argv: list[str] | None = None) -> bool:
    """Whether this Snakemake invocation will run jobs (and so may move damaged shards aside),
    read from its command line; True where the command line is not Snakemake's (API use)."""
    if argv is None:
        program = os.path.join(os.path.basename(os.path.dirname(sys.argv[0])), os.path.basename(sys.argv[0]))
        if "snakemake" not in program:  # e.g. .../bin/snakemake, .../snakemake/__main__.py
            return True
        argv = sys.argv[1:]
    from snakemake.cli import get_argument_parser

    try:
        args, _ = get_argument_parser().parse_known_args(argv)
    except SystemExit:
        return True
    return not any(getattr(args, name, None) for name in _LOOK_ONLY)
