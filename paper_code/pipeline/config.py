"""Pipeline configuration: the scales in the project's ``params.yaml`` and where a notebook writes
(the project itself: :mod:`paper_code.project`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from paper_code.project import project_root

SCALES = ("quick", "paper")


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
