"""Writing tables, figures and metrics to the results folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from paper_code.core.evaluation import mean_ci95
from paper_code.pipeline.plots import use_style

use_style()  # every notebook writes its figures through this module: one style for all of them


def write_table(df: pd.DataFrame, path_stem: str | Path, *, floatfmt: str = ".2f") -> tuple[Path, Path]:
    """Write ``df`` as ``<stem>.csv`` and ``<stem>.md`` (GitHub Markdown); returns both paths."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    csv, md = stem.with_suffix(".csv"), stem.with_suffix(".md")
    df.to_csv(csv, index=False)
    # object dtype: integer columns stay integers (tabulate would otherwise format every cell as float)
    md.write_text(df.astype(object).to_markdown(index=False, floatfmt=floatfmt) + "\n")
    return csv, md


def write_json(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as indented JSON (sorted keys, for stable diffs)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    return path


def write_metrics(metrics: dict[str, float | int], path: str | Path) -> Path:
    """A notebook's headline metrics for ``dvc metrics show``: a flat mapping of a few short keys
    to numbers rounded to one decimal (the details are in the notebook's tables and summary.json)."""
    bad = [k for k, v in metrics.items() if not isinstance(v, (int, float)) or isinstance(v, bool) or len(k) > 12]
    if bad or len(metrics) > 3:
        raise ValueError(f"headline metrics are at most 3 short keys with numbers, got {sorted(metrics)}")
    return write_json({k: v if isinstance(v, int) else round(float(v), 1) for k, v in metrics.items()}, path)


def write_series(df: pd.DataFrame, by: str, folder: str | Path, columns: list[str]) -> list[Path]:
    """One CSV per value of ``by`` (``<folder>/<by><value>.csv`` with ``columns``): the files
    ``dvc plots`` draws as one line each (top-level ``plots:`` in dvc.yaml)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for value, group in df.groupby(by, sort=True):
        path = folder / f"{by}{value}.csv".replace(" ", "_")
        group[columns].to_csv(path, index=False)
        paths.append(path)
    return paths


def save_figure(fig: Any, path: str | Path) -> Path:
    """Save a matplotlib figure as PNG (150 dpi) and, beside it, PDF (vector, for a paper), without
    timestamps in their metadata; returns the PNG's path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(path.with_suffix(".pdf"), bbox_inches="tight", metadata={"Creator": None, "Producer": None,
                                                                        "CreationDate": None})
    return path


def summarize_returns(df: pd.DataFrame, by: list[str], *, value: str = "return", cap: float | None = 500.0) -> pd.DataFrame:
    """Mean, std, the mean's 95% CI (:func:`~paper_code.core.evaluation.mean_ci95`, within 0 .. ``cap``
    when there is one), min, max (and % of episodes at ``cap``) per group."""
    g = df.groupby(by, sort=False)[value]
    out = g.agg(episodes="count", mean="mean", std="std", min="min", max="max").reset_index()
    bounds = (0.0, cap) if cap is not None else (None, None)
    ci = [mean_ci95(v.to_numpy(copy=True), bounds)[1:] for _, v in g]
    out["CI low"], out["CI high"] = [c[0] for c in ci], [c[1] for c in ci]
    if cap is not None:
        out["pct_at_cap"] = g.apply(lambda s: 100.0 * (s >= cap).mean()).to_numpy()
    return out
