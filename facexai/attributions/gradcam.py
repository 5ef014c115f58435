"""Grad-CAM (Selvaraju et al. 2017) through captum, and Grad-CAM++ (Chattopadhay et al. 2018).

Both work on the model's `cam_layer` (the last block with spatial extent) with activations A^k
and gradients g^k = dS/dA^k of the explained score S, and upsample the map bilinearly to the input:

    Grad-CAM    map = ReLU(sum_k w_k A^k),  w_k = mean_ij g^k_ij
    Grad-CAM++  map = ReLU(sum_k w_k A^k),  w_k = sum_ij alpha^k_ij ReLU(g^k_ij),
                alpha^k_ij = g^2 / (2 g^2 + sum_ab A^k_ab g^3)   (0 where the denominator is 0)

Grad-CAM++'s closed form assumes S = exp(logit); as in common implementations the same formula is
applied to whatever score is explained (a logit, or a pair's cosine similarity).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import AttributionMethod


def _cam_layer(task):
    layer = getattr(task.model, "cam_layer", None)
    if layer is None or isinstance(task.model, torch.jit.ScriptModule):
        raise ValueError("gradcam: the model has no hookable cam_layer (TorchScript forbids hooks); "
                         "import it as a state dict with its architecture to use Grad-CAM")
    return layer


class GradCAM(AttributionMethod):
    name = "gradcam"
    needs_layer_hooks = True
    defaults = {"relu": True}

    def attribute(self, task, images, sample_ids, seed):
        from captum.attr import LayerAttribution, LayerGradCam  # imported where used (~1 s)

        cam = LayerGradCam(task.forward, _cam_layer(task))
        coarse = cam.attribute(images, target=0, additional_forward_args=task.extra,
                               relu_attributions=bool(self.params["relu"]))
        maps = LayerAttribution.interpolate(coarse, tuple(images.shape[-2:]), interpolate_mode="bilinear")
        return maps[:, 0].detach().float().cpu().numpy()


class GradCAMPlusPlus(AttributionMethod):
    name = "gradcampp"
    needs_layer_hooks = True
    defaults = {}

    def attribute(self, task, images, sample_ids, seed):
        store = {}
        handle = _cam_layer(task).register_forward_hook(lambda m, i, o: store.__setitem__("A", o))
        try:
            with torch.enable_grad():
                x = images.detach().requires_grad_(True)  # so a cam layer on the input has a gradient
                score = task.forward(x, *task.extra)[:, 0]
                A = store["A"]
                (g,) = torch.autograd.grad(score.sum(), A)
        finally:
            handle.remove()
        A, g = A.detach(), g.detach()
        g2, g3 = g.pow(2), g.pow(3)
        denominator = 2 * g2 + A.sum(dim=(2, 3), keepdim=True) * g3
        alpha = torch.where(denominator != 0, g2 / torch.where(denominator != 0, denominator, 1.0), 0.0)
        weights = (alpha * F.relu(g)).sum(dim=(2, 3), keepdim=True)
        cam = F.relu((weights * A).sum(dim=1, keepdim=True))
        maps = F.interpolate(cam, size=tuple(images.shape[-2:]), mode="bilinear", align_corners=False)
        return maps[:, 0].float().cpu().numpy()
