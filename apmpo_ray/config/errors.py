class ConfigError(ValueError):
    """A bad key or value, named by its dotted path."""
