"""The five techniques of Salimans et al. (2016), one small module each.

Each is a pure function or a small module; the training step (ganapp/training.py)
decides where they enter. See ../shared/techniques.md for the decisions.
"""

from .feature_matching import feature_matching_loss
from .historical_averaging import HistoricalAverage
from .label_smoothing import discriminator_loss, generator_loss
from .minibatch_discrimination import MinibatchDiscrimination, minibatch_features, minibatch_head, minibatch_head_pair
from .virtual_batch_norm import VirtualBatchNorm, reference_statistics, virtual_batch_norm

__all__ = [
    "feature_matching_loss",
    "HistoricalAverage",
    "discriminator_loss",
    "generator_loss",
    "MinibatchDiscrimination",
    "minibatch_features",
    "minibatch_head",
    "minibatch_head_pair",
    "VirtualBatchNorm",
    "reference_statistics",
    "virtual_batch_norm",
]
