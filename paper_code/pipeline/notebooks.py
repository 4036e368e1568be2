"""Run the project's notebooks with papermill (what the DVC stages and the tests call)."""

from __future__ import annotations

import os
from pathlib import Path

from paper_code.pipeline.config import output_dir
from paper_code.project import project_root


def notebook_path(name: str) -> Path:
    """``notebooks/<name>.ipynb``; ``name`` may omit the extension."""
    path = project_root() / "notebooks" / (name if name.endswith(".ipynb") else f"{name}.ipynb")
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in (project_root() / "notebooks").glob("*.ipynb")))
        raise FileNotFoundError(f"no notebook {name!r}; known: {known}")
    return path


def run_notebook(name: str, scale: str, out_dir: str | Path | None = None, *, progress: bool = True) -> Path:
    """Execute a notebook at ``scale``; the executed copy goes to ``<out_dir>/notebooks/``.

    ``out_dir`` defaults to the scale's ``out_dir`` in params.yaml. Returns the executed copy.
    """
    import papermill as pm

    source = notebook_path(name)
    out = output_dir(scale, out_dir)
    target = out / "notebooks" / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    parameters = {"scale": scale}
    if out_dir is not None:
        parameters["out_dir"] = str(out)
    # the kernel inherits this process's environment: MPLBACKEND=Agg (the Makefile's, for scripts)
    # would replace the notebook's inline backend and leave the executed copy without figures
    backend = os.environ.pop("MPLBACKEND", None)
    try:
        pm.execute_notebook(
            str(source),
            str(target),
            parameters=parameters,
            kernel_name="python3",
            cwd=str(source.parent),
            progress_bar=progress,
        )
    finally:
        if backend is not None:
            os.environ["MPLBACKEND"] = backend
    without_machine_paths(target)
    return target


def without_machine_paths(notebook: str | Path) -> bool:
    """Make an executed copy independent of the machine it ran on: every absolute path inside the project
    (papermill's input and output paths, a warning's source file) becomes relative to the project. True if
    the file changed."""
    path = Path(notebook)
    text = path.read_text()
    root = str(project_root())
    cleaned = text.replace(root + os.sep, "").replace(root, ".")
    if cleaned != text:
        path.write_text(cleaned)
    return cleaned != text
