"""Every package the code imports is declared in pyproject.toml: the app's among the
runtime dependencies, the sandbox's and the tests' among those or the dev extras."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
OWN = {"app", "sandbox", "tests", "wsgi"}
TYPE_CHECKERS_ONLY = {"_typeshed"}  # imported under `if TYPE_CHECKING:`


def _declared(requirements: list[str]) -> set[str]:
    return {_normal(re.split(r"[\s<>=!~\[;]", r, maxsplit=1)[0]) for r in requirements}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported(folder: str) -> set[str]:
    """The top-level names of every third-party module imported under `folder`."""
    names: set[str] = set()
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - OWN - TYPE_CHECKERS_ONLY


def _distributions(modules: set[str]) -> dict[str, set[str]]:
    found = packages_distributions()
    return {module: {_normal(d) for d in found.get(module, [module])} for module in modules}


PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
RUNTIME = _declared(PROJECT["dependencies"])
EXTRAS = {name: _declared(reqs) for name, reqs in PROJECT["optional-dependencies"].items()}


@pytest.mark.parametrize(
    ("folder", "allowed"),
    [
        # gevent: imported by app/gunicorn_config.py only when that worker is asked for
        ("app", RUNTIME | EXTRAS["gevent"]),
        ("sandbox", RUNTIME | EXTRAS["dev"]),
        ("tests", RUNTIME | EXTRAS["dev"]),
    ],
)
def test_every_import_is_a_declared_dependency(folder: str, allowed: set[str]):
    undeclared = {
        module: distributions
        for module, distributions in _distributions(_imported(folder)).items()
        if not distributions & allowed
    }
    assert undeclared == {}, f"imported under {folder}/ but not declared: {undeclared}"


def test_the_app_imports_no_http_or_json_stack_of_its_own():
    assert not {"pycurl", "orjson", "certifi"} & _imported("app")
