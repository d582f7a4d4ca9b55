"""Hard-link this interpreter's installed torch into another virtualenv: `python .ci/link_torch.py VENV`.

The oldest-transformers venv needs the very same pinned CPU torch as .venv. Unpacking its ~700 MB wheel a
second time costs minutes of CI; linking the installed files costs seconds, and pip then sees torch as
installed (its dist-info comes along) and installs only what is missing.
"""
import importlib.metadata
import os
import sys
import sysconfig
from pathlib import Path


def main(venv):
    source = Path(sysconfig.get_paths()["purelib"])
    target = Path(venv) / source.relative_to(sys.prefix)
    linked = 0
    for file in importlib.metadata.distribution("torch").files:
        if ".." in file.parts:  # console scripts (torchrun): not needed by the check
            continue
        destination = target / file
        destination.parent.mkdir(parents=True, exist_ok=True)
        if not destination.exists():
            os.link(source / file, destination)
            linked += 1
    print(f"linked {linked} torch files into {target}")


if __name__ == "__main__":
    main(sys.argv[1])
