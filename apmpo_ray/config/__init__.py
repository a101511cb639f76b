"""One typed configuration: a YAML preset plus dotted command-line overrides."""
from .loader import (DEFAULT_PRESET, config_from_dict, config_hash, config_to_dict, flatten, load_config,
                     parse_overrides, resolve_preset)
from .errors import ConfigError
from .schema import Config, ModelConfig, RolloutConfig, TrackingConfig, TrainerConfig
from .task import EvalConfig, TaskConfig

__all__ = ["Config", "ConfigError", "DEFAULT_PRESET", "EvalConfig", "ModelConfig", "RolloutConfig", "TaskConfig",
           "TrackingConfig", "TrainerConfig", "config_from_dict", "config_hash", "config_to_dict", "flatten",
           "load_config", "parse_overrides", "resolve_preset"]
