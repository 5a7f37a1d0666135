"""Tiny parameters for every built-in architecture, shared by tests and benchmarks.

Keys are labels: the architecture's name, or the name and a variant (``"unet_lstm mean"``)
when one architecture is built more than once; :func:`architecture_of` gives the name. Each
builds a model of a few thousand parameters that trains and exports in seconds at 32 px.
"""

from __future__ import annotations

#: label -> parameters (``unet_lstm`` once per time reduction).
TINY_ARCHITECTURES: dict[str, dict] = {
    "unet": {"n_filters": 4, "pools": 2},
    "categorical_unet": {"n_filters": 4, "pools": 2},
    "categorical_unet_transpose": {"n_filters": 4, "pools": 2},
    "categorical_unet_fc": {"n_filters": 4, "pools": 2},
    "categorical_unet_fc_dil": {"n_filters": 4, "pools": 2},
    "mobilenet_mobileunet": {"n_filters": 4, "pools": 2, "alpha": 0.35},
    "mobilenet_mobileunet_lstm": {"n_filters": 4, "pools": 2, "alpha": 0.35,
                                  "time_windows": 3},
    "unet_lstm mean": {"n_filters": 4, "pools": 2, "time_windows": 3,
                       "time_reduction": "mean"},
    "unet_lstm last": {"n_filters": 4, "pools": 2, "time_windows": 3,
                       "time_reduction": "last"},
}


def architecture_of(label: str) -> str:
    """The architecture name of a :data:`TINY_ARCHITECTURES` label."""
    return label.split()[0]


def tiny_params_by_architecture() -> dict[str, dict]:
    """One tiny parameter set per architecture name (a variant's own key dropped)."""
    out: dict[str, dict] = {}
    for label, params in TINY_ARCHITECTURES.items():
        name = architecture_of(label)
        out.setdefault(name, {k: v for k, v in params.items()
                              if label == name or k != "time_reduction"})
    return out
