"""One typed configuration: a YAML preset plus dotted command-line overrides."""
from .loader import (DEFAULT_PRESET, config_from_dict, config_hash, config_to_dict, flatten, load_config,
                     parse_overrides, resolve_preset)
from .schema import Config, ConfigError, ModelConfig, RolloutConfig, TaskConfig, TrackingConfig, TrainerConfig

__all__ = ["Config", "ConfigError", "DEFAULT_PRESET", "ModelConfig", "RolloutConfig", "TaskConfig",
           "TrackingConfig", "TrainerConfig", "config_from_dict", "config_hash", "config_to_dict", "flatten",
           "load_config", "parse_overrides", "resolve_preset"]
