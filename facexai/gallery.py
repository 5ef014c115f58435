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
    """The gallery's content. attribution_h5s: {(model, method): [shard files]}; dataset_h5s:
    {model: fused dataset the model is explained on}; metric_csvs: the per-sample metric tables.
    max_per_model caps the decisions per model (taken in turn from each attribute, lowest ids first)
    so that the file stays small at dataset scale; None keeps all."""
    needed = {"model", "method", "budget", "id", "attribute", "region", "degenerate", "completeness_flagged",
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
            for k, key in enumerate(shard.keys()):
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
    metric_rows = {(r["model"], r["method"], int(r["id"]), r["attribute"]): r
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
            region = any_row["region"] if any_row else ""
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
    return {"models": models, "methods": methods, "budgets": {m: budgets.get(m, "") for m in methods},
            "regions": sorted({d["region"] for d in ordered if d.get("region")}),
            "attributes": sorted({d["attribute"] for d in ordered}),
            "shown": [list(s) for s in registry.shown()],
            "sortable": {k: d for k, d in registry.sortable().items() if k in table},
            "mode": mode, "decisions": ordered, "pictures": pictures}


PAIR_PARTS = (("similarity", "positive"), ("dissimilarity", "negative"))
DISSIMILARITY_METRICS = ("rp_dissimilarity", "lift_dissimilarity")
PAIR_LEGEND = ("Per method, the similarity map (positive part of the signed map of the pair's score) and the "
               "dissimilarity map (negative part), viridis over the image, each scaled to its own maximum; a grey "
               "image outlined in orange has no mass (or the method could not run: the reason is given). The partner "
               "is the other photo of the pair (for a region-swap pair, the swapped copy); for pairs that differ in one "
               "region, that region is bright over the faded partner, and RP / lift (dissimilarity) say how much of "
               "the dissimilarity map lies there. Metrics of the shown map(s); blank = undefined.")


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
    metric_rows = {(r["method"], int(r["id"]), int(r["partner_id"])): r for r in table.to_dict("records")}
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
                key = (int(key[0]), int(key[1]))
                maps_of[(method,) + key] = shard.maps[k]
                rows[key] = (int(shard["row"][k]), int(shard["partner_row"][k]), shard["kind"][k], shard["region"][k])
                decisions.setdefault(key, {"model": embedder, "id": key[0], "partner": key[1],
                                           "attribute": shard["kind"][k], "region": shard["region"][k],
                                           "score": _number(shard["score"][k]), "methods": {}})
    keys = sorted(decisions)
    a_rows = [rows[k][0] for k in keys]
    b_rows = [rows[k][1] for k in keys]
    images = read_pair_images(dataset_h5, pairs_h5, a_rows)
    partners = read_pair_images(dataset_h5, pairs_h5, b_rows)
    outlines = expected_regions(dataset_h5, pairs_h5, a_rows, b_rows, [rows[k][2] for k in keys],
                                [rows[k][3] for k in keys], regions)
    pictures: dict[str, str] = {}
    methods = []
    for index, key in enumerate(keys):
        record = decisions[key]
        record["image"], record["labels"] = f"img:{key[0]}:{key[1]}", f"partner:{key[0]}:{key[1]}"
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
                picture = f"map:{name}:{key[0]}:{key[1]}"
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


def write_gallery(data: dict, out_html, title: str = "facexai gallery") -> None:
    payload = json.dumps(data, allow_nan=False, separators=(",", ":")).replace("</", "<\\/")
    html = (TEMPLATE.replace("@@TITLE@@", title).replace("@@DATA@@", payload))
    with atomic_path(out_html) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(html)
    log.info("gallery: %d decisions, %d pictures, %.1f MB -> %s", len(data["decisions"]), len(data["pictures"]),
             len(html) / 1e6, out_html)


def build_gallery(metric_csvs, attribution_h5s: dict, dataset_h5s: dict, out_html, *, regions: dict,
                  mode: str = "positive", max_per_model: int | None = None) -> int:
    data = gallery_data(metric_csvs, attribution_h5s, dataset_h5s, regions=regions, mode=mode,
                        max_per_model=max_per_model)
    write_gallery(data, out_html)
    return len(data["decisions"])


TEMPLATE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>@@TITLE@@</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#fafafa;color:#222}
header{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:8px 14px;z-index:1}
header h1{font-size:17px;margin:0 0 6px 0}
label{margin-right:12px;font-size:13px}
select{font-size:13px}
#count{font-size:13px;color:#555;margin-left:8px}
#legend{font-size:12px;color:#555;margin-top:4px}
#cards{display:flex;flex-wrap:wrap;gap:10px;padding:12px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px;font-size:12px}
.card .head{font-weight:600;margin-bottom:4px}
.pics{display:flex;gap:4px;flex-wrap:wrap}
.pic{text-align:center;font-size:11px;color:#555}
.pic img{width:112px;height:112px;display:block;image-rendering:auto}
.pic.degenerate img{outline:2px solid #d55e00}
table{border-collapse:collapse;margin-top:4px}
td{padding:0 6px 0 0}
td.v{text-align:right;font-variant-numeric:tabular-nums}
.warn{color:#d55e00}
</style></head><body>
<header><h1>@@TITLE@@</h1>
<label>model <select id="model"></select></label>
<label>method <select id="method"></select></label>
<label>region <select id="region"></select></label>
<label><span id="attribute-label">attribute</span> <select id="attribute"></select></label>
<label>sort by (best first) <select id="sort"></select></label>
<span id="count"></span>
<div id="legend"><span id="legend-text">Heat maps: viridis over the image, scaled to each map's maximum (mass mode: <span id="mode"></span>);
a grey image outlined in orange is a map with no mass. Label maps: classes of the expected region in colour,
the rest faded. Metrics are the per-sample values of the shown method(s); blank = undefined (the reason is
given below the table; sanity ρ and sMPRT ρ are computed on metrics.sanity.max_samples rows per shard only). With all methods
shown, sorting uses the first method with values of the metric.</span></div>
<noscript><p class="warn">The gallery needs JavaScript to draw its cards.</p></noscript>
</header>
<div id="cards"></div>
<script type="application/json" id="data">@@DATA@@</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const ALL = "(all)";
const NAMES = Object.assign({attribute: "attribute", second: "labels", score: "p", unit: "decisions"}, D.names || {});
const $ = (id) => document.getElementById(id);
function fill(id, values, withAll, notes) {
  const s = $(id);
  for (const v of (withAll ? [ALL] : []).concat(values)) {
    const o = document.createElement("option"); o.value = v;
    o.textContent = notes && notes[v] ? v + " (" + notes[v] + ")" : v; s.appendChild(o);
  }
}
fill("model", D.models, true);
fill("method", D.methods.concat(D.methods.length > 1 ? [ALL] : []), false, D.budgets);
fill("region", D.regions, true);
fill("attribute", D.attributes, true);
fill("sort", ["id"].concat(Object.keys(D.sortable)), false);
$("mode").textContent = D.mode;
$("attribute-label").textContent = NAMES.attribute;
if (NAMES.legend) $("legend-text").textContent = NAMES.legend;
const fmt = (v) => v === null || v === undefined ? "" : (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3));
function pic(src, caption, degenerate) {
  const d = document.createElement("div"); d.className = "pic" + (degenerate ? " degenerate" : "");
  const i = document.createElement("img"); i.src = D.pictures[src]; i.alt = caption; i.title = caption;
  i.dataset.key = src; d.appendChild(i);
  const c = document.createElement("div"); c.textContent = caption; d.appendChild(c); return d;
}
function card(dec, methods) {
  const c = document.createElement("div"); c.className = "card";
  c.dataset.model = dec.model; c.dataset.id = dec.id; c.dataset.attribute = dec.attribute; c.dataset.region = dec.region;
  const h = document.createElement("div"); h.className = "head";
  h.textContent = dec.model + " · id " + dec.id + (dec.partner !== undefined ? " vs " + dec.partner : "") + " · " +
    dec.attribute + (dec.region ? " → " + dec.region : "") + " · " + NAMES.score + "=" + fmt(dec.score);
  c.appendChild(h);
  const pics = document.createElement("div"); pics.className = "pics";
  pics.appendChild(pic(dec.image, "image", false));
  pics.appendChild(pic(dec.labels, NAMES.second + (dec.region ? ": " + dec.region : ""), false));
  for (const m of methods) {
    const e = dec.methods[m]; if (!e) continue;
    const p = pic(e.map, m, !!e.degenerate); p.classList.add("map"); p.dataset.method = m; pics.appendChild(p);
  }
  c.appendChild(pics);
  // metrics: one column per shown method (all methods side by side, or the selected one)
  const shownMethods = methods.filter(m => dec.methods[m]);
  if (shownMethods.length) {
    const t = document.createElement("table");
    if (shownMethods.length > 1) {
      const r = t.insertRow(); r.insertCell();
      for (const m of shownMethods) { const h = r.insertCell(); h.className = "v"; h.textContent = m.slice(0, 10); h.title = m; }
    }
    for (const [k, label] of D.shown) {
      if (!shownMethods.some(m => k in dec.methods[m].metrics)) continue;
      const r = t.insertRow(); r.insertCell().textContent = label;
      for (const m of shownMethods) {
        const v = r.insertCell(); v.className = "v"; v.dataset.metric = k; v.dataset.method = m;
        v.textContent = fmt(dec.methods[m].metrics[k]);
      }
    }
    c.appendChild(t);
    for (const m of shownMethods) {
      const e = dec.methods[m];
      if (e.degenerate) { const w = document.createElement("div"); w.className = "warn"; w.textContent = m + " undefined: " + e.degenerate; c.appendChild(w); }
      if (e.warning) { const w = document.createElement("div"); w.className = "warn"; w.textContent = m + ": " + e.warning; c.appendChild(w); }
    }
  }
  return c;
}
function state() { return {model: $("model").value, method: $("method").value, region: $("region").value,
                           attribute: $("attribute").value, sort: $("sort").value}; }
function render() {
  const s = state();
  const methods = s.method === ALL ? D.methods : [s.method];
  let shown = D.decisions.filter(d => (s.model === ALL || d.model === s.model) && (s.region === ALL || d.region === s.region)
                                      && (s.attribute === ALL || d.attribute === s.attribute));
  if (s.sort !== "id") {
    const dir = D.sortable[s.sort];  // best first; undefined values last
    // the first shown method with a value of the metric (a pair's dissimilarity map carries its own two)
    const by = methods.find(m => shown.some(d => d.methods[m] && d.methods[m].metrics[s.sort] != null)) || methods[0];
    const key = (d) => { const m = d.methods[by]; const v = m ? m.metrics[s.sort] : null;
                         return v === null || v === undefined ? -Infinity : dir * v; };
    shown = shown.slice().sort((a, b) => key(b) - key(a));
  }
  const box = $("cards"); box.replaceChildren(...shown.map(d => card(d, methods)));
  $("count").textContent = shown.length + " of " + D.decisions.length + " " + NAMES.unit;
  history.replaceState(null, "", "#" + new URLSearchParams(s).toString());
}
const KEYS = ["model", "method", "region", "attribute", "sort"];
function fromHash() {
  const h = new URLSearchParams(location.hash.slice(1));
  for (const k of KEYS) { const v = h.get(k); if (v !== null && [...$(k).options].some(o => o.value === v)) $(k).value = v; }
}
for (const k of KEYS) $(k).addEventListener("change", render);
window.addEventListener("hashchange", () => { fromHash(); render(); });
fromHash();
render();
</script></body></html>
"""
