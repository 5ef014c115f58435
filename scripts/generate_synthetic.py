from facexai.data.synthetic import SyntheticConfig, generate
from facexai.logutil import log_to

with log_to(snakemake.log[0]):
    syn = snakemake.params.synthetic
    cfg = SyntheticConfig(
        n_images=syn["n_images"], n_identities=syn["n_identities"], image_size=syn["image_size"],
        mask_size=syn["mask_size"], jpeg_quality=syn["jpeg_quality"],
        odd_mask_fraction=syn["odd_mask_fraction"], seed=snakemake.params.seed,
        test_fraction=snakemake.params.split["test_fraction"], split_seed=snakemake.params.split["seed"],
        shortcut_attribute=syn["shortcut"]["attribute"], shortcut_strength=syn["shortcut"]["strength"],
        region_pairs=syn["region_pairs"],
        workers=snakemake.threads)
    generate(cfg, snakemake.output[0])
