"""compute-budget: plan training compute from scaling laws, then check it with real sweeps."""

__version__ = "0.1.0"
