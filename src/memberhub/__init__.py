"""memberhub: membership and loyalty management."""

__version__ = "0.1.0"
