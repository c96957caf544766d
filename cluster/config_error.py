"""ConfigError: the one error type for a recipe, override or setting that cannot be used. Every room raises it, so it
lives alone and imports nothing."""


class ConfigError(ValueError):
    """A recipe or override that cannot be used; the message names the key, the value and what is allowed."""
