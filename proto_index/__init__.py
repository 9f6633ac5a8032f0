"""proto-index: classify environmental sound archives with LAION-CLAP prototypes and background subtraction."""

__version__ = "0.1.0"
