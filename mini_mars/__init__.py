"""mini_mars: a small, readable re-creation of MARS (VQ-VAE motion tokenizers and a
language model that answers with words and <FACE_k>/<BODY_k> gesture tokens).

The model itself arrives with later issues; for now this package holds the command-line
entry point ``venus-mars`` that sits on top of both layers.
"""

__version__ = "0.1.0"
