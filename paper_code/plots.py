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


def minimal_dataset(states, labels, dof: int, title: str | None = None):
    """A dataset at a glance: its states (one row per instance, columns grouped per axis) and,
    per instance, the softmax of its label over the 2N actions."""
    import numpy as np

    probs = np.exp(labels - labels.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    B = states.shape[0]
    fig, axes = plt.subplots(1, 2, figsize=(3 + 1.1 * dof * 2, 1.2 + 0.35 * B), gridspec_kw={"width_ratios": [2, 1]})
    state_cols = [f"{n}{i}" for i in range(dof) for n in ("x", "ẋ", "θ", "θ̇")]
    action_cols = [f"{i}{s}" for i in range(dof) for s in ("−", "+")]
    vmax = float(np.abs(states).max()) or 1.0
    sns.heatmap(states, ax=axes[0], cmap="coolwarm", center=0, vmin=-vmax, vmax=vmax, annot=B * dof <= 40, fmt=".1f",
                xticklabels=state_cols, yticklabels=[f"#{b}" for b in range(B)], cbar=False)
    sns.heatmap(probs, ax=axes[1], cmap="viridis", vmin=0, vmax=1, annot=B * dof <= 40, fmt=".2f",
                xticklabels=action_cols, yticklabels=False, cbar=False)
    axes[0].set_title("states (per axis: x, ẋ, θ, θ̇)")
    axes[1].set_title("softmax(label) (axis, push)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
