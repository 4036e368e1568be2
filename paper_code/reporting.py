"""Writing tables, figures and metrics to the results folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd


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


def save_figure(fig: Any, path: str | Path) -> Path:
    """Save a matplotlib figure as PNG at 150 dpi without timestamps in the metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, bbox_inches="tight", metadata={"Software": None})
    return path


def summarize_returns(df: pd.DataFrame, by: list[str], *, value: str = "return", cap: float | None = 500.0) -> pd.DataFrame:
    """Mean, std, 95% CI half-width of the mean, min, max (and % of episodes at ``cap``) per group."""
    g = df.groupby(by, sort=False)[value]
    out = g.agg(episodes="count", mean="mean", std="std", min="min", max="max").reset_index()
    out["ci95"] = 1.96 * out["std"] / out["episodes"].pow(0.5)
    if cap is not None:
        out["pct_at_cap"] = g.apply(lambda s: 100.0 * (s >= cap).mean()).to_numpy()
    return out
