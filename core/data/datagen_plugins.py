"""The datagen plugins of a config, instantiated: normalizer, sampler, target and the
augmentation chain (:func:`load_plugins`), and the normalizer alone (:func:`make_normalizer`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import numpy as np


def _instantiate(registry, choice) -> tuple[Any, Any]:
    """Resolve a config Choice to ``(registry entry, factory product)``; params are the
    plugin's defaults when the config did not fill them."""
    entry = registry.resolve(choice.kind, choice.name)
    params = choice.params if choice.params is not None else entry.spec.params()
    return entry, entry.load()(params)


def make_normalizer(config, registry) -> Callable[[np.ndarray], np.ndarray]:
    """The normalizer of ``config.datagen.normalization``: ``array -> float32`` same shape
    (``(H, W)`` or ``(T, H, W)``). Use it at inference so training and prediction agree."""
    return _instantiate(registry, config.datagen.normalization)[1]


@attrs.frozen
class DatagenPlugins:
    """The instantiated datagen plugins of a config."""

    normalizer: Callable
    sampler: Callable
    target: Callable
    n_classes: int  # model output channels: the sum of the target's head channels
    channels: tuple[str, ...]
    augmentations: tuple[Callable, ...]


def load_plugins(config, registry) -> DatagenPlugins:
    """Instantiate normalizer, sampler, target and augmentation chain from ``config.datagen``
    (PluginError naming the plugin when one cannot be resolved or loaded)."""
    d = config.datagen
    _, normalizer = _instantiate(registry, d.normalization)
    _, sampler = _instantiate(registry, d.sampling)
    target_entry, target = _instantiate(registry, d.target)
    augs = tuple(_instantiate(registry, a)[1] for a in d.augmentation)
    from ..heads import heads_of, output_channels  # model output channels: all heads

    return DatagenPlugins(normalizer, sampler, target, output_channels(heads_of(target_entry.spec)),
                          tuple(target_entry.spec.channels), augs)
