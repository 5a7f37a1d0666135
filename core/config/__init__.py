"""Typed configs: schema (attrs), converter (cattrs), legacy migration, loading.

``load_config(path)`` is the one entry point most callers need.
"""

from .loader import LoadedConfig, config_hash, load_config, load_config_data, parse_config
from .schema import SCHEMA_VERSION, Choice, Config

__all__ = ["load_config", "load_config_data", "parse_config", "LoadedConfig", "config_hash",
           "Config", "Choice", "SCHEMA_VERSION"]
