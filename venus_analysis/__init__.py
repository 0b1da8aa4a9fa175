"""venus_analysis: the VENUS data layer (schema, loading, validation, per-utterance arrays,
the synthetic VENUS generator and dataset summaries).

The model layer, ``mini_mars``, builds on this package; this package never imports it.
"""

__version__ = "0.1.0"
