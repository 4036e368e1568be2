"""Figures shared by the notebooks (matplotlib/seaborn); each function returns its figure."""

from __future__ import annotations


import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns


def returns_by_dof(df: pd.DataFrame, *, hue: str = "policy", cap: float | None = 500.0, title: str | None = None):
    """Mean episode return (bars: mean +- 1.96 standard errors) per number of axes N, one bar per ``hue`` value."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    sns.barplot(data=df, x="dof", y="return", hue=hue, errorbar=("se", 1.96), ax=ax)
    if cap is not None:
        ax.axhline(cap, color="grey", ls="--", lw=1, label=f"cap ({cap:g})")
    ax.set_xlabel("N (cart-pole axes)")
    ax.set_ylabel("episode return")
    ax.legend(loc="center right", frameon=False)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def trajectory_angles(theta: pd.DataFrame, *, threshold: float, title: str | None = None):
    """Pole angle of every axis over one episode (long frame: step, axis, theta)."""
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    sns.lineplot(data=theta, x="step", y="theta", hue="axis", palette="tab10", ax=ax, lw=1)
    for s in (-1, 1):
        ax.axhline(s * threshold, color="grey", ls="--", lw=1)
    ax.set_ylabel("pole angle θ (rad)")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
