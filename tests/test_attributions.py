import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from captum.attr import IntegratedGradients
from torch import nn

from facexai.attributions import METHODS, ClassTask, PairTask, get_method
from facexai.attributions.rise import BLACK, rise_masks
from facexai.models.backbones import build_model

FAST = {"rise": {"n_masks": 64}, "corrrise": {"n_masks": 64, "fill": "black"}, "lime": {"num_samples": 40},
        "shap": {"nsamples": 16}, "integrated_gradients": {"n_steps": 8}}


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model("resnet_small", 3, width=4).eval()


@pytest.mark.parametrize("name", sorted(METHODS))
@pytest.mark.parametrize("kind", ["class", "pair"])
def test_every_method_gives_finite_maps_for_both_target_kinds(model, name, kind):
    x = torch.randn(3, 3, 24, 24)
    if kind == "class":
        task = ClassTask(model, torch.tensor([0, 1, 2]))
    else:
        partner = torch.randn(3, 3, 24, 24)
        task = PairTask(model, model(partner).detach(), [7, 8, 9])
        task.oracle_images = (x, partner)
    if METHODS[name].needs_labels:  # the runners give such a method the explained images' label maps
        task.part_labels = np.random.default_rng(0).integers(0, 19, (3, 48, 48)).astype(np.uint8)
    if kind == "class" and METHODS[name].oracle:  # an oracle reads a pair's two photos
        with pytest.raises(ValueError, match="cannot explain attribute decisions"):
            get_method(name, FAST.get(name))(task, x, np.array([1, 2, 3]), seed=0)
        return
    maps = get_method(name, FAST.get(name))(task, x, np.array([1, 2, 3]), seed=0)
    assert maps.shape == (3, 24, 24) and maps.dtype == np.float32 and np.isfinite(maps).all()


def test_the_difference_oracle_by_hand():
    """|a - b| summed over the colour channels of the pixels in [0, 1] (sigma 0: unsmoothed)."""
    from facexai.data.samples import normalise

    a = torch.zeros(1, 3, 4, 4)
    b = torch.zeros(1, 3, 4, 4)
    b[0, 0, 1, 2], b[0, 1, 1, 2], b[0, 2, 3, 0] = 0.5, 0.25, 1.0
    task = PairTask(nn.Flatten(), torch.ones(1, 48), [1])
    task.oracle_images = (normalise(a), normalise(b))
    maps = get_method("difference", {"sigma": 0.0})(task, normalise(a), np.array([0]), seed=0)
    expected = np.zeros((4, 4), np.float32)
    expected[1, 2], expected[3, 0] = 0.75, 1.0
    assert np.allclose(maps[0], expected, atol=1e-6)
    smooth = get_method("difference", {"sigma": 1.0})(task, normalise(a), np.array([0]), seed=0)
    assert np.isclose(smooth.sum(), 1.75, atol=1e-5) and smooth[0, 1, 2] < 0.75


def manual_gradcam(model, x, targets):
    """Grad-CAM written out: weights = spatial mean of d y_c / d A, map = ReLU(sum_k w_k A_k), bilinear up."""
    feats = {}
    handle = model.cam_layer.register_forward_hook(lambda m, i, o: feats.__setitem__("A", o))
    out = model(x)
    handle.remove()
    A = feats["A"]
    (grad,) = torch.autograd.grad(out.gather(1, targets[:, None]).sum(), A)
    cam = F.relu((grad.mean(dim=(2, 3), keepdim=True) * A).sum(dim=1, keepdim=True))
    return F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0].detach().numpy()


def test_gradcam_equals_the_written_out_formula(model):
    x, targets = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 1])
    maps = get_method("gradcam")(ClassTask(model, targets), x, np.arange(4), seed=0)
    assert np.allclose(maps, manual_gradcam(model, x, targets), atol=1e-6) and (maps >= 0).all()


def test_gradcampp_reduces_to_its_formula_on_a_linear_head():
    """A model whose score is linear in the cam activations: g is constant per channel, so
    alpha = 1 / (2 + sum(A) g) and the map can be computed by hand."""
    class Linear(nn.Module):
        def __init__(self):
            super().__init__()
            self.cam_layer = nn.Identity()

        def forward(self, x):
            a = self.cam_layer(x)
            return (a.mean(dim=(2, 3)) * torch.tensor([1.0, -2.0, 0.5])).sum(1, keepdim=True)

    x = torch.rand(1, 3, 4, 4)
    maps = get_method("gradcampp")(ClassTask(Linear(), torch.tensor([0])), x, np.arange(1), seed=0)
    g = torch.tensor([1.0, -2.0, 0.5]) / 16
    A = x[0]
    alpha = g**2 / (2 * g**2 + A.sum(dim=(1, 2)) * g**3)
    w = alpha * F.relu(g) * 16
    expected = F.relu((w[:, None, None] * A).sum(0))
    assert np.allclose(maps[0], expected.numpy(), atol=1e-6)


def test_integrated_gradients_equal_captums_reference(model):
    x, targets = torch.randn(2, 3, 16, 16), torch.tensor([2, 0])
    ours = get_method("integrated_gradients", {"n_steps": 16, "baseline": "grey"})(
        ClassTask(model, targets), x, np.arange(2), seed=0)
    reference = IntegratedGradients(model).attribute(x, baselines=torch.zeros_like(x), target=targets, n_steps=16,
                                                     method="gausslegendre").sum(dim=1).detach().numpy()
    assert np.allclose(ours, reference, atol=1e-5)


class RegionModel(nn.Module):
    """Score = sum over a square region of the first channel's brightness above black: it uses that
    region and nothing else."""

    def __init__(self, region):
        super().__init__()
        self.region = region
        self.cam_layer = nn.Identity()

    def forward(self, x):
        r = self.region
        inside = (x[:, 0] - BLACK)[:, r[0]:r[1], r[2]:r[3]]
        return (inside.mean(dim=(1, 2)) - 1.0).view(-1, 1)


REGION = (8, 20, 4, 14)


def region_mask(shape=(32, 32)):
    m = np.zeros(shape, bool)
    m[REGION[0]:REGION[1], REGION[2]:REGION[3]] = True
    return m


def grown(mask, margin):
    from scipy.ndimage import binary_dilation

    return binary_dilation(mask, iterations=margin) if margin else mask


# Perturbation methods see the image through their footprint (a RISE cell, an occlusion window):
# their maps are the true map blurred by it, so the region is grown by that footprint before the
# mass is counted; Integrated Gradients is exact at the pixel.
@pytest.mark.parametrize("name, params, margin", [
    ("rise", {"n_masks": 12000, "cells": 16, "batch_size": 2000}, 2),  # its noise falls as 1/sqrt(masks)
    ("integrated_gradients", {"n_steps": 16}, 0),
    ("occlusion", {"window": 4, "stride": 2}, 3),
])
def test_methods_find_the_region_a_model_uses(name, params, margin):
    torch.manual_seed(1)
    x = torch.rand(2, 3, 32, 32) * 2.0 + BLACK + 0.5  # every pixel brighter than black
    maps = get_method(name, params)(ClassTask(RegionModel(REGION), torch.zeros(2, dtype=torch.long)), x,
                                    np.array([0, 1]), seed=0)
    positive = np.maximum(maps, 0)
    share = positive[:, grown(region_mask(), margin)].sum(axis=1) / positive.sum(axis=(1, 2))
    assert (share >= 0.9).all(), share
    # and the density inside the region itself is far above the density outside
    inside = positive[:, region_mask()].mean(axis=1)
    outside = positive[:, ~grown(region_mask(), margin)].mean(axis=1)
    assert (inside > 20 * outside).all()


def test_corrrise_dissimilarity_lies_where_a_pair_differs():
    """Embedding = (mass kept in region R, mass kept elsewhere); the partner's embedding is (0, 1):
    it differs from the image only in R. Keeping R's pixels lowers the similarity, keeping the rest
    raises it."""
    class TwoPart(nn.Module):
        def forward(self, x):
            kept = x[:, 0] - BLACK
            r = torch.from_numpy(region_mask()).to(x.dtype)
            return torch.stack([(kept * r).mean(dim=(1, 2)), (kept * (1 - r)).mean(dim=(1, 2))], dim=1)

    x = torch.full((1, 3, 32, 32), BLACK + 2.0)
    task = PairTask(TwoPart(), torch.tensor([[0.0, 1.0]]), [1])
    corr = get_method("corrrise", {"n_masks": 2000, "cells": 16, "fill": "black"})(task, x, np.array([0]), seed=0)[0]
    dissimilarity, similarity = np.maximum(-corr, 0), np.maximum(corr, 0)
    assert dissimilarity[grown(region_mask(), 2)].sum() / dissimilarity.sum() >= 0.9
    assert similarity[~region_mask()].sum() / similarity.sum() >= 0.9
    outside = corr[~grown(region_mask(), 2)]
    assert corr[region_mask()].mean() < -0.2 and outside.mean() > 0 and (outside > 0).mean() > 0.9


def test_rise_masks_are_smooth_shifted_and_seeded():
    a = rise_masks(50, 4, 0.5, (20, 20), seed=3)
    assert a.shape == (50, 1, 20, 20) and float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.equal(a, rise_masks(50, 4, 0.5, (20, 20), seed=3))
    assert not torch.equal(a, rise_masks(50, 4, 0.5, (20, 20), seed=4))
    assert 0.4 < float(a.mean()) < 0.6
    assert ((a > 0.01) & (a < 0.99)).float().mean() > 0.2  # bilinear, not blocky


@pytest.mark.parametrize("name", ["lime", "shap", "rise", "random", "smoothgrad"])
def test_seeded_methods_reproduce_and_ignore_batching(model, name):
    x = torch.randn(3, 3, 24, 24)
    task = ClassTask(model, torch.tensor([0, 1, 2]))
    ids = np.array([7, 8, 9])
    method = get_method(name, FAST.get(name))
    whole = method(task, x, ids, seed=5)
    assert np.array_equal(whole, method(task, x, ids, seed=5))
    part = method(ClassTask(model, torch.tensor([1, 2])), x[1:], ids[1:], seed=5)
    assert np.allclose(whole[1:], part, atol=1e-5)


def smooth_images(n, size=24, seed=0):
    """Images with blobs of colour (noise gives SLIC one superpixel, and LIME a flat map)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(n, 3, 4, 4, generator=g) * 1.5
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)


@pytest.mark.parametrize("name,params", [("lime", {"num_samples": 40, "batch_size": 7}),
                                         ("shap", {"nsamples": 12, "batch_size": 5})])
@pytest.mark.parametrize("kind", ["class", "pair"])
def test_batched_engine_gives_the_package_maps(model, name, params, kind):
    """Same seeded draws, the model called across images in chunks that cut through rows: the
    package's own loop (engine: package) must give the same maps."""
    x = smooth_images(3)
    task = (ClassTask(model, torch.tensor([0, 1, 2])) if kind == "class"
            else PairTask(model, model(smooth_images(3, seed=1)).detach(), [7, 8, 9]))
    ids = np.array([4, 17, 23])
    batched = get_method(name, {**params, "engine": "batched"})(task, x, ids, seed=2)
    package = get_method(name, {**params, "engine": "package"})(task, x, ids, seed=2)
    assert all(len(np.unique(m)) > 3 for m in package)  # not a flat map: the comparison means something
    np.testing.assert_allclose(batched, package, rtol=1e-4, atol=1e-6 * np.abs(package).max())
    other = get_method(name, {**params, "engine": "batched"})(task, x, ids, seed=3)
    assert not np.allclose(other, package)  # the seed reaches the draws


@pytest.mark.parametrize("name", ["lime", "shap"])
def test_unknown_engine_is_named(name):
    with pytest.raises(ValueError, match=rf"methods.{name}.engine: 'fast'"):
        get_method(name, {"engine": "fast"})


def test_a_task_with_too_few_targets_is_a_clear_error(model):
    x = torch.randn(3, 3, 24, 24)
    with pytest.raises(ValueError, match="task: 3 images but 2 targets"):
        get_method("gradcam")(ClassTask(model, torch.tensor([0, 1])), x, np.arange(3), seed=0)
    with pytest.raises(ValueError, match="task: 3 images but 1 partner embeddings"):
        PairTask(model, torch.randn(1, 3), [1]).forward(x, torch.randn(1, 3))


def test_unknown_method_or_parameter_is_named():
    with pytest.raises(ValueError, match="unknown attribution method 'gradcm'"):
        get_method("gradcm")
    with pytest.raises(ValueError, match=r"methods.gradcam: unknown parameter\(s\) \['layer_name'\]"):
        get_method("gradcam", {"layer_name": "x"})


@pytest.mark.parametrize("kind", ["class", "pair"])
def test_score_matrix_agrees_with_row_scores(model, kind):
    x = torch.randn(5, 3, 24, 24)
    task = (ClassTask(model, torch.tensor([0, 2, 1]), probability=True) if kind == "class"
            else PairTask(model, model(torch.randn(3, 3, 24, 24)).detach(), [7, 8, 9]))
    with torch.no_grad():
        matrix = task.score_matrix(x, [2, 0])
        for j, row in enumerate([2, 0]):
            assert torch.allclose(matrix[:, j], task.score(x, [row] * 5), atol=1e-5)


def test_smoothgrad_of_a_linear_score_is_its_weights():
    """For S = sum(w * x) the gradient is w whatever the noise: SmoothGrad must return sum_c w."""
    torch.manual_seed(0)
    w = torch.randn(1, 3, 8, 8)

    class Linear(nn.Module):
        def forward(self, x):
            return (x * w).sum(dim=(1, 2, 3)).view(-1, 1)

    maps = get_method("smoothgrad", {"nt_samples": 4, "stdev": 0.5})(
        ClassTask(Linear(), torch.zeros(2, dtype=torch.long)), torch.randn(2, 3, 8, 8), np.arange(2), seed=0)
    assert np.allclose(maps, w.sum(dim=1).numpy(), atol=1e-5)


def _skewed_masks(monkeypatch, n_masks=20000, size=24):
    """Independent binary pixel masks whose keep rate runs from 0.2 (left) to 0.8 (right): a mask
    set with a strong keep pattern, served to RISE and CorrRISE instead of the smooth masks."""
    keep = np.linspace(0.2, 0.8, size)[None, None, None, :].repeat(size, axis=2)
    masks = torch.from_numpy((np.random.default_rng(11).random((n_masks, 1, size, size)) < keep).astype(np.float32))
    import facexai.attributions.rise as rise

    monkeypatch.setattr(rise, "rise_masks", lambda *args, **kwargs: masks)
    return keep[0, 0]


class LinearRegion(nn.Module):
    """logit = mean over R of the first channel (above black): known answer, R uniform, 0 outside."""

    def forward(self, x):
        r = torch.zeros(24, 24)
        r[8:16, 6:18] = 1
        return (((x[:, 0] - BLACK) * r).sum(dim=(1, 2)) / r.sum()).view(-1, 1)


def _skewed_setup(monkeypatch):
    """The skewed mask set, a flat image, the LinearRegion task and its region R."""
    keep = _skewed_masks(monkeypatch)
    region = np.zeros((24, 24), bool)
    region[8:16, 6:18] = True
    task = ClassTask(LinearRegion(), torch.zeros(1, dtype=torch.long))
    return keep, torch.full((1, 3, 24, 24), BLACK + 1.0), task, region


def test_rise_difference_estimator_does_not_follow_the_mask_set(monkeypatch):
    keep, x, task, region = _skewed_setup(monkeypatch)

    maps = {est: get_method("rise", {"n_masks": 20000, "estimator": est, "batch_size": 5000})(
        task, x, np.array([0]), seed=0)[0] for est in ("difference", "centred", "paper")}
    # the answer: keeping a pixel of R raises the logit by 1 / |R| (the probability, at a logit near
    # 0.5, by sigmoid'(0.5) / |R|), keeping any other pixel changes nothing
    expected = float(torch.sigmoid(torch.tensor(0.5)) * (1 - torch.sigmoid(torch.tensor(0.5)))) / region.sum()
    diff = maps["difference"]
    assert diff[region].mean() == pytest.approx(expected, rel=0.05)
    np.testing.assert_allclose(diff[region], expected, rtol=0.3)   # mask noise: about 6 % per pixel
    assert np.abs(diff[~region]).max() < 0.3 * expected
    # nothing of the keep pattern is left: inside R the values do not follow the keep rate
    assert abs(spearmanr(diff[region], keep[region])[0]) < 0.2
    # the paper's estimator is dominated by the mask set (offset mean(S) * m(p) / p): outside R it
    # follows the keep pattern, and pixels the model ignores outrank pixels it uses
    assert spearmanr(maps["paper"][~region], keep[~region])[0] > 0.9
    assert maps["paper"][~region].max() > maps["paper"][region].min()


def test_corrrise_has_no_keep_rate_artefact(monkeypatch):
    keep, x, task, region = _skewed_setup(monkeypatch)

    corr = get_method("corrrise", {"n_masks": 20000, "batch_size": 5000, "fill": "black"})(task, x, np.array([0]),
                                                                                          seed=0)[0]
    assert corr[region].min() > np.abs(corr[~region]).max()
    assert abs(spearmanr(corr[~region], keep[~region])[0]) < 0.2


def test_random_baseline_of_a_pair_never_depends_on_the_model(model):
    x = torch.randn(2, 3, 24, 24)
    torch.manual_seed(5)
    other = build_model("resnet_small", 3, width=4).eval()
    maps = [get_method("random")(PairTask(m, m(x).detach(), [31, 32]), x, np.array([1, 2]), seed=0)
            for m in (model, other)]
    np.testing.assert_array_equal(maps[0], maps[1])   # same pairs, other weights: the same maps
    with pytest.raises(TypeError):
        PairTask(model, model(x).detach())            # partner ids are required
    with pytest.raises(ValueError, match="2 partner embeddings but 1 partner ids"):
        PairTask(model, model(x).detach(), [31])


def test_random_baseline_of_a_pair_is_signed_and_at_chance_both_ways(model):
    """Pair maps are read signed (similarity = positive part, dissimilarity = negative part): the
    pair baseline is uniform in [-1, 1), so both parts are random maps with lift about 1 in any region;
    an attribute decision's baseline stays uniform in [0, 1)."""
    from facexai.metrics.topq import mask_metrics

    x = torch.randn(1, 3, 64, 64)
    signed = get_method("random")(PairTask(model, model(x).detach(), [31]), x, np.array([1]), seed=0)
    plain = get_method("random")(ClassTask(model, torch.tensor([31])), x, np.array([1]), seed=0)  # same key
    np.testing.assert_allclose(signed, 2 * plain - 1, atol=1e-6)   # the same draws
    assert (plain >= 0).all() and abs((signed < 0).mean() - 0.5) < 0.02
    region = np.zeros((1, 64, 64), bool)
    region[0, 10:30, 20:50] = True
    for mode in ("positive", "negative"):
        lift = mask_metrics(signed, region, mode=mode)["lift"][0]
        assert abs(lift - 1.0) < 0.1, (mode, lift)


def test_integrated_gradients_reports_its_completeness_error(model):
    x = torch.randn(3, 3, 24, 24)
    task = ClassTask(model, torch.tensor([0, 1, 2]))
    coarse = get_method("integrated_gradients", {"n_steps": 2, "completeness_tolerance": 0.01})
    fine = get_method("integrated_gradients", {"n_steps": 64})
    maps = {name: method(task, x, np.arange(3), seed=0) for name, method in (("coarse", coarse), ("fine", fine))}
    # the error is |sum(map) - (S(x) - S(b))| / |S(x) - S(b)|, checked by hand on the logits
    with torch.no_grad():
        span = (task.forward(x, *task.extra) - task.forward(torch.full_like(x, BLACK), *task.extra))[:, 0].numpy()
    by_hand = np.abs(maps["coarse"].reshape(3, -1).sum(axis=1) - span) / np.abs(span)
    np.testing.assert_allclose(coarse.diagnostics["completeness_error"], by_hand, rtol=1e-3, atol=1e-6)
    assert (fine.diagnostics["completeness_error"] < coarse.diagnostics["completeness_error"]).all()
    assert coarse.diagnostics["completeness_flagged"].any()
    gradcam = get_method("gradcam")
    gradcam(task, x, np.arange(3), seed=0)
    assert gradcam.diagnostics == {}          # methods without a self-check report nothing


def test_partner_fill_shows_where_a_pair_differs_whatever_the_embedder():
    """A photo and its partner differ only inside R. With the partner fill, masking a pixel of R makes
    the pair identical there, so keeping R's pixels lowers the similarity for any embedder: CorrRISE's
    dissimilarity mass goes to R."""
    torch.manual_seed(3)
    embedder = build_model("resnet_small", 16, width=4).eval()
    rng = np.random.default_rng(4)
    partner = torch.from_numpy(rng.normal(0, 1, (1, 3, 32, 32)).astype(np.float32))
    x = partner.clone()
    r = torch.from_numpy(region_mask())
    x[:, :, r] = torch.from_numpy(rng.normal(0, 1, (1, 3, int(r.sum()))).astype(np.float32))
    with torch.no_grad():
        task = PairTask(embedder, embedder(partner), [1], partner_images=partner)
    corr = get_method("corrrise", {"n_masks": 1000, "cells": 8, "fill": "partner"})(task, x, np.array([0]), seed=0)[0]
    dissimilarity = np.maximum(-corr, 0)
    grown_r = grown(region_mask(), 4)   # the masks' footprint blurs the map by about a cell
    lift = (dissimilarity[grown_r].sum() / dissimilarity.sum()) / grown_r.mean()
    assert lift > 2.0, lift
    with pytest.raises(ValueError, match="fill 'partner' needs a verification pair task"):
        get_method("corrrise", {"n_masks": 8, "fill": "partner"})(
            ClassTask(embedder, torch.tensor([0])), x, np.array([0]), seed=0)


def test_rise_and_corrrise_give_no_map_for_a_score_that_only_rounding_moves():
    """A score that masks move by no more than float32 rounding carries no information: the map is 0
    (an all-zero map, reported), not the pattern of the noise; a score that masks do move keeps its map."""
    from facexai.attributions.rise import constant_rows

    assert constant_rows(np.array([[0.5, 0.5 + 1e-8, 0.5 - 1e-8], [0.5, 0.6, 0.4]])).tolist() == [True, False]

    class Flat(nn.Module):  # 0.3 plus a rounding-sized trace of the input
        def __init__(self, scale):
            super().__init__()
            self.scale = scale

        def forward(self, x):
            return 0.3 + self.scale * x.mean(dim=(1, 2, 3), keepdim=True)[:, :, 0, 0]

    x = torch.rand(1, 3, 16, 16) + 1.0
    for scale, empty in ((1e-9, True), (1e-2, False)):
        task = ClassTask(Flat(scale), torch.tensor([0]))
        for name in ("rise", "corrrise"):
            maps = get_method(name, {"n_masks": 64, "cells": 4, "fill": "black"})(task, x, np.array([0]), seed=0)
            assert (np.abs(maps).max() == 0) == empty, (name, scale)


class _RegionSum(nn.Module):
    """Logit k = the mean of channel 0 over region k (a row of zeros: a constant logit)."""

    def __init__(self, regions: torch.Tensor):
        super().__init__()
        self.register_buffer("w", regions.float() / regions.float().sum(dim=(1, 2), keepdim=True).clamp_min(1))

    def forward(self, x):
        return torch.einsum("nhw,khw->nk", x[:, 0], self.w)


def test_corrrise_stops_each_map_where_it_converged():
    """tolerance > 0: a score that no mask moves stops at the second block with an all-zero map; a
    score that follows half the image stops early on the map of its region; tolerance 0 gives every
    row all masks and the same maps as the fixed count; the method's maps and counts equal the
    simulation of the rule on scores drawn for every mask (benchmarks/corrrise_convergence.py)."""
    from facexai.attributions.rise import _MaskedScores, converged_counts, correlation_maps

    size, block, n_masks = 16, 40, 400
    half = torch.zeros(size, size, dtype=torch.bool)
    half[:, : size // 2] = True
    regions = torch.stack([half, torch.zeros_like(half)])
    model = _RegionSum(regions).eval()
    x = torch.rand(2, 3, size, size)
    task = ClassTask(model, torch.tensor([0, 1]))
    params = {"n_masks": n_masks, "cells": 4, "fill": "black", "block": block}
    method = get_method("corrrise", {**params, "tolerance": 0.25})
    maps = method(task, x, np.array([0, 1]), seed=0)
    used = method.diagnostics["masks_used"]
    assert used[1] == 2 * block and (maps[1] == 0).all()
    assert 2 * block <= used[0] < n_masks
    assert spearmanr(maps[0].ravel(), half.numpy().ravel())[0] > 0.8
    # the same rule on scores of every mask (drawn once): the same counts and maps
    masks, scores = _MaskedScores({**params, "p": 0.5, "batch_size": 32}, 0)(
        task.with_probability(True), x, np.array([0, 1]))
    flat = masks.view(n_masks, -1).numpy()
    sim_used, sim_maps = converged_counts(scores.numpy(), flat, block, 0.25)
    np.testing.assert_array_equal(sim_used, used)
    np.testing.assert_allclose(sim_maps.reshape(maps.shape), maps, atol=1e-6)
    # tolerance 0: every row gets every mask, as the fixed count
    fixed = get_method("corrrise", {**params, "tolerance": 0.0})
    fixed_maps = fixed(task, x, np.array([0, 1]), seed=0)
    assert (fixed.diagnostics["masks_used"] == n_masks).all()
    np.testing.assert_allclose(fixed_maps, correlation_maps(scores.numpy(), flat).reshape(maps.shape), atol=1e-6)
    assert fixed.budget() == f"{n_masks} masks" and method.budget() == f"<= {n_masks} masks, tol 0.25 per {block}"
    with pytest.raises(ValueError, match="corrrise.block"):
        get_method("corrrise", {**params, "tolerance": 0.1, "block": 0})(task, x, np.array([0, 1]), seed=0)


def test_map_change_is_the_relative_l2_change():
    from facexai.attributions.rise import map_change

    new = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]])
    old = np.array([[3.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(map_change(new, old), [4 / 5, 0.0, 1.0])
    assert map_change(np.zeros((1, 2)), np.ones((1, 2)))[0] == np.inf
