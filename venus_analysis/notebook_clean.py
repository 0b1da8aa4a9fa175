"""Student copies of the notebooks: the exercises stay, their solutions go.

The numbered notebooks carry their exercises with the solutions in place (folded away):
a markdown cell tagged ``exercise`` asks the question, and the cells tagged ``solution``
after it answer it (code cells with ``jupyter.source_hidden``, sometimes a markdown one
too). :func:`clean_notebook` makes the copy to fill in: solution cells and prose answers
(tagged ``answer``) are removed, each exercise gets one ``# Your solution here`` code cell
where its code solution was, and every output is cleared. :func:`write_clean` does it for
a whole folder (``venus-mars clean-notebooks``)::

    notebooks/01_venus_tour.ipynb  ->  notebooks/clean/01_venus_tour.ipynb

Plain ``json`` is enough (no ``nbformat`` needed); files are written the way Jupyter
writes them (one-space indent, sorted keys), so a clean copy diffs well.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

from .files import atomic_write_text

PLACEHOLDER = "# Your solution here"
REMOVED_TAGS = ("solution", "answer")  # "answer": prose answers, removed with no placeholder


def _tags(cell: dict) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _removed(cell: dict) -> bool:
    """Whether the clean copy drops this cell (the setup cell never goes)."""
    tags = _tags(cell)
    if "setup" in tags:
        return False
    return "solution" in tags or ("answer" in tags and cell.get("cell_type") == "markdown")


def count_solutions(nb: dict) -> int:
    """The number of cells :func:`clean_notebook` removes from ``nb`` (solutions, answers)."""
    return sum(_removed(cell) for cell in nb.get("cells", []))


def clean_notebook(nb: dict) -> dict:
    """A copy of ``nb`` for students; ``nb`` itself is not changed.

    - cells tagged ``solution`` (and markdown cells tagged ``answer``) are removed;
    - for each exercise whose code solution was removed, one code cell ``# Your solution
      here`` stands where that solution's first code cell was (a solution that comes before
      any exercise counts as its own exercise);
    - every code cell's outputs and execution count are cleared;
    - everything else (other cells with their metadata, the notebook metadata) is kept.
    """
    out = copy.deepcopy(nb)
    with_ids = any("id" in cell for cell in out.get("cells", []))
    used_ids = {cell["id"] for cell in out.get("cells", []) if "id" in cell}
    cells: list[dict] = []
    exercise = 0  # which exercise the cells belong to (0 = before the first one)
    placed: set[int] = set()  # exercises that already have their placeholder
    for cell in out.get("cells", []):
        if "exercise" in _tags(cell) and not _removed(cell):
            exercise += 1
        if _removed(cell):
            if cell.get("cell_type") == "code" and exercise not in placed:
                placed.add(exercise)
                cells.append(_placeholder(len(placed), used_ids if with_ids else None))
            continue
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cells.append(cell)
    out["cells"] = cells
    return out


def _placeholder(n: int, used_ids: set[str] | None) -> dict:
    """The empty code cell left for the student's own solution (an id when the notebook uses ids)."""
    cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": [PLACEHOLDER]}
    if used_ids is not None:
        k = n
        while f"your-solution-{k}" in used_ids:
            k += 1
        cell["id"] = f"your-solution-{k}"
        used_ids.add(cell["id"])
    return cell


def load_notebook(path: str | os.PathLike) -> dict:
    """Read a notebook file; a ``ValueError`` naming the file if it is not nbformat-4 JSON."""
    path = Path(path)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a notebook, the file is not valid JSON ({err})") from err
    if not isinstance(nb, dict) or nb.get("nbformat") != 4 or not isinstance(nb.get("cells"), list):
        found = nb.get("nbformat") if isinstance(nb, dict) else type(nb).__name__
        raise ValueError(f"{path}: not an nbformat 4 notebook (nbformat {found!r}, or no list of cells)")
    return nb


def dumps_notebook(nb: dict) -> str:
    """``nb`` as Jupyter writes it: one-space indent, sorted keys, UTF-8 text, final newline."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def write_clean(src_dir: str | os.PathLike, out_dir: str | os.PathLike,
                pattern: str = "[0-9][0-9]_*.ipynb") -> list[Path]:  # fmt: skip
    """Write the clean copy of every notebook in ``src_dir`` matching ``pattern`` to
    ``out_dir`` under the same name (each file atomically); returns the written paths.

    Every notebook is read and checked before anything is written, so a bad one
    (``ValueError`` naming it) leaves ``out_dir`` untouched. No match at all raises
    ``FileNotFoundError`` naming ``src_dir``; ``out_dir`` must not be ``src_dir`` (that
    would overwrite the notebooks with their solutions removed).
    """
    src, out = Path(src_dir), Path(out_dir)
    paths = sorted(src.glob(pattern))
    if not paths:
        raise FileNotFoundError(f"no notebooks matching {pattern!r} in {src} (folder {src.resolve()})")
    if out.resolve() == src.resolve():
        raise ValueError(f"the clean copies would overwrite the notebooks in {src}; choose another output folder")
    cleaned = [(path.name, clean_notebook(load_notebook(path))) for path in paths]
    return [atomic_write_text(out / name, dumps_notebook(nb)) for name, nb in cleaned]
