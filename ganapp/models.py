"""Generators and discriminators: MLPs for 2-D points, a small DCGAN-style pair for images.

The discriminator returns its logit *and* the features of the layer before its output
layer, the named layer that feature matching and minibatch discrimination use. The
generator uses batch norm (or none, a setting), or virtual batch norm when that technique
is on.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import GANConfig
from .techniques import MinibatchDiscrimination, VirtualBatchNorm, minibatch_head, minibatch_head_pair


class Generator(nn.Module):
    """z (n, noise_dim) -> x (n, *sample_shape).

    Built from `blocks` of (layer, norm) pairs, each followed by ReLU, then an output
    layer. With VBN, the reference noise z_ref (a buffer, fixed at construction from the
    run's seed, saved in the checkpoint) runs through the same layers in the same pass,
    stacked in front of the live batch, and feeds each VBN layer its reference batch.
    """

    def __init__(self, *, layers: list[nn.Module], norm_features: list[int], conv_norms: list[bool],
                 output: nn.Module, virtual_batch_norm: bool, reference_noise: torch.Tensor | None,
                 batch_norm: bool = True):
        super().__init__()
        self.virtual_batch_norm = virtual_batch_norm
        self.layers = nn.ModuleList(layers)
        if virtual_batch_norm:
            self.norms = nn.ModuleList(VirtualBatchNorm(c) for c in norm_features)
            assert reference_noise is not None
            self.register_buffer("reference_noise", reference_noise)
        elif batch_norm:
            self.norms = nn.ModuleList(nn.BatchNorm2d(c) if conv else nn.BatchNorm1d(c)
                                       for c, conv in zip(norm_features, conv_norms))
        else:  # no normalisation: the classic setting where vanilla GANs collapse
            self.norms = nn.ModuleList(nn.Identity() for _ in norm_features)
        self.output = output
        self.activation = nn.ReLU()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if not self.virtual_batch_norm:
            h = z
            for layer, norm in zip(self.layers, self.norms):
                h = self.activation(norm(layer(h)))
            return self.output(h)
        n_ref = self.reference_noise.shape[0]
        h = torch.cat([self.reference_noise, z])  # (N + n, noise_dim): reference rows first
        for layer, norm in zip(self.layers, self.norms):
            h = layer(h)
            live, reference = norm(h[n_ref:], h[:n_ref])
            h = self.activation(torch.cat([reference, live]))
        return self.output(h[n_ref:])


def image_channels(width: int) -> tuple[int, int]:
    """Channels of the two conv layers of the image models for a model width.

    Half and a quarter of the width: the transposed convolutions dominate a CPU step,
    and 64/32 channels train 8x8 and 28x28 digits well at a quarter of the cost of 128/64.
    """
    return max(width // 2, 4), max(width // 4, 4)


class Reshape(nn.Module):
    def __init__(self, *shape: int):
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], *self.shape)


class Discriminator(nn.Module):
    """x -> (logit (n,), features (n, A)).

    `features` is the layer before the output layer (the layer feature matching matches).
    With minibatch discrimination the output layer sees concat[f(x), o(x)]; it is written
    as out(f) + out_minibatch(o), which is the same linear map, so that runs with and
    without the technique share the initial weights of every other layer.
    """

    def __init__(self, *, body: nn.Module, feature_dim: int, minibatch: MinibatchDiscrimination | None):
        super().__init__()
        self.body = body
        self.output = nn.Linear(feature_dim, 1)
        self.minibatch = minibatch
        self.minibatch_output = nn.Linear(minibatch.kernels, 1, bias=False) if minibatch is not None else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(x)  # (n, A)
        if self.minibatch is None:
            return self.output(features).squeeze(1), features
        # out(f) + o(x) W^T, with o(x) (n, B) and W the output weights of the minibatch
        # features, in one autograd node (the same numbers as the two layers and their sum)
        return minibatch_head(features, self.output.weight, self.output.bias, self.minibatch.tensor,
                              self.minibatch_output.weight, self.minibatch.reduction), features

    def logits(self, x_real: torch.Tensor, x_fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(D's logits on the real batch, on the generated batch), computed separately, as
        two calls give them, to the bit (so minibatch features compare real with real and
        fake with fake); with minibatch discrimination the two output layers are one
        autograd node (minibatch_head_pair), which saves D's step the cost of a node."""
        if self.minibatch is None:
            return self(x_real)[0], self(x_fake)[0]
        shared = (self.output.weight, self.output.bias, self.minibatch.tensor, self.minibatch_output.weight)
        return minibatch_head_pair(self.body(x_real), self.body(x_fake), *shared, self.minibatch.reduction)


def build_models(config: GANConfig, sample_shape: tuple[int, ...]) -> tuple[Generator, Discriminator]:
    """The generator and discriminator for a config, initialised from its seed.

    Runs that differ only in techniques start from the same weights: each network is
    built right after seeding, and technique-only parameters (the minibatch tensor, its
    output weights, VBN's reference noise) are drawn last or from their own generator.
    """
    width = config.hidden_dim
    torch.manual_seed(config.seed)
    if len(sample_shape) == 1:
        layers = [nn.Linear(config.noise_dim, width), nn.Linear(width, width)]
        norm_features, conv_norms = [width, width], [False, False]
        g_output: nn.Module = nn.Linear(width, sample_shape[0])
    else:
        channels, size = sample_shape[0], sample_shape[1]
        start = size // 4  # two stride-2 transposed convolutions: 2 -> 8, 7 -> 28
        if start * 4 != size:
            raise ValueError(f"image size must be a multiple of 4; got {size}")
        wide, narrow = image_channels(width)
        layers = [nn.Sequential(nn.Linear(config.noise_dim, wide * start * start), Reshape(wide, start, start)),
                  nn.ConvTranspose2d(wide, narrow, 4, stride=2, padding=1, bias=False)]
        norm_features, conv_norms = [wide, narrow], [True, True]
        g_output = nn.Sequential(nn.ConvTranspose2d(narrow, channels, 4, stride=2, padding=1), nn.Tanh())
    reference_noise = None
    if config.virtual_batch_norm:
        reference_generator = torch.Generator().manual_seed(config.seed + 7919)
        reference_noise = torch.randn(config.vbn_reference_size, config.noise_dim, generator=reference_generator)
    generator = Generator(layers=layers, norm_features=norm_features, conv_norms=conv_norms, output=g_output,
                          virtual_batch_norm=config.virtual_batch_norm, reference_noise=reference_noise,
                          batch_norm=config.generator_batch_norm)

    torch.manual_seed(config.seed + 1)
    leaky = nn.LeakyReLU(0.2)
    if len(sample_shape) == 1:
        body = nn.Sequential(nn.Linear(sample_shape[0], width), leaky, nn.Linear(width, width), leaky)
    else:
        channels, size = sample_shape[0], sample_shape[1]
        wide, narrow = image_channels(width)
        body = nn.Sequential(
            nn.Conv2d(channels, narrow, 4, stride=2, padding=1), leaky,  # size/2
            nn.Conv2d(narrow, wide, 4, stride=2, padding=1), leaky,  # size/4
            nn.Flatten(), nn.Linear(wide * (size // 4) ** 2, width), leaky)
    discriminator = Discriminator(body=body, feature_dim=width, minibatch=None)
    if config.minibatch_discrimination:  # drawn after every shared weight
        discriminator.minibatch = MinibatchDiscrimination(
            width, config.minibatch_kernels, config.minibatch_kernel_dim, reduction=config.minibatch_reduction)
        discriminator.minibatch_output = nn.Linear(config.minibatch_kernels, 1, bias=False)
    return generator, discriminator
