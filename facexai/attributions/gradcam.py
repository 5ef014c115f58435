"""Grad-CAM (Selvaraju et al. 2017) through captum's LayerGradCam.

map = ReLU(sum_k alpha_k A^k), alpha_k = mean over positions of d y_c / d A^k, on the model's
`cam_layer` (the last block with spatial extent), upsampled bilinearly to the input size.
"""

from __future__ import annotations

import torch
from captum.attr import LayerAttribution, LayerGradCam

from .base import AttributionMethod


class GradCAM(AttributionMethod):
    name = "gradcam"
    defaults = {"relu": True}

    def attribute(self, model, images, targets, sample_ids, seed):
        layer = getattr(model, "cam_layer", None)
        if layer is None or isinstance(model, torch.jit.ScriptModule):
            raise ValueError("gradcam: the model has no hookable cam_layer (TorchScript forbids hooks); "
                             "import it as a state dict with its architecture to use Grad-CAM")
        cam = LayerGradCam(model, layer)
        coarse = cam.attribute(images, target=targets, relu_attributions=bool(self.params["relu"]))
        maps = LayerAttribution.interpolate(coarse, tuple(images.shape[-2:]), interpolate_mode="bilinear")
        return maps[:, 0].detach().float().cpu().numpy()
