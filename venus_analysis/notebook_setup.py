"""The setup every notebook opens with: where it runs, fast mode, the device, plotly.

Each numbered notebook starts with the same cell (``SETUP_CELL``, kept identical by a
test): it installs venus-mars with ``%pip`` only when the package is missing (a fresh Colab
runtime), never reinstalls torch or anything Colab already has, then calls :func:`setup`,
which looks around and says in one line what it found and did::

    venus-mars 0.1.0 on Colab · device cuda (Tesla T4) · plotly renderer 'colab' · fast mode off
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
from dataclasses import dataclass

# Where the project lives: the notebooks' "Open in Colab" badges and their %pip install.
REPOSITORY = "https://github.com/venus-mars/venus-mars"
INSTALL_SPEC = f"venus-mars @ git+{REPOSITORY}"

# The first code cell of every numbered notebook, verbatim (tests/test_notebooks.py).
SETUP_CELL = f"""\
# Setup (the same cell opens every notebook): installs venus-mars only when it is missing,
# as on a fresh Colab runtime, and never reinstalls torch; then reports what it found.
import importlib.util

if importlib.util.find_spec("venus_analysis") is None:
    %pip install --quiet "{INSTALL_SPEC}"
from venus_analysis.notebook_setup import setup

ENV = setup()"""


@dataclass(frozen=True)
class NotebookEnv:
    """What :func:`setup` found: ``where`` ("colab", "jupyter" or "python"), ``fast``
    (the ``VENUS_MARS_FAST=1`` mode the tests and quick classroom runs use), ``device``
    ("cuda", "mps" or "cpu"; "cpu" also when torch is not installed) and the plotly
    ``renderer`` in use."""

    where: str
    fast: bool
    device: str
    device_name: str
    renderer: str

    @property
    def in_colab(self) -> bool:
        """Running on Google Colab."""
        return self.where == "colab"

    def describe(self) -> str:
        """The one-line summary :func:`setup` prints."""
        try:
            version = importlib.metadata.version("venus-mars")
        except importlib.metadata.PackageNotFoundError:  # run from a source tree without installing
            version = "(source tree)"
        place = {"colab": "on Colab", "jupyter": "in Jupyter", "python": "in plain Python"}[self.where]
        dev = f"{self.device} ({self.device_name})" if self.device_name else self.device
        return (f"venus-mars {version} {place} · device {dev} · plotly renderer {self.renderer!r} · "
                f"fast mode {'on' if self.fast else 'off'}")  # fmt: skip


def _where() -> str:
    if "google.colab" in sys.modules:
        return "colab"
    try:
        from IPython import get_ipython  # noqa: PLC0415 (IPython is optional outside notebooks)
    except ImportError:
        return "python"
    shell = get_ipython()
    return "jupyter" if shell is not None and "IPKernelApp" in getattr(shell, "config", {}) else "python"


def _device() -> tuple[str, str]:
    if importlib.util.find_spec("torch") is None:
        return "cpu", "torch not installed"
    import torch

    if torch.cuda.is_available():
        return "cuda", torch.cuda.get_device_name(0)
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps", "Apple GPU"
    return "cpu", f"{torch.get_num_threads()} threads"


def setup(*, fast: bool | None = None, quiet: bool = False) -> NotebookEnv:
    """Look at where the notebook runs, set what needs setting, print one line about it.

    - ``fast``: default from the environment variable ``VENUS_MARS_FAST`` ("1" = on).
    - plotly: on Colab the ``"colab"`` renderer (the default one shows nothing there);
      elsewhere plotly's own choice, which works offline in JupyterLab and VS Code.
    - In fast mode on a CPU, torch uses one thread: fast mode runs under the tests on busy
      CI machines, where two threads fighting for two cores are slower than one.
    """
    where = _where()
    fast = os.environ.get("VENUS_MARS_FAST") == "1" if fast is None else fast
    device, device_name = _device()
    if fast and device == "cpu" and "torch" in sys.modules:
        import torch

        torch.set_num_threads(1)
        device_name = "1 thread, fast mode"
    import plotly.io as pio

    if where == "colab":
        pio.renderers.default = "colab"
    env = NotebookEnv(where, fast, device, device_name, str(pio.renderers.default) or "plotly default")
    if not quiet:
        print(env.describe())
    return env
