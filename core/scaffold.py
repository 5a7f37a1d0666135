"""``dlsuite new-plugin``: write a ready-to-install plugin package skeleton.

The skeleton has a ``pyproject.toml`` with the ``dlsuite`` entry point, a TF-free
``plugin.py`` with the parameter class and spec, a factory module, and tests using the
testing kit (:mod:`dlsuite.testing`). Templates are declared per kind in ``KINDS``.
"""

from __future__ import annotations

import keyword
import re
import textwrap
from pathlib import Path

import attrs

from .errors import DlsuiteInputError

__all__ = ["new_plugin", "KINDS"]


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


KINDS: dict[str, KindTemplate] = {
    "architecture": KindTemplate(
        hook="dlsuite_architectures", spec="ArchitectureSpec", contract="ArchitectureContract",
        params='''
            n_filters: int = param(16, help="filters of the first level")
            pools: int = param(2, help="number of down-sampling steps")
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
        test_params='{"n_filters": 4, "pools": 2}',
        spec_extra=",\n                   size_multiple=lambda params: 2 ** params.pools",
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
        test_params="{}",
    ),
    "postprocessor": KindTemplate(
        hook="dlsuite_postprocessors", spec="PostprocessorSpec", contract="PostprocessorContract",
        params='''
            min_size: int = param(10, help="objects smaller than this are removed")
        ''',
        factory='''
            """The {name} post-processor."""

            import numpy as np
            from skimage.morphology import remove_small_objects


            def build(params):
                """A step mapping a mask (H, W) to a cleaned uint8 mask."""

                def step(mask):
                    return remove_small_objects(mask > 0, params.min_size).astype(np.uint8)

                return step
        ''',
        test_params="{}",
    ),
}

PYPROJECT = '''
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "A dlsuite {kind} plugin"
requires-python = ">=3.10"
dependencies = ["dlsuite"]

[project.entry-points.dlsuite]
{package} = "{package}.plugin"

[tool.setuptools.packages.find]
where = ["src"]
'''

PLUGIN = '''
"""Entry-point module of {dist}: returns specs; imports no TensorFlow."""

import attrs

from dlsuite import {spec}, hookimpl, param


@attrs.frozen
class Params:
    """Parameters of {name}."""
{params}

@hookimpl
def {hook}():
    """Contribute {name}."""
    return [{spec}(name="{name}", factory="{package}.impl:build", params=Params,
                   description="TODO: one line saying what {name} does"{spec_extra})]
'''

TEST = '''
"""Contract tests from dlsuite's testing kit."""

import {package}.plugin as plugin
from dlsuite.testing import {contract}


class Test{camel}({contract}):
    plugin = plugin
    name = "{name}"
    params = {test_params}
'''


def _dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def new_plugin(name: str, kind: str, directory: str | Path) -> Path:
    """Write the skeleton of plugin ``name`` of ``kind`` into ``directory/dlsuite-<name>``.

    Returns the package folder. Refuses to overwrite an existing folder.
    """
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or keyword.iskeyword(name):
        raise DlsuiteInputError(f"plugin name {name!r}: use lower case letters, digits and _")
    if kind not in KINDS:
        raise DlsuiteInputError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    template = KINDS[kind]
    dist = f"dlsuite-{name.replace('_', '-')}"
    package = f"dlsuite_{name}"
    root = Path(directory) / dist
    if root.exists():
        raise DlsuiteInputError(f"{root}: already exists; choose another name or folder")
    fields = {"name": name, "dist": dist, "package": package, "kind": kind,
              "spec": template.spec, "hook": template.hook, "contract": template.contract,
              "camel": "".join(p.title() for p in name.split("_")),
              "test_params": template.test_params, "spec_extra": template.spec_extra,
              "params": textwrap.indent(_dedent(template.params), "    ")}
    files = {
        root / "pyproject.toml": _dedent(PYPROJECT).format(**fields),
        root / "README.md": f"# {dist}\n\nA dlsuite {kind} plugin providing `{name}`.\n\n"
                            f"    pip install .\n    dlsuite plugins\n    pytest tests\n",
        root / "src" / package / "__init__.py": f'"""{dist}: a dlsuite plugin."""\n',
        root / "src" / package / "plugin.py": _dedent(PLUGIN).format(**fields),
        root / "src" / package / "impl.py": _dedent(template.factory).format(**fields),
        root / "tests" / f"test_{name}.py": _dedent(TEST).format(**fields),
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root
