"""Every package the code imports is pinned exactly in requirements.txt (not only arriving through another)."""

import ast
import re
import sys
from importlib.metadata import packages_distributions

from conftest import ROOT

SOURCES = ["gan", "app_pages", "app.py", "tests", "benchmarks"]
LOCAL = {"gan", "conftest", "fake_spotify"}


def _imported_modules() -> set[str]:
    modules = set()
    for source in SOURCES:
        path = ROOT / source
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - LOCAL


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_imported_package_is_pinned():
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements.txt: {line!r} is not an exact pin"
            pins[_normalise(name)] = version
    distributions = packages_distributions()
    unpinned = {module: distributions.get(module) for module in _imported_modules()
                if not any(_normalise(d) in pins for d in distributions.get(module, [module]))}
    assert not unpinned, f"imported but not pinned in requirements.txt: {unpinned}"
