"""The notebooks' conventions (setup cell, Colab badge, no outputs, exercises with hidden
solutions), the clean student copies and ``venus-mars clean-notebooks``, and ``setup()``.

The structural tests read every ``notebooks/[0-9][0-9]_*.ipynb`` through the same loader
the cleaner uses; notebook 00 (the quickstart) has no exercises.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from mini_mars.cli import EXIT_OK, EXIT_UNREADABLE, main
from venus_analysis.notebook_clean import PLACEHOLDER, clean_notebook, load_notebook, write_clean
from venus_analysis.notebook_setup import REPOSITORY, SETUP_CELL, setup

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NUMBERED = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
COLAB = "https://colab.research.google.com/github/" + REPOSITORY.removeprefix("https://github.com/")


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _hidden(cell: dict) -> bool:
    return cell.get("metadata", {}).get("jupyter", {}).get("source_hidden") is True


def _first(nb: dict, cell_type: str) -> dict:
    cells = [c for c in nb["cells"] if c["cell_type"] == cell_type]
    assert cells, f"no {cell_type} cell"
    return cells[0]


notebook = pytest.mark.parametrize("path", NUMBERED, ids=[p.name for p in NUMBERED])


def test_the_numbered_notebooks_are_there():
    names = [p.name for p in NUMBERED]
    for n in range(1, 9):
        assert any(name.startswith(f"{n:02d}_") for name in names), f"notebook {n:02d} missing from {names}"


# --- the conventions, on the real notebooks ---------------------------------------------


@notebook
def test_first_code_cell_is_the_setup_cell(path):
    cell = _first(load_notebook(path), "code")
    assert _source(cell) == SETUP_CELL, f"{path.name}: the first code cell is not SETUP_CELL"
    assert _tags(cell) == ["setup"], f"{path.name}: setup cell tags {_tags(cell)}"


@notebook
def test_first_markdown_cell_has_its_colab_badge(path):
    text = _source(_first(load_notebook(path), "markdown"))
    url = f"{COLAB}/blob/main/notebooks/{path.name}"
    linked = re.search(r"\]\(\s*" + re.escape(url) + r"\s*\)", text) or f'href="{url}"' in text
    assert linked, f"{path.name}: no link to {url} in the first markdown cell"
    assert "colab-badge" in text or "Open In Colab" in text or "Open in Colab" in text, f"{path.name}: no badge image"


@notebook
def test_committed_without_outputs(path):
    for i, cell in enumerate(load_notebook(path)["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name} cell {i}: has outputs"
            assert cell.get("execution_count") is None, f"{path.name} cell {i}: execution count {cell['execution_count']}"


@notebook
def test_exercises_have_hidden_solutions(path):
    cells = load_notebook(path)["cells"]
    for i, cell in enumerate(cells):  # every code solution is folded away, notebook 00 included
        if "solution" in _tags(cell) and cell["cell_type"] == "code":
            assert _hidden(cell), f"{path.name} cell {i}: solution without jupyter.source_hidden"
    if path.name.startswith("00_"):
        return
    starts = [i for i, c in enumerate(cells) if "exercise" in _tags(c)]
    assert 2 <= len(starts) <= 4, f"{path.name}: {len(starts)} exercises (want 2 to 4)"
    assert all(cells[i]["cell_type"] == "markdown" for i in starts), f"{path.name}: an exercise cell is not markdown"
    first_solution = next((i for i, c in enumerate(cells) if "solution" in _tags(c)), len(cells))
    assert first_solution > starts[0], f"{path.name}: a solution (cell {first_solution}) before the first exercise"
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(cells)
        solutions = [c for c in cells[start + 1 : end] if "solution" in _tags(c) and c["cell_type"] == "code"]
        assert solutions, f"{path.name}: exercise {k + 1} (cell {start}) has no code solution"
        assert all(_hidden(c) for c in solutions), f"{path.name}: exercise {k + 1} has a visible code solution"


# --- clean_notebook on a hand-built notebook --------------------------------------------


def _cell(cell_type: str, source: str, tags=(), hidden=False, n=None) -> dict:
    meta = {"tags": list(tags)} if tags else {}
    if hidden:
        meta["jupyter"] = {"source_hidden": True}
    cell = {"cell_type": cell_type, "id": f"c{n}", "metadata": meta, "source": source}
    if cell_type == "code":
        cell.update(outputs=[{"output_type": "stream", "name": "stdout", "text": ["hi\n"]}], execution_count=n)
    return cell


def _toy() -> dict:
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [
            _cell("markdown", "# Title [![Open In Colab](badge)](url)", n=1),
            _cell("code", SETUP_CELL, tags=["setup"], n=2),
            _cell("code", "x = 1", n=3),
            _cell("markdown", "**Exercise 1.** double x", tags=["exercise"], n=4),
            _cell("markdown", "Solution: multiply", tags=["solution"], n=5),
            _cell("code", "y = 2 * x", tags=["solution"], hidden=True, n=6),
            _cell("code", "print(y)", tags=["solution"], hidden=True, n=7),
            _cell("markdown", "Between the exercises", n=8),
            _cell("markdown", "**Exercise 2.** say why", tags=["exercise"], n=9),
            _cell("markdown", "Because.", tags=["answer"], n=10),
            _cell("markdown", "**Exercise 3.** triple x", tags=["exercise"], n=11),
            _cell("code", "z = 3 * x", tags=["solution"], hidden=True, n=12),
            _cell("code", "print('after')", hidden=True, n=13),
        ],
    }


def test_clean_notebook_removes_solutions_and_leaves_placeholders():
    nb = _toy()
    before = copy.deepcopy(nb)
    clean = clean_notebook(nb)
    assert nb == before, "the input notebook was changed"
    cells = clean["cells"]
    assert not any("solution" in _tags(c) or "answer" in _tags(c) for c in cells)
    assert [_source(c) for c in cells] == [
        "# Title [![Open In Colab](badge)](url)", SETUP_CELL, "x = 1", "**Exercise 1.** double x", PLACEHOLDER,
        "Between the exercises", "**Exercise 2.** say why", "**Exercise 3.** triple x", PLACEHOLDER, "print('after')",
    ]  # fmt: skip
    placeholders = [c for c in cells if _source(c) == PLACEHOLDER]
    assert all(c["cell_type"] == "code" for c in placeholders)
    for c in cells:
        if c["cell_type"] == "code":
            assert c["outputs"] == [] and c["execution_count"] is None
    assert _tags(cells[1]) == ["setup"]
    assert _hidden(cells[-1]), "a kept cell lost its metadata"
    assert clean["metadata"] == nb["metadata"] and clean["nbformat"] == 4
    ids = [c["id"] for c in cells]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", i) for i in ids)


def test_clean_notebook_is_a_valid_nbformat_notebook():
    nbformat = pytest.importorskip("nbformat")
    nbformat.validate(nbformat.from_dict(clean_notebook(_toy())))


# --- write_clean and the command ---------------------------------------------------------


@pytest.fixture
def notebook_copy(tmp_path):
    """A copy of the real numbered notebooks (they may be edited while the tests run)."""
    src = tmp_path / "notebooks"
    src.mkdir()
    for path in NUMBERED:
        shutil.copy(path, src / path.name)
    (src / "scratch.ipynb").write_text("not even json")  # not numbered: never read
    return src


def test_write_clean_on_the_real_notebooks(notebook_copy, tmp_path):
    out = tmp_path / "clean"
    written = write_clean(notebook_copy, out)
    assert [p.name for p in written] == [p.name for p in NUMBERED]
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in NUMBERED]  # no temporary files left
    for path in written:
        original, clean = load_notebook(notebook_copy / path.name), load_notebook(path)
        assert not any("solution" in _tags(c) for c in clean["cells"]), path.name
        setup_cell, kept = _first(original, "code"), _first(clean, "code")
        assert (_source(kept), kept["metadata"]) == (_source(setup_cell), setup_cell["metadata"]), path.name
        exercises = sum("exercise" in _tags(c) for c in original["cells"])
        code_solutions = sum("solution" in _tags(c) and c["cell_type"] == "code" for c in original["cells"])
        placeholders = sum(_source(c) == PLACEHOLDER for c in clean["cells"])
        assert (1 <= placeholders <= max(exercises, 1)) if code_solutions else placeholders == 0, path.name
        assert all(c["outputs"] == [] and c["execution_count"] is None for c in clean["cells"] if c["cell_type"] == "code")
        assert path.read_text(encoding="utf-8").endswith("}\n")


def test_write_clean_names_a_bad_notebook(tmp_path):
    src = tmp_path / "nbs"
    src.mkdir()
    (src / "01_fine.ipynb").write_text(json.dumps(_toy()))
    (src / "02_broken.ipynb").write_text('{"cells": [')
    with pytest.raises(ValueError, match="02_broken.ipynb"):
        write_clean(src, tmp_path / "out")
    assert not (tmp_path / "out").exists(), "nothing is written when one notebook is bad"
    (src / "02_broken.ipynb").write_text(json.dumps({"nbformat": 3, "worksheets": []}))
    with pytest.raises(ValueError, match=r"02_broken.ipynb.*nbformat 4"):
        write_clean(src, tmp_path / "out")


def test_write_clean_empty_folder_and_same_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="empty"):
        write_clean(tmp_path / "empty", tmp_path / "out")
    (tmp_path / "nbs").mkdir()
    (tmp_path / "nbs" / "01_a.ipynb").write_text(json.dumps(_toy()))
    with pytest.raises(ValueError, match="overwrite"):
        write_clean(tmp_path / "nbs", tmp_path / "nbs")


def test_clean_notebooks_command(tmp_path, capsys):
    src = tmp_path / "nbs"
    src.mkdir()
    for name in ("01_a.ipynb", "02_b.ipynb"):
        (src / name).write_text(json.dumps(_toy()))
    out = tmp_path / "clean"
    assert main(["clean-notebooks", "--src", str(src), "--out", str(out)]) == EXIT_OK
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 3 and "01_a.ipynb" in printed[0] and "02_b.ipynb" in printed[1]
    assert printed[-1] == f"wrote 2 clean notebooks to {out} (10 solution cells removed)"  # 5 per toy notebook
    assert sorted(p.name for p in out.iterdir()) == ["01_a.ipynb", "02_b.ipynb"]
    assert main(["clean-notebooks", "--src", str(tmp_path / "none"), "--out", str(out)]) == EXIT_UNREADABLE
    assert "none" in capsys.readouterr().err


# --- setup() -------------------------------------------------------------------------------


@pytest.fixture
def keep_torch_threads():
    """setup() in fast mode sets torch to one thread; give the rest of the session its threads back."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch else None
    yield
    torch = sys.modules.get("torch")
    if torch is not None and threads is not None:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("value, fast", [("1", True), ("0", False), (None, False)])
def test_setup_reads_fast_mode_from_the_environment(monkeypatch, keep_torch_threads, value, fast):
    if value is None:
        monkeypatch.delenv("VENUS_MARS_FAST", raising=False)
    else:
        monkeypatch.setenv("VENUS_MARS_FAST", value)
    env = setup(quiet=True)
    assert env.fast is fast
    assert env.where == "python" and not env.in_colab
    assert env.device in ("cpu", "cuda", "mps")
    assert f"fast mode {'on' if fast else 'off'}" in env.describe()


def test_setup_prints_one_line_unless_quiet(capsys, keep_torch_threads):
    setup(fast=False, quiet=True)
    assert capsys.readouterr().out == ""
    env = setup(fast=False)
    assert capsys.readouterr().out == env.describe() + "\n"


def test_the_repository_is_named_once_for_pyproject_and_the_notebooks():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    meta = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert meta["urls"]["Repository"] == REPOSITORY
