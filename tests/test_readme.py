"""The README's plain-torch snippets run as printed and use a dataset as the library does."""

from __future__ import annotations

import builtins

import torch

from paper_code.core.dataset import DistilledDataset
from paper_code.project import package_root


def _snippets() -> list[str]:
    readme = (package_root() / "README.md").read_text()
    section = readme.split("## Using a distilled dataset", 1)[1].split("\n## ", 1)[0]
    return [block.split("```", 1)[0] for block in section.split("```python\n")[1:]]


def _run(code: str, monkeypatch) -> dict:
    printed: list = []
    monkeypatch.chdir(package_root())
    monkeypatch.setattr(builtins, "print", lambda *a, **k: printed.append(a))
    torch.manual_seed(0)  # the snippets sample actions from torch's global stream
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    namespace["printed"] = printed
    return namespace


def test_the_categorical_and_gaussian_snippets_run_and_score_like_trained_learners(monkeypatch):
    categorical, gaussian = _snippets()
    ns = _run(categorical, monkeypatch)
    assert ns["printed"][-1][0] > 100  # one episode of one one-step learner (a random policy: ~20)
    ns = _run(gaussian, monkeypatch)
    assert ns["printed"][-1][0] > 200  # Hopper (the random policy: ~20)
    # the snippet's normalisation is the library's
    ds = DistilledDataset.load(package_root() / "results" / "mujoco" / "datasets" / "Hopper-v5_b64.safetensors")
    obs = torch.randn(32, 11) * 3
    torch.testing.assert_close(torch.stack([ns["normalize"](o.numpy()) for o in obs]), ds.normalize(obs))
