"""Studies made of the CLI's own commands: each ``python -m paper_code ...`` a new process in the project folder,
timed, its output kept beside its files, and nothing done twice (a finished command says its file is up to
date; an evaluation already made is read back). ``studies/own_task.py`` and ``studies/mujoco_teacher_route.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from paper_code.project import project_root


def enter_project(out: Path) -> Path:
    """Move into the project folder (every command runs there and names files relative to it) and return the
    study's folder ``out`` as seen from there (relative: to where the study was started)."""
    root = project_root()
    if not out.is_absolute():
        out = Path(os.path.relpath(Path.cwd() / out, root))
    os.chdir(root)
    return out


class Stages:
    """The commands of one folder and the seconds each took when it wrote its file (``stages.json``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.record = folder / "stages.json"
        self.stages: dict[str, dict[str, Any]] = json.loads(self.record.read_text()) if self.record.exists() else {}

    def __getitem__(self, name: str) -> dict[str, Any]:
        return self.stages[name]

    def _run(self, name: str, cmd: list[str], *, keep_log: bool = False) -> tuple[str, float]:
        """Run ``python -m paper_code *cmd`` in the project folder (so that the paths in its files are the
        project's relative ones); its output goes to ``<name>.txt`` (with ``keep_log``, only if the command
        wrote its file or failed: the output of the run that made a file stays beside it); returns stdout and seconds."""
        log = self.folder / f"{name}.txt"
        start = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "paper_code", *cmd], capture_output=True, text=True, cwd=project_root())
        seconds = time.perf_counter() - start
        if not (keep_log and r.returncode == 0 and log.exists() and not r.stdout.lstrip().startswith("wrote")):
            log.write_text(f"$ python -m paper_code {' '.join(cmd)}\n{r.stdout}{r.stderr}")
        if r.returncode != 0:
            raise SystemExit(f"error: `python -m paper_code {' '.join(cmd)}` failed ({r.returncode}); see {log}")
        return r.stdout, seconds

    def _keep(self, name: str, cmd: list[str], seconds: float) -> None:
        self.stages[name] = {"seconds": round(seconds, 1), "command": "python -m paper_code " + " ".join(cmd)}
        self.record.write_text(json.dumps(self.stages, indent=2) + "\n")

    def command(self, name: str, cmd: list[str]) -> None:
        """A command that writes a file: the time of the run that wrote it is kept (a re-run that finds the
        file up to date costs nothing and keeps it; a file found up to date with no record has NaN seconds)."""
        stdout, seconds = self._run(name, cmd, keep_log=True)
        if stdout.lstrip().startswith("wrote"):
            self._keep(name, cmd, seconds)
        elif name not in self.stages:  # written by an earlier run that left no record: its time is not known
            self._keep(name, cmd, float("nan"))

    def evaluation(self, name: str, file: Path, learners: int, episodes: int) -> dict[str, Any]:
        """``evaluate FILE --json`` (the set beside random, untrained and teacher): made once, then read."""
        cmd = ["evaluate", str(file), "--learners", str(learners), "--episodes", str(episodes), "--json"]
        saved = self.folder / f"{name}.json"
        if name in self.stages and saved.exists():
            return json.loads(saved.read_text())
        stdout, seconds = self._run(name, cmd)
        result = json.loads(stdout)
        saved.write_text(json.dumps(result, indent=2) + "\n")
        self._keep(name, cmd, seconds)
        return result


def ci(e: dict[str, Any]) -> str:
    """``mean [low, high]`` of an evaluation or a reference in ``evaluate --json``."""
    return f"{e['mean']:.1f} [{e['ci95'][0]:.1f}, {e['ci95'][1]:.1f}]"
