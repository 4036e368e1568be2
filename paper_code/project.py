"""Where things are: the project being worked in (its ``dvc.yaml``) and the package's own checkout.

The **project root** is the folder holding ``dvc.yaml``, found from the current directory upwards
(or ``$PAPER_CODE_ROOT``, which ``python -m paper_code notebook --root DIR`` sets): never the
folder the package was installed from, so ``dvc exp run --temp`` (which runs a copy of the
project in a temporary folder), ``-S`` overrides of its ``params.yaml`` and a second copy of the
project each read and write their own files. Every layer may use this module.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT_ENV = "PAPER_CODE_ROOT"
PROJECT_MARKER = "dvc.yaml"


def project_root(start: str | Path | None = None) -> Path:
    """The project being worked in: ``$PAPER_CODE_ROOT`` if set, else the nearest folder at or
    above ``start`` (default: the current directory) that holds ``dvc.yaml``."""
    env = os.environ.get(ROOT_ENV)
    if env:
        root = Path(env).resolve()
        if not (root / PROJECT_MARKER).is_file():
            raise ValueError(f"{ROOT_ENV}={env} is not a project folder (it has no {PROJECT_MARKER})")
        return root
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PROJECT_MARKER).is_file():
            return folder
    raise ValueError(f"no {PROJECT_MARKER} in {here} or any folder above it: run inside the project, or set "
                     f"{ROOT_ENV} (the notebook command's `root`)")


def package_root() -> Path:
    """The folder the package's code was loaded from (its git checkout tells the code revision)."""
    return Path(__file__).resolve().parents[1]


def relative(path: str | Path) -> str:
    """``path`` relative to the project root where it lies inside it (what notebooks print: no
    absolute paths of this machine in their outputs), else unchanged."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(project_root()))
    except ValueError:
        return str(path)
