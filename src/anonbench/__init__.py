"""anonbench: how image anonymization changes computer-vision training."""

__version__ = "0.1.0"
