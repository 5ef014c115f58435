"""Small CNN backbones defined in the package (no torchvision).

Each model exposes `cam_layer`: the last block with spatial extent, the layer Grad-CAM targets.
"""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs with batch norm and an identity (or 1x1) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class SmallResNet(nn.Module):
    """A ResNet-style classifier: stem, four basic-block stages (widths w, 2w, 4w, 4w), GAP, linear."""

    def __init__(self, n_outputs: int, width: int = 32):
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
        self.layer1 = BasicBlock(w, w, 2)
        self.layer2 = BasicBlock(w, 2 * w, 2)
        self.layer3 = BasicBlock(2 * w, 4 * w, 2)
        self.layer4 = BasicBlock(4 * w, 4 * w, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(4 * w, n_outputs)

    @property
    def cam_layer(self) -> nn.Module:
        return self.layer4

    def features(self, x):
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))

    def forward(self, x):
        return self.head(torch.flatten(self.pool(self.features(x)), 1))


class SmallVGG(nn.Module):
    """A VGG-style classifier: stacks of 3x3 conv + BN + ReLU, max-pool between stages, GAP, linear.

    Widths w, 2w, 4w, 4w with two convs per stage (VGG-16's pattern, four stages instead of five).
    """

    def __init__(self, n_outputs: int, width: int = 32):
        super().__init__()
        w = width
        layers, cin = [], 3
        for stage, cout in enumerate((w, 2 * w, 4 * w, 4 * w)):
            for _ in range(2):
                layers += [nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
                cin = cout
            if stage < 3:
                layers.append(nn.MaxPool2d(2))
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(cin, n_outputs)

    @property
    def cam_layer(self) -> nn.Module:
        return self.body  # output of the last conv stage (H/8 x W/8)

    def forward(self, x):
        return self.head(torch.flatten(self.pool(self.body(x)), 1))


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv (bottleneck 4k) then BN-ReLU-3x3 conv (k new channels), concatenated to the input."""

    def __init__(self, cin: int, growth: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, 4 * growth, 1, bias=False),
            nn.BatchNorm2d(4 * growth), nn.ReLU(), nn.Conv2d(4 * growth, growth, 3, 1, 1, bias=False))

    def forward(self, x):
        return torch.cat([x, self.net(x)], dim=1)


class SmallDenseNet(nn.Module):
    """A DenseNet-style classifier: stem, three dense blocks (4 layers, growth w/2) with transitions
    (BN-ReLU-1x1 conv halving channels, 2x2 pool), final BN-ReLU, GAP, linear.

    Transitions max-pool where DenseNet average-pools: at 64 px, average pooling washed out thin
    parts (glasses frames, chains) and the model could not learn them (AUROC ~0.6 vs ~0.8).
    """

    def __init__(self, n_outputs: int, width: int = 32, layers_per_block: int = 4):
        super().__init__()
        growth = max(4, width // 2)
        c = width
        # a full-resolution stem: small parts (eyes, earrings) must survive to the first dense block
        blocks: list[nn.Module] = [nn.Conv2d(3, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                                   nn.Conv2d(c, c, 3, 2, 1, bias=False)]
        for b in range(3):
            for _ in range(layers_per_block):
                blocks.append(DenseLayer(c, growth))
                c += growth
            if b < 2:
                blocks += [nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c // 2, 1, bias=False), nn.MaxPool2d(2)]
                c //= 2
        blocks += [nn.BatchNorm2d(c), nn.ReLU()]
        self.body = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(c, n_outputs)

    @property
    def cam_layer(self) -> nn.Module:
        return self.body  # last dense block after its BN-ReLU (H/8 x W/8)

    def forward(self, x):
        return self.head(torch.flatten(self.pool(self.body(x)), 1))


ARCHITECTURES = {"resnet_small": SmallResNet, "vgg_small": SmallVGG, "densenet_small": SmallDenseNet}


def _contiguous_input(module: nn.Module, args: tuple):
    return tuple(a.contiguous() if isinstance(a, torch.Tensor) else a for a in args)


def with_contiguous_input(model: nn.Module) -> nn.Module:
    """Make every input a model receives contiguous (a forward pre-hook on the model itself).

    Inputs reach models from many places (training batches, captum's and our perturbations, metric
    curves); some are strided views (a permuted HWC array, a flipped batch). The CPU build of torch
    2.13 with 2+ threads aborts in a convolution's backward pass on such input for some batch sizes,
    so no view enters a model. TorchScript modules take no hooks: see `ContiguousInput`.
    """
    if isinstance(model, torch.jit.ScriptModule):
        return ContiguousInput(model)
    model.register_forward_pre_hook(_contiguous_input)
    return model


class ContiguousInput(nn.Module):
    """Wraps a module that takes no hooks (TorchScript) and hands it contiguous inputs."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, *args):
        return self.inner(*_contiguous_input(self, args))


def channels_last(model: nn.Module) -> nn.Module:
    """Store the model's 4-d weights channels-last (NHWC): the CPU convolutions (oneDNN) then run in
    that layout whatever the input's, 1.2-1.6x faster than NCHW for the small backbones at 32-64 px
    (`python benchmarks/memory_layout.py`). Inputs stay NCHW (see `with_contiguous_input`);
    moving the model (`.to(device)`) and loading a state dict keep the layout.

    Only where no convolution weight needs a gradient, or with one CPU thread: torch 2.13's CPU
    build crashes (SIGSEGV) computing channels-last convolution weight gradients with 2+ threads
    (tests/test_reliability.py). `for_inference` freezes the weights; training asks
    `channels_last_trains`."""
    return model.to(memory_format=torch.channels_last)


def channels_last_trains(device: torch.device) -> bool:
    """Whether training may run channels-last here: on the CPU with one thread (see `channels_last`)."""
    return device.type == "cpu" and torch.get_num_threads() == 1


def for_inference(model: nn.Module) -> nn.Module:
    """A network of ours (or dlib's) ready to be explained: eval mode, weights frozen (no attribution
    method or metric needs their gradients; an input gradient still flows), channels-last. TorchScript
    modules (a user's file, whose code may assume NCHW) are left as they are."""
    if isinstance(model, (torch.jit.ScriptModule, ContiguousInput)):
        return model.eval()
    model.requires_grad_(False)
    return channels_last(model).eval()


def build_model(arch: str, n_outputs: int, **kwargs) -> nn.Module:
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}")
    return with_contiguous_input(ARCHITECTURES[arch](n_outputs, **kwargs))
