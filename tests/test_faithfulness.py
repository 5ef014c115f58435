"""Metrics that call the model: deletion / insertion, ROAD, confidence change, falsification, sanity."""

import numpy as np
import pytest
import scipy.stats
import torch
from torch import nn

from facexai.attributions.base import ClassTask, PairTask, Task, get_method
from facexai.data.samples import normalise, to_model_input
from facexai.metrics.faithfulness import confidence_change, deletion_insertion, pixel_ranks, trapezoid_auc
from facexai.metrics.falsification import counterfactuals, falsification, normalise01
from facexai.metrics.road import impute, removal_masks, road
from facexai.metrics.sanity import (cascade_stages, cascading_randomisation, compare_maps, spearman_rows, ssim_rows,
                                   weight_layers)
from facexai.models.backbones import build_model

BLACK = normalise(0.0)


class LinearTask(Task):
    """score(x) = sum(W * x) over (C, H, W): every perturbation's effect is hand-computable."""

    def __init__(self, weights: torch.Tensor, n: int):
        super().__init__(None, (torch.zeros(n, dtype=torch.long),))
        self.weights = weights

    def forward(self, x, _):
        return (x * self.weights).sum(dim=(1, 2, 3)).view(-1, 1)


class RegionModel(nn.Module):
    """A classifier whose single logit is a function of the pixels in one fixed region only."""

    def __init__(self, region: torch.Tensor):
        super().__init__()
        self.register_buffer("region", region.float())

    def forward(self, x):
        inside = (x * self.region).sum(dim=(1, 2, 3)) / (3 * self.region.sum())
        return (4 * inside).view(-1, 1)


def test_deletion_and_insertion_by_hand():
    # 1x2 image, one channel of weight: score = 1*x0 + 3*x1 (channel 0 only); map ranks pixel 1 first
    w = torch.zeros(1, 3, 1, 2)
    w[0, 0] = torch.tensor([1.0, 3.0])
    x = torch.zeros(1, 3, 1, 2)
    x[0, 0] = torch.tensor([0.5, 1.0])
    task = LinearTask(w, 1)
    out = deletion_insertion(task, x, np.array([[[0.1, 0.9]]]), steps=2, baseline="black")
    # deletion: f=0 -> 0.5 + 3; f=1/2 (pixel 1 black) -> 0.5 + 3*BLACK; f=1 -> BLACK + 3*BLACK
    expected = np.array([3.5, 0.5 + 3 * BLACK, 4 * BLACK])
    np.testing.assert_allclose(out["deletion_curve"][0], expected, rtol=1e-6)
    np.testing.assert_allclose(out["deletion_auc"][0], (expected[0] + 2 * expected[1] + expected[2]) / 4, rtol=1e-6)
    np.testing.assert_allclose(out["insertion_curve"][0, -1], 3.5, rtol=1e-6)   # all pixels back
    np.testing.assert_allclose(out["fractions"], [0, 0.5, 1])


def test_a_faithful_order_beats_its_reverse():
    rng = np.random.default_rng(0)
    w = torch.from_numpy(rng.random((1, 3, 8, 8)).astype(np.float32))
    x = torch.from_numpy(rng.random((2, 3, 8, 8)).astype(np.float32)) + 1
    contribution = (w * (x - BLACK)).sum(dim=1).numpy()      # what each pixel adds over black
    task = LinearTask(w, 2)
    good = deletion_insertion(task, x, contribution, steps=8)
    bad = deletion_insertion(task, x, -contribution, steps=8)
    assert (good["deletion_auc"] < bad["deletion_auc"]).all()


def test_verification_accuracy_curves():
    w = torch.ones(1, 3, 2, 2)
    x = torch.ones(2, 3, 2, 2)
    task = LinearTask(w, 2)
    ordering = np.arange(8.0).reshape(2, 2, 2)
    out = deletion_insertion(task, x, ordering, steps=4, threshold=6.0, same=np.array([True, False]))
    # clean score 12 >= 6: accepted; fully deleted: 12 * BLACK < 6: rejected
    assert out["deletion_accuracy_curve"][0, 0] == 1 and out["deletion_accuracy_curve"][0, -1] == 0
    assert out["deletion_accuracy_curve"][1, 0] == 0 and out["deletion_accuracy_curve"][1, -1] == 1
    with pytest.raises(ValueError, match="same"):
        deletion_insertion(task, x, ordering, steps=4, threshold=6.0)


def test_pixel_ranks_and_trapezoid():
    ranks = pixel_ranks(np.array([[[0.2, 0.9], [0.2, -1.0]]]))
    assert ranks[0, 1] == 0 and ranks[0, 3] == 3 and sorted(ranks[0, [0, 2]]) == [1, 2]
    assert trapezoid_auc(np.array([[1.0, 0.0]]))[0] == pytest.approx(0.5)


def test_tied_pixels_are_not_ordered_by_position():
    # a plateau over the whole image: an order by index would take the top rows first
    maps = np.zeros((200, 8, 8))
    ranks = pixel_ranks(maps, seeds=np.arange(200)).reshape(200, 8, 8)
    top, bottom = ranks[:, :4].mean(), ranks[:, 4:].mean()
    assert abs(top - bottom) < 1.0                     # 31.5 each on average; index order: 15.5 vs 47.5
    np.testing.assert_array_equal(pixel_ranks(maps[:3], np.arange(3)), pixel_ranks(maps[:3], np.arange(3)))
    assert not np.array_equal(ranks[0], ranks[1])      # a different order per sample


def test_a_constant_map_cannot_score_like_the_true_map():
    # the model reads the top half; with ties ordered by index a constant map would delete the top
    # half first and score exactly like the true map
    region = torch.zeros(1, 1, 8, 8)
    region[..., :4, :] = 1
    task = ClassTask(RegionModel(region), torch.zeros(2, dtype=torch.long))
    x = torch.ones(2, 3, 8, 8)
    true_map = np.broadcast_to(region[0, 0].numpy(), (2, 8, 8)).copy()
    maps = np.stack([true_map[0], np.zeros((8, 8))])
    out = deletion_insertion(task, x, maps, steps=4)
    assert np.isfinite(out["deletion_auc"][0]) and np.isnan(out["deletion_auc"][1])
    assert list(out["degenerate"]) == ["", "constant_map"]
    assert np.isfinite(out["deletion_curve"][1, 0]) and np.isnan(out["deletion_curve"][1, 1:]).all()
    assert np.isnan(deletion_insertion(task, x, np.full((2, 8, 8), np.nan), steps=2)["insertion_auc"]).all()
    images = np.full((2, 8, 8, 3), 255, np.uint8)
    rd = road(task, images, maps, percentages=(25, 50), noise=0.0)
    assert np.isfinite(rd["gap"][0]) and np.isnan(rd["gap"][1]) and rd["degenerate"][1] == "constant_map"


# --- ROAD ------------------------------------------------------------------------------------------

def dense_imputation(image, removed):
    """Independent reference: one equation per removed pixel, written pixel by pixel, dense solve."""
    h, w = removed.shape
    idx = [(y, x) for y in range(h) for x in range(w) if removed[y, x]]
    pos = {p: k for k, p in enumerate(idx)}
    a = np.zeros((len(idx), len(idx)))
    b = np.zeros((len(idx), image.shape[2]))
    for k, (y, x) in enumerate(idx):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if (dy, dx) == (0, 0) or not (0 <= y + dy < h and 0 <= x + dx < w):
                    continue
                weight = 1 / 6 if dy == 0 or dx == 0 else 1 / 12
                a[k, k] += weight
                if removed[y + dy, x + dx]:
                    a[k, pos[(y + dy, x + dx)]] -= weight
                else:
                    b[k] += weight * image[y + dy, x + dx]
    out = image.copy()
    solution = np.linalg.solve(a, b)
    for k, (y, x) in enumerate(idx):
        out[y, x] = solution[k]
    return out


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_road_imputation_equals_a_dense_reference(fraction):
    rng = np.random.default_rng(int(fraction * 10))
    image = rng.random((9, 11, 3))
    removed = rng.random((9, 11)) < fraction
    np.testing.assert_allclose(impute(image, removed), dense_imputation(image, removed), atol=1e-10)


def test_road_imputation_is_exact_on_a_ramp_and_keeps_kept_pixels():
    yy, xx = np.mgrid[:12, :12].astype(float)
    image = np.stack([0.02 * yy + 0.03 * xx, 0.5 + 0 * yy, 0.01 * xx], axis=-1)
    removed = np.zeros((12, 12), bool)
    removed[3:8, 2:9] = True                                  # a hole away from the border
    out = impute(image, removed)
    np.testing.assert_allclose(out, image, atol=1e-12)
    noisy = impute(image, removed, noise=0.05, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(noisy[~removed], image[~removed])
    assert 0.02 < np.std(noisy[removed] - image[removed]) < 0.08
    with pytest.raises(ValueError, match="every pixel"):
        impute(image, np.ones((12, 12), bool))


def test_road_removal_orders():
    ranks = pixel_ranks(np.arange(10, dtype=float).reshape(1, 2, 5))[0]
    morf = removal_masks(ranks, (2, 5), 30, "morf")
    lerf = removal_masks(ranks, (2, 5), 30, "lerf")
    assert list(np.flatnonzero(morf)) == [7, 8, 9] and list(np.flatnonzero(lerf)) == [0, 1, 2]


def test_road_curves_separate_a_faithful_map_from_its_reverse():
    region = torch.zeros(1, 1, 16, 16)
    region[..., 4:10, 5:11] = 1
    model = RegionModel(region)
    rng = np.random.default_rng(1)
    images = (rng.random((3, 16, 16, 3)) * 255).astype(np.uint8)
    task = ClassTask(model, torch.zeros(3, dtype=torch.long))
    maps = np.broadcast_to(region[0, 0].numpy(), (3, 16, 16)) + rng.random((3, 16, 16)) * 0.01
    good = road(task, images, maps, percentages=(20, 50), noise=0.0, seeds=np.arange(3))
    assert good["morf_curve"].shape == (3, 2)
    # a map on the region: removing its top pixels re-imputes the region; its reverse leaves it alone
    bad = road(task, images, -maps, percentages=(20, 50), noise=0.0, seeds=np.arange(3))
    np.testing.assert_allclose(bad["lerf"], good["morf"])
    a = road(task, images, maps, percentages=(20, 50), noise=0.01, seeds=np.arange(3))
    b = road(task, images, maps, percentages=(20, 50), noise=0.01, seeds=np.arange(3))
    np.testing.assert_array_equal(a["gap"], b["gap"])        # seeded noise


# --- confidence change -----------------------------------------------------------------------------

def test_confidence_change_subject_and_background():
    region = torch.zeros(1, 1, 8, 8)
    region[..., 2:5, 2:5] = 1
    task = ClassTask(RegionModel(region), torch.zeros(2, dtype=torch.long))
    x = torch.full((2, 3, 8, 8), 1.0)
    out = confidence_change(task, x, np.broadcast_to(region[0, 0].numpy() > 0, (2, 8, 8)), fill="black")
    y, o = torch.sigmoid(torch.tensor(4.0)).item(), torch.sigmoid(torch.tensor(4 * BLACK)).item()
    np.testing.assert_allclose(out["drop_subject"], (y - o) / y, rtol=1e-5)
    np.testing.assert_allclose(out["drop_background"], 0.0, atol=1e-7)
    np.testing.assert_array_equal(out["increase_subject"], [0, 0])
    empty = confidence_change(task, x, np.zeros((2, 8, 8), bool))
    assert np.isnan(empty["drop_subject"]).all() and np.isfinite(empty["drop_background"]).all()


class Shifted(nn.Module):
    def __init__(self, inner, shift):
        super().__init__()
        self.inner, self.shift = inner, shift

    def forward(self, x):
        return self.inner(x) + self.shift


def test_confident_models_keep_their_confidence_change():
    region = torch.zeros(1, 1, 8, 8)
    region[..., 2:5, 2:5] = 1
    x = torch.full((2, 3, 8, 8), 1.0)
    regions = np.broadcast_to(region[0, 0].numpy() > 0, (2, 8, 8))
    # logits 34 / 26 (region filled): float32's sigmoid is exactly 1 for both, float64's is not
    task = ClassTask(Shifted(RegionModel(region), 30.0), torch.zeros(2, dtype=torch.long))
    assert torch.sigmoid(torch.tensor([34.0, 30.0 + 4 * BLACK])).eq(1.0).all()
    out = confidence_change(task, x, regions, fill="black")
    assert (out["drop_subject"] > 0).all() and (out["degenerate"] == "").all()
    # logit 54: even float64 says 1: no change can show, named, never a silent 0
    task = ClassTask(Shifted(RegionModel(region), 50.0), torch.zeros(2, dtype=torch.long))
    out = confidence_change(task, x, regions, fill="black")
    assert np.isnan(out["drop_subject"]).all() and (out["degenerate"] == "saturated_score").all()


# --- falsification ---------------------------------------------------------------------------------

def _region_setup(n=4, size=16):
    """A region the model reads, and images that are white inside it: any random fill there lowers
    the logit (a removal), fills elsewhere change nothing."""
    region = torch.zeros(1, 1, size, size)
    region[..., 3:9, 4:12] = 1
    rng = np.random.default_rng(2)
    images = (rng.random((n, size, size, 3)) * 255).astype(np.uint8)
    images[:, 3:9, 4:12] = 255
    return region, to_model_input(images)


def test_falsification_true_region_not_falsified_complement_falsified():
    region, x = _region_setup()
    task = ClassTask(RegionModel(region), torch.zeros(len(x), dtype=torch.long))
    mask = np.broadcast_to(region[0, 0].numpy(), (len(x), 16, 16))
    right = falsification(task, x, mask, k=6, seeds=np.arange(len(x)))
    wrong = falsification(task, x, 1 - mask, k=6, seeds=np.arange(len(x)))
    for variant in ("falsified", "sized_falsified"):
        assert (right[variant] == 0).all() and (wrong[variant] == 1).all(), variant
    assert (right["dist_high"] > 0).all() and np.allclose(right["dist_low"], 0)
    assert np.isfinite(right["drop_high"]).all() and np.allclose(right["drop_low"], 0)
    # the size-controlled variant perturbs the same number of pixels for every map: 10 % of 256, half
    assert (right["sized_m"] == 13).all() and (wrong["sized_m"] == 13).all()


class LinearLogit(nn.Module):
    """logit = sum_c,p W * x + bias: refilling pixel p with uniform random colours (mean 0 in model
    units) drops the logit by sum_c W_c,p x_c,p on average: the exact signed attribution."""

    def __init__(self, weights: torch.Tensor, bias: float = 0.0):
        super().__init__()
        self.register_buffer("w", weights)
        self.bias = bias

    def forward(self, x):
        return ((x * self.w).sum(dim=(1, 2, 3)) + self.bias).view(-1, 1)


def _linear_case(n=6, bias=0.0):
    rng = np.random.default_rng(5)
    w = torch.from_numpy(rng.normal(0, 1, (1, 3, 12, 12)).astype(np.float32))
    x = to_model_input((rng.random((n, 12, 12, 3)) * 255).astype(np.uint8))
    exact = (w * x).sum(dim=1).numpy()           # signed, both signs present
    return ClassTask(LinearLogit(w, bias), torch.zeros(n, dtype=torch.long)), x, exact


def test_an_exact_signed_attribution_is_never_falsified():
    # the old rule (signed min-max, |drop|) put the most negative pixels in the low set, which move
    # the model as much as the high set: FR ~0.5 for the exact map
    task, x, exact = _linear_case()
    out = falsification(task, x, exact, k=8, seeds=np.arange(len(x)))
    assert np.nanmean(out["falsified"]) == 0.0 and np.nanmean(out["sized_falsified"]) == 0.0
    assert (out["drop_high"] > 0).all() and (out["drop_low"] < out["drop_high"]).all()


def test_a_saturated_probability_does_not_make_a_map_falsified():
    # logit ~ 40: float32 sigmoid is exactly 1.0, every probability drop would be 0 and tie
    task, x, exact = _linear_case(bias=40.0)
    assert torch.sigmoid(task.model(x)).eq(1.0).all()
    out = falsification(task, x, exact, k=8, seeds=np.arange(len(x)))
    assert (out["falsified"] == 0).all() and (out["degenerate"] == "").all()


def test_a_model_that_ignores_both_sets_is_degenerate_not_falsified():
    region, x = _region_setup(n=2)
    task = ClassTask(RegionModel(region), torch.zeros(2, dtype=torch.long))
    maps = np.full((2, 16, 16), 0.5)   # the region (rows 3-8) is neither high nor low
    maps[:, 12:] = 1.0                 # high: rows 12-15
    maps[:, :2] = 0.0                  # low: rows 0-1
    out = falsification(task, x, maps, k=3)
    for prefix in ("", "sized_"):
        assert (out[f"{prefix}degenerate"] == "score_unchanged").all() and np.isnan(out[f"{prefix}falsified"]).all()


def test_falsification_of_a_pair_reads_the_drop_of_the_pair_score():
    """The distance of a pair's counterfactual is the drop of its similarity with the partner: the
    embedding is the region's pixels; against a partner equal to the image itself, refilling the
    region lowers the cosine similarity (positive drop), refilling elsewhere changes nothing."""
    import torch.nn.functional as F

    region, x = _region_setup()

    class Embedder(nn.Module):
        def forward(self, images):
            inside = images * region
            return torch.cat([inside.flatten(1), torch.ones(len(images), 1)], dim=1)

    model = Embedder()
    with torch.no_grad():
        task = PairTask(model, model(x), np.arange(len(x)))
    mask = np.broadcast_to(region[0, 0].numpy(), (len(x), 16, 16))
    out = falsification(task, x, mask, k=4, seeds=np.arange(len(x)))
    assert (out["falsified"] == 0).all()
    assert (out["dist_low"] == 0).all() and (out["dist_high"] > 0).all()
    # the drop is the similarity's: 1 - cos(f(x'), f(x)) averaged over the K counterfactuals, <= 2
    assert (out["dist_high"] <= 2).all() and np.allclose(out["drop_high"], out["dist_high"])
    assert F.cosine_similarity(model(x), model(x)).min() > 0.999


def test_falsification_direction_follows_the_mass():
    """mass negative: the map's top set is evidence against the score, so perturbing it must raise
    the score (distance = rise); absolute: |change|. A region model whose logit falls when the region
    is refilled: a map marking the region is falsified as a negative map, not as a positive or an
    absolute one."""
    region, x = _region_setup(n=2)
    task = ClassTask(RegionModel(region), torch.zeros(2, dtype=torch.long))
    maps = np.broadcast_to(region[0, 0].numpy().astype(float), (2, 16, 16)).copy()
    verdicts = {}
    for mass in ("positive", "negative", "absolute"):
        signed = -maps if mass == "negative" else maps  # the same pixels carry the (negative) mass
        out = falsification(task, x, signed, k=4, q=10, mass=mass, seeds=np.arange(2))
        verdicts[mass] = out["sized_falsified"].tolist()
    assert verdicts == {"positive": [0.0, 0.0], "negative": [1.0, 1.0], "absolute": [0.0, 0.0]}


def test_counterfactuals_really_differ():
    x = torch.zeros(3, 8, 8)
    cf = counterfactuals(x, np.ones((8, 8), bool), m=10, k=5, rng=np.random.default_rng(0))
    assert cf.shape == (5, 3, 8, 8)
    for i in range(5):
        assert int((cf[i] != 0).any(dim=0).sum()) == 10           # exactly m pixels refilled
        for j in range(i):
            assert not torch.equal(cf[i], cf[j])


def test_falsification_degenerate_cases_are_counted():
    region, x = _region_setup(n=3)
    task = ClassTask(RegionModel(region), torch.zeros(3, dtype=torch.long))
    maps = np.zeros((3, 16, 16))
    maps[1, :8] = 1.0                      # only 0 and 1: both sets non-empty
    maps[2] = np.linspace(0, 1, 256).reshape(16, 16) ** 20  # almost everything below 0.3...
    maps[2, 0, 0] = 0.5                    # ...and nothing but the maximum above 0.7
    out = falsification(task, x, maps, k=3)
    assert out["degenerate"][0] == "zero_mass" and np.isnan(out["falsified"][0])
    assert out["sized_degenerate"][0] == "zero_mass" and np.isnan(out["sized_falsified"][0])
    assert out["degenerate"][1] == "" and np.isfinite(out["falsified"][1])
    assert out["n_high"][2] >= 1
    assert list(normalise01(np.stack([np.ones((2, 2)), -np.ones((2, 2)), np.full((2, 2), np.nan),
                                      np.eye(2)]))[1]) == ["constant_map", "zero_mass", "nonfinite_map", ""]
    with pytest.raises(ValueError, match="K >= 2"):
        falsification(task, x, maps, k=1)


# --- sanity check ----------------------------------------------------------------------------------

def test_cascade_stages_and_layer_order():
    assert cascade_stages(10, 4) == [3, 5, 8, 10]
    assert cascade_stages(2, 5) == [1, 2]
    model = build_model("resnet_small", 3, width=8)
    layers = weight_layers(model)
    assert layers[0] == "head" and layers[-1] == "stem.0"   # from the output back to the input
    assert len(layers) == sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())


def test_spearman_and_ssim_rows_agree_with_references():
    rng = np.random.default_rng(3)
    a, b = rng.random((3, 9, 9)), rng.random((3, 9, 9))
    b[1] = a[1] * 2 + 1
    rho = spearman_rows(a, b)
    for i in range(3):
        assert rho[i] == pytest.approx(scipy.stats.spearmanr(a[i].ravel(), b[i].ravel())[0])
    ssim = ssim_rows(a, b)
    assert ssim[1] == pytest.approx(1.0) and ssim[0] < 0.5
    assert np.isnan(spearman_rows(np.ones((1, 3, 3)), a[:1, :3, :3])[0])


def test_a_collapsed_map_has_changed_completely_and_an_inverted_one_has_not():
    rng = np.random.default_rng(8)
    original = rng.random((4, 9, 9))
    original[3] = 0.0                                   # nothing to compare
    randomised = np.stack([np.zeros((9, 9)),            # collapsed (Grad-CAM's ReLU after randomisation)
                           -original[1],                # inverted: rank correlation -1
                           np.full((9, 9), np.nan),     # not finite: collapsed too
                           rng.random((9, 9))])
    rho, ssim, reason = compare_maps(original, randomised)
    assert list(reason) == ["collapsed", "", "collapsed", "constant_map"]
    assert rho[0] == 0.0 and ssim[0] == 0.0 and rho[2] == 0.0
    assert rho[1] == pytest.approx(1.0)                 # |Spearman|: an inverted map did not change
    assert np.isnan(rho[3]) and np.isnan(ssim[3])


def test_gradcam_changes_under_randomisation_and_the_random_baseline_does_not():
    torch.manual_seed(0)
    model = build_model("resnet_small", 3, width=8).eval()
    rng = np.random.default_rng(4)
    x = to_model_input((rng.random((4, 32, 32, 3)) * 255).astype(np.uint8))
    targets = torch.zeros(4, dtype=torch.long)
    ids = np.arange(4)
    for name, expect_change in (("gradcam", True), ("random", False)):
        method = get_method(name, {})

        def explain(m, method=method):
            return method(ClassTask(m, targets), x, ids, 0)

        out = cascading_randomisation(model, explain, explain(model), stages=3, seed=0)
        assert out["spearman"].shape == (4, 3) and list(out["layers"])[-1] == len(weight_layers(model))
        # NaN only where the original map itself is constant, never because the new one collapsed
        np.testing.assert_array_equal(np.isnan(out["spearman"]), out["reason"] == "constant_map")
        final = out["spearman"][:, -1]
        if expect_change:
            assert np.nanmean(final) < 0.9
        else:
            np.testing.assert_allclose(final, 1.0)
    # the original model is untouched
    assert weight_layers(model) and all(p.requires_grad for p in model.parameters())


def test_model_metrics_are_invariant_to_the_order_of_the_batch():
    region, x = _region_setup(n=5)
    rng = np.random.default_rng(6)
    maps = rng.random((5, 16, 16))
    ids = np.arange(100, 105)
    perm = rng.permutation(5)
    images = (rng.random((5, 16, 16, 3)) * 255).astype(np.uint8)

    def run(order):
        task = ClassTask(RegionModel(region), torch.zeros(5, dtype=torch.long))
        di = deletion_insertion(task, x[order], maps[order], steps=4, seeds=ids[order])
        rd = road(task, images[order], maps[order], percentages=(30, 60), seeds=ids[order])
        fa = falsification(task, x[order], maps[order], k=3, seeds=ids[order])
        return di["deletion_auc"], di["insertion_auc"], rd["gap"], fa["dist_high"], fa["dist_low"]

    for a, b in zip(run(np.arange(5)), run(perm)):
        np.testing.assert_allclose(a[perm], b, rtol=1e-6, atol=1e-9)


def test_huge_randomised_maps_are_compared_not_cast_to_inf():
    """A randomised network without normalisation layers (dlib's ResNet) gives maps beyond float16's
    range; cast as they are, they became inf and were scored as collapsed (a sanity pass). Scaled per
    row before the cast, an unchanged map (only larger) is recognised as unchanged."""
    from facexai.metrics.sanity import at_stored_precision

    rng = np.random.default_rng(2)
    original = rng.random((3, 9, 9))
    huge = original * 1e9
    assert not np.isfinite(huge.astype(np.float16)).all()  # what the plain cast did
    rho, ssim, reason = compare_maps(at_stored_precision(original), at_stored_precision(huge))
    assert list(reason) == ["", "", ""]
    np.testing.assert_allclose(rho, 1.0, atol=1e-4)  # float16 rounding of a 1e9-scaled copy may tie two ranks
    np.testing.assert_allclose(ssim, 1.0, atol=1e-3)
    # scaling is by powers of two, so a map read back from float16 storage equals the fresh one
    np.testing.assert_array_equal(at_stored_precision(original), at_stored_precision(original * 2))
    stored = original.astype(np.float16)
    np.testing.assert_array_equal(at_stored_precision(stored), at_stored_precision(original))
    assert at_stored_precision(np.zeros((1, 2, 2))).sum() == 0 and np.isnan(at_stored_precision(
        np.full((1, 2, 2), np.nan))).all()
