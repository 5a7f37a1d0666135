"""``dlsuite new-plugin``: write a ready-to-install plugin package skeleton.

The skeleton has a ``pyproject.toml`` with the ``dlsuite`` entry point, a TF-free
``plugin.py`` with one parameter class, spec and hook per kind, one factory module per kind
(``architecture.py``, ``loss.py``, ``postprocessor.py``, ``target.py``,
``augmentation.py``), and one contract test per kind
using the testing kit (:mod:`dlsuite.testing`). A package may contribute several kinds; each
contribution is then named ``<name>_<kind>`` (``<name>`` alone with one kind). Templates
are declared per kind in ``KINDS``.

The architecture template declares ``size_multiple`` and the exact ``receptive_field`` of
the network it builds; its contract test (``ArchitectureContract``) measures the reach of the
built model and fails if the declared number is smaller.
"""

from __future__ import annotations

import keyword
import re
import textwrap
from pathlib import Path
from typing import Iterable

import attrs

from .errors import DlsuiteInputError

__all__ = ["new_plugin", "KINDS"]

#: The longest plugin name (it names the package folder, module and entry point).
_LONGEST_NAME = 64


@attrs.frozen
class KindTemplate:
    """How to scaffold one plugin kind."""

    hook: str
    spec: str
    contract: str
    params: str           # attrs fields of the parameter class
    factory: str          # body of the factory module
    test_params: str      # small parameter overrides for the contract test
    spec_extra: str = ""  # further spec fields (e.g. the architecture's size_multiple)
    helpers: str = ""     # TF-free functions of plugin.py used by spec_extra


KINDS: dict[str, KindTemplate] = {
    "architecture": KindTemplate(
        hook="dlsuite_architectures", spec="ArchitectureSpec", contract="ArchitectureContract",
        params='''
            n_filters: int = param(16, help="filters of the first level")
            pools: int = param(2, help="number of down-sampling steps")
        ''',
        helpers='''
            def {prefix}size_multiple(params) -> int:
                """Input height and width must be divisible by this (one 2x2 pooling per level)."""
                return 2 ** params.pools


            def {prefix}receptive_field(params) -> int:
                """``2 r + 1`` with ``r`` the farthest input pixel one output pixel depends on
                (either side, over every position in the pooling grid): one 3x3 convolution
                per level and per decoder step give ``r = 3 * 2**pools - 3``. inference.halo
                "auto" uses ``r``; the contract test measures the built model and fails if
                this is smaller. Update it when you change the network."""
                return 2 * (3 * 2 ** params.pools - 3) + 1
        ''',
        factory='''
            """The {name} architecture."""

            import keras
            from keras import layers


            def build(params, *, n_classes, input_shape=None):
                """A small encoder-decoder returning logits (B, H, W, n_classes)."""
                inputs = keras.Input(shape=input_shape or (None, None, 1))
                x, skips = inputs, []
                for level in range(params.pools):
                    x = layers.Conv2D(params.n_filters * 2 ** level, 3, padding="same",
                                      activation="relu")(x)
                    skips.append(x)
                    x = layers.MaxPooling2D(2)(x)
                for level in reversed(range(params.pools)):
                    x = layers.UpSampling2D(2)(x)
                    x = layers.Concatenate()([x, skips[level]])
                    x = layers.Conv2D(params.n_filters * 2 ** level, 3, padding="same",
                                      activation="relu")(x)
                return keras.Model(inputs, layers.Conv2D(n_classes, 1)(x), name="{name}")
        ''',
        test_params='{{"n_filters": 4, "pools": 2}}',
        spec_extra=("size_multiple={prefix}size_multiple,\n"
                    "        receptive_field={prefix}receptive_field"),
    ),
    "loss": KindTemplate(
        hook="dlsuite_losses", spec="LossSpec", contract="LossContract",
        params='''
            fg_weight: float = param(1.0, help="weight of foreground pixels")
        ''',
        factory='''
            """The {name} loss."""

            import keras
            from keras import ops


            @keras.saving.register_keras_serializable(package="{package}")
            class Loss(keras.losses.Loss):
                """Foreground-weighted cross-entropy from logits."""

                def __init__(self, fg_weight=1.0, name="{name}", **kwargs):
                    super().__init__(name=name, **kwargs)
                    self.fg_weight = fg_weight

                def call(self, y_true, y_pred):
                    classes = ops.cast(y_true[..., 0], "int32")
                    ce = keras.losses.sparse_categorical_crossentropy(
                        classes, y_pred, from_logits=True)
                    weights = 1.0 + (self.fg_weight - 1.0) * ops.cast(classes > 0, "float32")
                    return ops.mean(ce * weights)

                def get_config(self):
                    return {{**super().get_config(), "fg_weight": self.fg_weight}}


            def build(params, *, n_classes):
                """The loss object."""
                return Loss(params.fg_weight)
        ''',
        test_params="{{}}",
    ),
    "postprocessor": KindTemplate(
        hook="dlsuite_postprocessors", spec="PostprocessorSpec", contract="PostprocessorContract",
        params='''
            min_size: int = param(10, help="objects smaller than this are removed")
        ''',
        factory='''
            """The {name} post-processor."""

            import numpy as np
            from scipy import ndimage


            def build(params):
                """A step mapping a mask (H, W) to a uint8 mask without its objects smaller
                than ``min_size`` pixels."""

                def step(mask):
                    labels, _ = ndimage.label(np.asarray(mask) > 0)
                    keep = np.bincount(labels.ravel()) >= params.min_size
                    keep[0] = False
                    return keep[labels].astype(np.uint8)

                return step
        ''',
        test_params="{{}}",
        # typed chains: what it takes and returns, checked at `dlsuite config validate`
        spec_extra=('accepts=("mask",),  # a class map serves as a mask too\n'
                    '        gives="mask"'),
    ),
    "target": KindTemplate(
        hook="dlsuite_targets", spec="TargetSpec", contract="TargetContract",
        params='''
            width: int = param(1, help="width in pixels of the boundary class")
        ''',
        factory='''
            """The {name} target."""

            import numpy as np
            from scipy import ndimage
            from skimage.segmentation import find_boundaries


            def build(params):
                """A function mapping instance labels (H, W) to the training target
                (H, W, 1) float32: class 0 background, 1 cell, 2 the inner boundary of each
                cell, ``width`` pixels wide (where touching cells part). A config using it
                post-processes with ``["argmax", "watershed_split"]``."""

                def make(labels):
                    labels = np.asarray(labels)
                    cells = labels > 0
                    boundary = find_boundaries(labels, mode="inner") & cells
                    if params.width > 1:
                        boundary = ndimage.binary_dilation(
                            boundary, iterations=params.width - 1) & cells
                    target = cells.astype(np.float32)
                    target[boundary] = 2.0
                    return target[..., None]

                return make
        ''',
        test_params="{{}}",
        # the class head's size; a post-processor must make instances of 3 classes
        spec_extra="n_classes=3",
    ),
    "augmentation": KindTemplate(
        hook="dlsuite_augmentations", spec="AugmentationSpec", contract="AugmentationContract",
        params='''
            sigma: float = param(1.0, help="largest Gaussian blur (pixels)")
            probability: float = param(0.5, help="chance that a patch is blurred")
        ''',
        factory='''
            """The {name} augmentation."""

            import numpy as np
            from scipy import ndimage


            def build(params):
                """A random transform ``(image, target, rng) -> (image, target)``: the image
                (frames first, (..., H, W) float32) blurred with a Gaussian of a random
                width up to ``sigma``, the same for every frame; the target (H, W, C)
                unchanged. A transform that moves pixels must move the target the same
                way, with nearest interpolation for its class channel."""

                def blur(image, target, rng):
                    if rng.random() >= params.probability:
                        return image, target
                    sigma = rng.uniform(0.0, params.sigma)
                    widths = (0.0,) * (image.ndim - 2) + (sigma, sigma)
                    return ndimage.gaussian_filter(image, widths).astype(np.float32), target

                return blur
        ''',
        test_params="{{}}",
    ),
}

PYPROJECT = '''
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "A dlsuite plugin providing {names}"
requires-python = ">=3.10"
dependencies = ["dlsuite"]

[project.urls]
# where dlsuite tells users to report a failure of this plugin
Issues = "https://example.org/{dist}/issues"

[project.entry-points.dlsuite]
{name} = "{package}.plugin"

[tool.setuptools.packages.find]
where = ["src"]
'''

PLUGIN_HEAD = '''
"""Entry-point module of {dist}: returns specs; imports no TensorFlow."""

import attrs

from dlsuite import {specs}, hookimpl, param
'''

PLUGIN_KIND = '''

@attrs.frozen
class {camel}Params:
    """Parameters of {name}."""

{params}


{helpers}@hookimpl

def {hook}():
    """Contribute {name}."""
    return [{spec}(
        name="{name}", factory="{package}.{module}:build",
        params={camel}Params,
        description="TODO: one line saying what {name} does"{spec_extra},
    )]
'''

TEST_HEAD = '''
"""Contract tests from dlsuite's testing kit (the checks dlsuite runs on its own plugins)."""

import {package}.plugin as plugin
from dlsuite.testing import {contracts}
'''

TEST_KIND = '''

class Test{camel}({contract}):
    plugin = plugin
    name = "{name}"
    params = {test_params}
'''


def _dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def _kinds(kind: str | Iterable[str]) -> list[str]:
    kinds = [kind] if isinstance(kind, str) else list(kind)
    kinds = list(dict.fromkeys(k.strip() for k in kinds for k in k.split(",") if k.strip()))
    if not kinds:
        raise DlsuiteInputError(f"no kind given; choose from {', '.join(KINDS)}")
    for k in kinds:
        if k not in KINDS:
            raise DlsuiteInputError(f"unknown kind {k!r}; choose from {', '.join(KINDS)}")
    return kinds


def contributions(name: str, kind: str | Iterable[str]) -> dict[str, str]:
    """``{registry kind: contribution name}`` of plugin ``name`` contributing ``kind``
    (``{"architectures": "foo"}``; with several kinds each is ``<name>_<kind>``)."""
    kinds = _kinds(kind)
    return {KINDS[k].hook.removeprefix("dlsuite_"): name if len(kinds) == 1 else f"{name}_{k}"
            for k in kinds}


def new_plugin(name: str, kind: str | Iterable[str], directory: str | Path) -> Path:
    """Write the skeleton of plugin ``name`` contributing ``kind`` (one kind, several, or a
    comma-separated string) into ``directory/dlsuite-<name>``; with several kinds each
    contribution is named ``<name>_<kind>``.

    Returns the package folder. Refuses a bad name or kind and an existing folder (nothing
    is written then)."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or keyword.iskeyword(name):
        why = ("is a Python keyword" if keyword.iskeyword(name) else "starts with a digit"
               if name[:1].isdigit() else "has characters other than lower case letters, "
               "digits and _" if name else "is empty")
        raise DlsuiteInputError(f"plugin name {name!r}: {why}; use lower case letters, digits "
                                "and _, starting with a letter (e.g. acme_net)")
    if len(name) > _LONGEST_NAME:  # it names folders and files: keep them under any limit
        raise DlsuiteInputError(f"plugin name {name[:20]}...: {len(name)} characters; use at "
                                f"most {_LONGEST_NAME}")
    kinds = _kinds(kind)
    dist = f"dlsuite-{name.replace('_', '-')}"
    package = f"dlsuite_{name}"
    root = Path(directory) / dist
    if root.exists():
        raise DlsuiteInputError(f"{root}: already exists; choose another name or folder")
    plugin_text, test_text, modules, names = "", "", {}, []
    for k in kinds:
        template = KINDS[k]
        contribution = name if len(kinds) == 1 else f"{name}_{k}"
        names.append(contribution)
        prefix = "" if len(kinds) == 1 else f"{k}_"
        fields = {"name": contribution, "package": package, "dist": dist, "module": k,
                  "spec": template.spec, "hook": template.hook, "contract": template.contract,
                  "camel": "".join(p.title() for p in contribution.split("_")),
                  "prefix": prefix}
        fields["test_params"] = template.test_params.format(**fields)
        extra = template.spec_extra.format(**fields)
        fields["spec_extra"] = f",\n        {extra}" if extra else ""
        fields["params"] = textwrap.indent(_dedent(template.params), "    ").rstrip("\n")
        helpers = _dedent(template.helpers.format(**fields)) if template.helpers else ""
        fields["helpers"] = f"{helpers}\n\n" if helpers else ""
        plugin_text += PLUGIN_KIND.format(**fields)
        test_text += TEST_KIND.format(**fields)
        modules[k] = _dedent(template.factory).format(**fields)
    specs = ", ".join(KINDS[k].spec for k in kinds)
    contracts = ", ".join(KINDS[k].contract for k in kinds)
    head = {"name": name, "dist": dist, "package": package, "specs": specs,
            "contracts": contracts,
            "names": ", ".join(f"`{n}`" for n in names)}
    files = {
        root / "pyproject.toml": _dedent(PYPROJECT).format(**head).replace("`", ""),
        root / "README.md": f"# {dist}\n\nA dlsuite plugin providing {head['names']}.\n\n"
                            f"    pip install .\n    dlsuite plugins\n    pytest tests\n",
        root / "src" / package / "__init__.py": f'"""{dist}: a dlsuite plugin."""\n',
        root / "src" / package / "plugin.py": _dedent(PLUGIN_HEAD).format(**head) + plugin_text,
        root / "tests" / f"test_{name}.py": _dedent(TEST_HEAD).format(**head) + test_text,
    }
    for k, text in modules.items():
        files[root / "src" / package / f"{k}.py"] = text
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root
