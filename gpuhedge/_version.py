"""The package's version (read by ``pyproject.toml``; the modules import it from here)."""

__version__ = "0.1.0"
