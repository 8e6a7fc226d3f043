"""Backbones (torchvision ResNet / VGG with output stride 16 or 8, a tiny CNN) and weights loading."""

from .backbones import ARCHS, Backbone, build_backbone, load_weights

__all__ = ["ARCHS", "Backbone", "build_backbone", "load_weights"]
