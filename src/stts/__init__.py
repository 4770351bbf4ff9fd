"""stts: spatio-temporal networks for human action recognition in video."""

__version__ = "0.1.0"
