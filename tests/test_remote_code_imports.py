"""The files that travel to the Hub as remote code import only torch, transformers, the standard library and
each other: a Hub user's machine has nothing else that hf_minbert depends on (the remote-code tests block
hf_minbert itself, but numpy, datasets or peft are installed here and would not be noticed)."""
import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hf_minbert"
REMOTE_FILES = sorted([PACKAGE / "configuration_minbert.py", PACKAGE / "pipelines.py", *PACKAGE.glob("modeling_minbert*.py")])
REMOTE_MODULES = {path.stem for path in REMOTE_FILES}
ALLOWED_PACKAGES = {"torch", "transformers"} | set(sys.stdlib_module_names)


def imported_modules(path: Path):
    """(line, module) of every import in the file, function bodies included; relative ones keep their dots."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield node.lineno, "." * node.level + (node.module or "")


def is_allowed(module: str) -> bool:
    if module.startswith("."):
        return module.lstrip(".") in REMOTE_MODULES
    return module.split(".")[0] in ALLOWED_PACKAGES


@pytest.mark.parametrize("path", REMOTE_FILES, ids=lambda path: path.name)
def test_a_remote_code_file_imports_only_torch_transformers_the_standard_library_and_its_siblings(path):
    outside = [f"line {line}: {module}" for line, module in imported_modules(path) if not is_allowed(module)]
    assert not outside, f"{path.name} imports what a Hub user may not have: {outside}"
