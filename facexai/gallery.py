"""A static, self-contained HTML gallery of explained decisions.

One card per decision (model, sample id, attribute): the image, the colour-coded label map with the
expected region emphasised, the selected method's heat map over the image, and that method's
per-sample metrics. Filters by model, method (or all methods side by side), region and attribute,
sorting by a metric; the view is kept in the URL's hash so that a view can be shared. Everything
(thumbnails as PNG data URIs, data as JSON) is inside the one file: it opens from disk, no server.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from .aggregate import method_budgets
from .atomic import atomic_path
from .attributions.store import read_maps, read_shard
from .metrics import registry
from .data.samples import read_rows
from .labels import region_class_indices
from .render import data_uri, heat_of, label_rgb, overlay_rgb

log = logging.getLogger(__name__)



def _number(v):
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else round(float(v), 4)


def gallery_data(metric_csvs, attribution_h5s: dict, dataset_h5s: dict, *, regions: dict,
                 mode: str = "positive", max_per_model: int | None = None) -> dict:
    """The gallery's content for decisions on one image each (attribute decisions, or any subject
    kind whose rows are named by the sample id and one more key column, facexai/subjects: its
    values are the "attribute" filter). attribution_h5s: {(model, method): [shard files]};
    dataset_h5s: {model: fused dataset the model is explained on}; metric_csvs: the per-sample
    metric tables. max_per_model caps the decisions per model (taken in turn from each attribute,
    lowest ids first) so that the file stays small at dataset scale; None keeps all."""
    from .subjects import row_key

    header = pd.concat([pd.read_csv(p, nrows=0) for p in metric_csvs], ignore_index=True)
    column = row_key(header)[-1]  # the key column beside the sample id: attribute for attribute decisions
    if row_key(header)[-2:] != ["id", column]:
        raise ValueError(f"gallery: the tables' rows are named by {row_key(header)}, not by a sample id and one "
                         "more column (pairs have their own gallery)")
    needed = {"model", "method", "budget", "id", column, "region", "degenerate", "completeness_flagged",
              *(name for name, _ in registry.shown())}
    table = pd.concat([pd.read_csv(p, keep_default_na=False, na_values=[""], usecols=lambda c: c in needed)
                       for p in metric_csvs], ignore_index=True)
    methods = list(dict.fromkeys(m for _, m in attribution_h5s))
    models = list(dict.fromkeys(m for m, _ in attribution_h5s))
    pictures: dict[str, str] = {}
    decisions: dict[tuple, dict] = {}
    rows_of: dict[str, dict[int, int]] = defaultdict(dict)
    maps_of: dict[tuple, np.ndarray] = {}
    where: dict[tuple, tuple] = {}  # (model, method, id, attribute) -> (file, index in file)
    for (model, method), paths in attribution_h5s.items():
        for path in paths:
            shard = read_shard(path, maps=False)
            rows, scores = shard["row"].tolist(), shard["score"].tolist()
            for k, key in enumerate(zip(shard["ids"].tolist(), list(shard[column]))):
                rows_of[model][key[0]] = rows[k]
                where[(model, method) + key] = (path, k)
                decisions.setdefault((model,) + key, {"model": model, "id": int(key[0]), "attribute": key[1],
                                                      "score": _number(scores[k]), "methods": {}})
    if max_per_model is not None:
        decisions = _cap(decisions, max_per_model)
    # only the maps of the decisions shown are read
    wanted = defaultdict(list)
    for (model, method, sample_id, attribute), (path, k) in where.items():
        if (model, sample_id, attribute) in decisions:
            wanted[path].append((k, (model, method, sample_id, attribute)))
    for path, entries in wanted.items():
        entries.sort()
        for (_, key), a in zip(entries, read_maps(path, [k for k, _ in entries])):
            maps_of[key] = a
    for model in list(rows_of):
        shown_ids = {i for (m, i, _) in decisions if m == model}
        rows_of[model] = {i: r for i, r in rows_of[model].items() if i in shown_ids}
    metric_rows = {(r["model"], r["method"], int(r["id"]), r[column]): r
                   for r in table.to_dict("records")}
    for model in models:
        with h5py.File(dataset_h5s[model], "r") as h5:
            ids = sorted(rows_of[model])
            images = read_rows(h5, "images", [rows_of[model][i] for i in ids])
            labels = read_rows(h5, "labels", [rows_of[model][i] for i in ids])
        image_of = dict(zip(ids, images))
        label_of = dict(zip(ids, labels))
        dataset_key = Path(dataset_h5s[model]).parent.name
        for (m, sample_id, attribute), record in decisions.items():
            if m != model:
                continue
            any_row = next((metric_rows.get((model, method, sample_id, attribute)) for method in methods
                            if (model, method, sample_id, attribute) in metric_rows), None)
            region = any_row["region"] if any_row and isinstance(any_row["region"], str) else ""  # blank: none
            record["region"] = region
            image_key = f"img:{dataset_key}:{sample_id}"
            if image_key not in pictures:
                pictures[image_key] = data_uri(image_of[sample_id])
            record["image"] = image_key
            label_key = f"lab:{dataset_key}:{sample_id}:{region}"
            if label_key not in pictures:
                classes = region_class_indices(region, regions) if region else []
                pictures[label_key] = data_uri(label_rgb(label_of[sample_id], classes))
            record["labels"] = label_key
            for method in methods:
                a = maps_of.get((model, method, sample_id, attribute))
                if a is None:
                    continue
                map_key = f"map:{model}:{method}:{sample_id}:{attribute}"
                heat = heat_of(a, mode)
                pictures[map_key] = data_uri(overlay_rgb(image_of[sample_id], heat))
                row = metric_rows.get((model, method, sample_id, attribute), {})
                degenerate = row.get("degenerate")
                flagged = row.get("completeness_flagged") in (True, "True")
                record["methods"][method] = {
                    "map": map_key,
                    "degenerate": degenerate if isinstance(degenerate, str) and degenerate else
                    ("map has no mass" if heat is None else ""),
                    "warning": f"completeness error {row['completeness_error']:.0%} exceeds the tolerance (flagged)"
                    if flagged else "",
                    "metrics": {name: _number(row.get(name)) for name, _ in registry.shown() if name in row}}
    ordered = sorted(decisions.values(), key=lambda d: (models.index(d["model"]), d["attribute"], d["id"]))
    budgets = method_budgets(table)
    data = {"models": models, "methods": methods, "budgets": {m: budgets.get(m, "") for m in methods},
            "regions": sorted({d["region"] for d in ordered if d.get("region")}),
            "attributes": sorted({d["attribute"] for d in ordered}),
            "shown": [list(s) for s in registry.shown()],
            "sortable": {k: d for k, d in registry.sortable().items() if k in table},
            "mode": mode, "decisions": ordered, "pictures": pictures}
    if column != "attribute":  # the filter's name (the page's default: attribute)
        data = {**data, "names": {"attribute": column}}
    return data


PAIR_PARTS = (("similarity", "positive"), ("dissimilarity", "negative"))
DISSIMILARITY_METRICS = ("rp_dissimilarity", "lift_dissimilarity")
PAIR_LEGEND = ("Per method, the similarity map (positive part of the signed map of the pair's score) and the "
               "dissimilarity map (negative part), viridis over the image, each scaled to its own maximum; a grey "
               "image outlined in orange has no mass (or the method could not run: the reason is given). The "
               "partner is the other photo of the pair (for a region-swap pair, the swapped copy; for a control, "
               "the photo with its own part from another photo of the person; for a triplet, the mate M, whose "
               "twin M' carries a donor's region: the score is the preference for M over M'); for pairs with an "
               "expected region (for a triplet: where P' differs from P), it is bright over the faded partner, "
               "and RP / lift say how much of each map lies there; the game (triplets): the fraction of the probe "
               "switched to P' in map order when it first prefers the twin, lower is better. Metrics of the "
               "shown map(s); blank = undefined.")


def pair_gallery_data(metric_csvs, attribution_h5s: dict[str, list], dataset_h5, pairs_h5, *,
                      regions: dict) -> dict:
    """The gallery of one embedder's explained pairs, in the attribute gallery's format: one card per
    pair (image, partner or swapped copy, and for each method its similarity map (positive part) and
    dissimilarity map (negative part)); the "attribute" filter is the pair kind. attribution_h5s:
    {method: [shard files]}."""
    from .data.pairs import expected_regions, read_pair_images

    table = pd.concat([pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in metric_csvs],
                      ignore_index=True)
    shown = [(n, label) for n, label in registry.shown() if n in table] + \
        [(n, label) for n, label in (("rp_dissimilarity", "RP (dissimilarity)"),
                                     ("lift_dissimilarity", "lift (dissimilarity)")) if n in table]
    metric_rows = {(r["method"], int(r["id"]), int(r["partner_id"]), str(r["kind"]), str(r["region"] or "")): r
                   for r in table.assign(region=table["region"].fillna("")).to_dict("records")}
    budgets = method_budgets(table)
    decisions: dict[tuple, dict] = {}
    maps_of: dict[tuple, np.ndarray] = {}
    rows: dict[tuple, tuple] = {}
    embedder = ""
    for method, paths in attribution_h5s.items():
        for path in paths:
            shard = read_shard(path)
            embedder = shard.model
            for k, key in enumerate(shard.keys()):
                key = (int(key[0]), int(key[1]), str(key[2]), str(key[3] or ""))
                maps_of[(method,) + key] = shard.maps[k]
                game_row = int(shard["game_row"][k]) if "game_row" in shard.columns else 0
                rows[key] = (int(shard["row"][k]), int(shard["partner_row"][k]), shard["kind"][k], shard["region"][k],
                             game_row)
                decisions.setdefault(key, {"model": embedder, "id": key[0], "partner": key[1],
                                           "attribute": shard["kind"][k], "region": shard["region"][k],
                                           "score": _number(shard["score"][k]), "methods": {}})
    keys = sorted(decisions)
    a_rows = [rows[k][0] for k in keys]
    b_rows = [rows[k][1] for k in keys]
    images = read_pair_images(dataset_h5, pairs_h5, a_rows)
    partners = read_pair_images(dataset_h5, pairs_h5, b_rows)
    outlines = expected_regions(dataset_h5, pairs_h5, a_rows, b_rows, [rows[k][2] for k in keys],
                                [rows[k][3] for k in keys], regions, probe_swap_rows=[rows[k][4] for k in keys])
    pictures: dict[str, str] = {}
    methods = []
    for index, key in enumerate(keys):
        record = decisions[key]
        tag = ":".join(str(k) for k in key)
        record["image"], record["labels"] = f"img:{tag}", f"partner:{tag}"
        pictures[record["image"]] = data_uri(images[index])
        partner = partners[index]
        if outlines[index].any():  # the expected region, bright over a faded partner
            from .data.pairs import resize_nearest

            inside = resize_nearest(outlines[index], partner.shape[0])[..., None]
            partner = np.where(inside, partner, 0.35 * partner + 0.65 * 255).astype(np.uint8)
        pictures[record["labels"]] = data_uri(partner)
        for method in attribution_h5s:
            a = maps_of.get((method,) + key)
            if a is None:
                continue
            row = metric_rows.get((method,) + key, {})
            for part, mode in PAIR_PARTS:
                name = f"{method} {part}"
                if name not in methods:
                    methods.append(name)
                picture = f"map:{name}:{':'.join(str(k) for k in key)}"
                heat = heat_of(a, mode)
                pictures[picture] = data_uri(overlay_rgb(images[index], heat))
                reason = row.get("not_applicable") or row.get("degenerate" if part == "similarity"
                                                              else "degenerate_dissimilarity")
                if reason == "not_a_region_pair":
                    reason = ""
                record["methods"][name] = {
                    "map": picture,
                    "degenerate": reason if isinstance(reason, str) and reason else
                    ("map has no mass" if heat is None else ""), "warning": "",
                    # the similarity map carries the pair's metrics, the dissimilarity map its own two
                    "metrics": {n: _number(row.get(n)) for n, _ in shown
                                if (n in DISSIMILARITY_METRICS) == (part == "dissimilarity")}}
    ordered = [decisions[k] for k in sorted(keys, key=lambda k: (decisions[k]["attribute"], decisions[k]["region"], k))]
    base = {m.rsplit(" ", 1)[0] for m in methods}
    return {"models": [embedder] if embedder else [], "methods": methods,
            "budgets": {m: budgets.get(m.rsplit(" ", 1)[0], "") for m in methods if m.rsplit(" ", 1)[0] in base},
            "regions": sorted({d["region"] for d in ordered if d["region"]}),
            "attributes": sorted({d["attribute"] for d in ordered}), "shown": [list(x) for x in shown],
            "sortable": {k: d for k, d in {**registry.sortable(), "lift_dissimilarity": 1}.items() if k in table},
            "mode": "positive part (similarity) / negative part (dissimilarity)",
            "names": {"attribute": "pair kind", "second": "partner", "score": "score", "unit": "pairs",
                      "legend": PAIR_LEGEND},
            "decisions": ordered, "pictures": pictures}


def build_pair_gallery(metric_csvs, attribution_h5s: dict, dataset_h5, pairs_h5, out_html, *, regions: dict) -> int:
    data = pair_gallery_data(metric_csvs, attribution_h5s, dataset_h5, pairs_h5, regions=regions)
    write_gallery(data, out_html, title=f"facexai verification gallery: {data['models'][0] if data['models'] else ''}")
    return len(data["decisions"])


def _cap(decisions: dict, limit: int) -> dict:
    """At most `limit` decisions per model, round robin over attributes in id order."""
    by_model = defaultdict(lambda: defaultdict(list))
    for key in sorted(decisions, key=lambda k: (k[0], k[2], k[1])):
        by_model[key[0]][key[2]].append(key)
    kept = set()
    for per_attribute in by_model.values():
        queues = [list(v) for _, v in sorted(per_attribute.items())]
        taken = 0
        while taken < limit and any(queues):
            for q in queues:
                if q and taken < limit:
                    kept.add(q.pop(0))
                    taken += 1
    return {k: v for k, v in decisions.items() if k in kept}


def page_template():
    """The gallery page, a Jinja2 template shipped with the package (facexai/templates/)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("facexai", "templates"), autoescape=True)
    return env.get_template("gallery.html.j2")


def write_gallery(data: dict, out_html, title: str = "facexai gallery") -> None:
    # the data go inside <script type="application/json">: JSON with "</" escaped, not HTML-escaped
    import markupsafe

    payload = json.dumps(data, allow_nan=False, separators=(",", ":")).replace("</", "<\\/")
    html = page_template().render(title=title, data=markupsafe.Markup(payload))
    with atomic_path(out_html) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(html)
    log.info("gallery: %d decisions, %d pictures, %.1f MB -> %s", len(data["decisions"]), len(data["pictures"]),
             len(html) / 1e6, out_html)


def build_gallery(metric_csvs, attribution_h5s: dict, dataset_h5s: dict, out_html, *, regions: dict,
                  mode: str = "positive", max_per_model: int | None = None, mean_maps: tuple | None = None) -> int:
    """The gallery page; `mean_maps` ({model: mean-map file}, {model: share table}) adds the view of
    the aligned mean maps (facexai/mean_maps.py) above the cards."""
    data = gallery_data(metric_csvs, attribution_h5s, dataset_h5s, regions=regions, mode=mode,
                        max_per_model=max_per_model)
    if mean_maps is not None:
        from .mean_maps import gallery_view

        entries, pictures = gallery_view(*mean_maps)
        data = {**data, "mean_maps": entries, "pictures": {**data["pictures"], **pictures}}
    write_gallery(data, out_html)
    return len(data["decisions"])

