"""degradation: plain vs residual networks at many depths, the CIFAR-10 study of He et al. (2015)."""

__version__ = "0.1.0"
