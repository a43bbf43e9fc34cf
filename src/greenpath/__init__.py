"""greenpath: measure, predict and cut the energy of neural-network training."""

__version__ = "0.1.0"
