"""The platform config: typed models, the YAML loader, the embedded default and its JSON Schema."""

from mailstrata.config.loader import load_config, parse_config
from mailstrata.config.model import PlatformConfig

__all__ = ["PlatformConfig", "load_config", "parse_config"]
