"""A stand-in for torchvision in the parity tests only (see tests/peer_stubs/README.md)."""

from torchvision import models, ops, transforms

__version__ = "0.0+parity-test-stub"
__all__ = ["models", "ops", "transforms"]
