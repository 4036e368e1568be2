"""Pipeline configuration: where the project is, and the scales in its ``params.yaml``.

The **project root** is the folder holding ``dvc.yaml``, found from the current directory upwards
(or ``$PAPER_CODE_ROOT``, which ``python -m paper_code notebook --root DIR`` sets): never the
folder the package was installed from, so ``dvc exp run --temp`` (which runs a copy of the
project in a temporary folder), ``-S`` overrides of its ``params.yaml`` and a second copy of the
project each read and write their own files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

SCALES = ("quick", "paper")
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
    return Path(__file__).resolve().parents[2]


def relative(path: str | Path) -> str:
    """``path`` relative to the project root where it lies inside it (what notebooks print: no
    absolute paths of this machine in their outputs), else unchanged."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(project_root()))
    except ValueError:
        return str(path)


def load_scale(scale: str, params_file: str | Path | None = None) -> dict[str, Any]:
    """The settings of one scale (``quick`` or ``paper``) from the project's ``params.yaml``."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    path = Path(params_file) if params_file is not None else project_root() / "params.yaml"
    with open(path) as f:
        params = yaml.safe_load(f)
    if not isinstance(params, dict) or scale not in params:
        raise ValueError(f"{path} has no {scale!r} section")
    return params[scale]


def output_dir(scale: str, out_dir: str | Path | None = None, *, params_file: str | Path | None = None) -> Path:
    """Where a notebook writes: ``out_dir`` if given, else the scale's ``out_dir`` in params.yaml.

    Relative paths are taken from the project root, so notebooks write to the same place
    whether run by papermill, DVC, nbval or JupyterLab.
    """
    if out_dir is None:
        out_dir = load_scale(scale, params_file)["out_dir"]
    path = Path(out_dir)
    if not path.is_absolute():
        path = project_root() / path
    path.mkdir(parents=True, exist_ok=True)
    return path
