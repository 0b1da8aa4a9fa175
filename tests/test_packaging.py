"""The project's packaging: dependencies in step, layering, entry point, optional smplx."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[;]", req.strip(), maxsplit=1)[0].lower()


def test_environment_yml_mirrors_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    text = (ROOT / "environment.yml").read_text()
    pip_section = text.split("- pip:", 1)[1]
    pip_reqs = [ln.strip()[2:] for ln in pip_section.splitlines() if ln.strip().startswith("- ") and "-e ." not in ln]
    assert sorted(deps) == sorted(pip_reqs), "environment.yml's pip list must equal pyproject's dependencies"


def test_torch_is_a_range_not_a_pin():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch = [d for d in deps if _name(d) == "torch"]
    assert torch and "==" not in torch[0] and ">=" in torch[0]


def test_smplx_is_optional():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(_name(d) == "smplx" for d in project["dependencies"])
    assert any(_name(d) == "smplx" for d in project["optional-dependencies"]["smplx"])


def _imports(package: str) -> set[str]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_data_layer_never_imports_the_model_layer():
    assert "mini_mars" not in _imports("venus_analysis")


def test_no_hard_smplx_import_at_module_level():
    for package in ("venus_analysis", "mini_mars"):
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in tree.body:  # module-level statements only
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                    [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
                assert not any(n.split(".")[0] == "smplx" for n in names), path


def test_console_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "mini_mars", "--help"], capture_output=True, text=True, check=True)
    assert "demo" in out.stdout and "data" in out.stdout


def test_constraints_pin_every_dependency_inside_its_range():
    """make setup installs the versions CI tested (constraints-py311.txt): every dependency and
    dev extra is pinned there, to a version its range in pyproject.toml allows; torch is left
    to the Makefile's TORCH_SPEC, and no line points at a local file or URL."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    pins = {}
    for line in (ROOT / "constraints-py311.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert re.fullmatch(r"[A-Za-z0-9._-]+==[0-9][A-Za-z0-9.+!-]*", line), f"not a name==version pin: {line!r}"
            name, version = line.split("==")
            pins[canonicalize_name(name)] = Version(version)
    assert "torch" not in pins and "venus-mars" not in pins
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for req in map(Requirement, project["dependencies"] + project["optional-dependencies"]["dev"]):
        if req.name == "torch":
            continue
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not pinned in constraints-py311.txt"
        assert pins[name] in req.specifier, f"{req.name}=={pins[name]} is outside pyproject's {req.specifier}"
    assert "CONSTRAINTS ?= constraints-py311.txt" in (ROOT / "Makefile").read_text()
