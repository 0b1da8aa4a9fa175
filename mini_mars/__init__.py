"""mini_mars: a small, readable re-creation of MARS (VQ-VAE motion tokenizers and a
language model that answers with words and <FACE_k>/<BODY_k> gesture tokens).

Here now: the configuration presets (``config``), the face and body VQ-VAE tokenizers
(``vqvae``, ``motion_data``, ``train_vq``, ``checkpoint``, ``vq_metrics``) and the
command-line entry point ``venus-mars`` that sits on top of both layers. The language
model arrives with the next issue.
"""

__version__ = "0.1.0"
