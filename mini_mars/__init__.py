"""mini_mars: a small, readable re-creation of MARS (VQ-VAE motion tokenizers and a
language model that answers with words and <FACE_k>/<BODY_k> gesture tokens).

The pieces, in the order data flows through them:

- ``config``: every knob, as dataclasses, and the presets ``smoke``, ``cpu-mini``,
  ``gpu-small``, ``paper``;
- ``vqvae``, ``motion_data``, ``train_vq``, ``checkpoint``, ``vq_metrics``: the face and
  body tokenizers (motion <-> one code per 8 frames);
- ``interleave``, ``pairs``: words and codes in one token sequence; chat training pairs;
- ``lm_tokenizer``, ``lm``, ``train_lm``: the text tokenizer, the language model, its
  training loop;
- ``generate``, ``lm_eval``: replies back to motion; honest evaluation;
- ``pipeline``, ``demo``, ``cli``: everything wired, ``venus-mars demo``, the command line.
"""

__version__ = "0.1.0"
