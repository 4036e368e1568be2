"""The one plotting style of every figure, and the figures the notebooks share.

:func:`use_style` (applied when :mod:`paper_code.reporting` is imported, so every notebook has it)
sets a seaborn theme and sizes that read at a paper's column width; :data:`COLOURS` gives each
method one colour in every figure; :func:`label` turns column names into axis text. Each figure
function returns its figure; :func:`paper_code.reporting.save_figure` writes PNG and PDF.
"""

from __future__ import annotations

import math

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

#: one colour per method, the same in every figure
COLOURS = {
    "PPMO": "#1f77b4", "one-step learner": "#1f77b4", "single learner": "#1f77b4",
    "PPO": "#ff7f0e", "learner pool": "#2ca02c", "own average action": "#9467bd",
    "random": "#7f7f7f", "controller": "#d62728",
}

#: column names as they should read on an axis or in a legend
LABELS = {
    "env_steps": "env steps", "meta_epoch": "meta-epoch", "sampled_return": "return (sampled)",
    "greedy_return": "return (greedy)", "train_return": "return of training episodes", "wall_time_s": "wall time (s)",
    "sampled mean": "return (sampled)", "greedy mean": "return (greedy)", "B": "B (synthetic instances)",
    "k": "k (SGD steps on the batch)", "N": "N (cart-pole axes)",
}


def use_style() -> None:
    """The project's figure style: seaborn's whitegrid, paper context, 150 dpi, no top/right spines."""
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.15)
    mpl.rcParams.update({"figure.dpi": 110, "savefig.dpi": 150, "axes.spines.top": False, "axes.spines.right": False,
                         "legend.frameon": False, "axes.titleweight": "bold", "axes.titlesize": "medium"})


def label(name: str) -> str:
    """Axis text for a column name (unchanged if it already reads well)."""
    return LABELS.get(name, name.replace("_", " "))


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
    ax.text(1.0, threshold, f" failure at ±{math.degrees(threshold):.0f}°", transform=ax.get_yaxis_transform(),
            va="center", ha="left", fontsize="small", color="grey")
    ax.set_ylabel("pole angle θ (rad)")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def minimal_dataset(states, labels, dof: int, title: str | None = None):
    """A dataset at a glance: its states (one row per instance, columns grouped per axis) and,
    per instance, the softmax of its label over the 2N actions."""
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


def one_step_vs_constant(dependence: pd.DataFrame):
    """Per task (own linear axis): the one-step learners' return beside the return of each
    learner's own average action replayed as a constant (bars: mean, whiskers: 95% CI over learners).
    ``dependence``: columns task, learner, return, constant return."""
    tasks = list(dict.fromkeys(dependence["task"]))
    ncol = 4
    nrow = math.ceil(len(tasks) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(10, 2.2 * nrow), squeeze=False)
    colours = [COLOURS["one-step learner"], COLOURS["own average action"]]
    for ax, task in zip(axes.flat, tasks):
        sub = dependence[dependence.task == task]
        for i, col in enumerate(("return", "constant return")):
            v = sub[col].to_numpy()
            half = 1.96 * v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else 0.0
            ax.bar(i, v.mean(), yerr=half, color=colours[i], capsize=3, width=0.7)
        ax.set_xticks([0, 1], ["one-step\nlearner", "own average\naction"], fontsize="small")
        ax.set_title(task.removesuffix("-v5"))
        ax.axhline(0, color="black", lw=0.6)
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    axes[0, 0].set_ylabel("episode return")
    fig.suptitle("Does the one-step learner use the state? Its return vs its own average action as a constant "
                 f"(mean, 95% CI over {dependence.groupby('task').size().iloc[0]} learners)", fontsize="medium")
    fig.tight_layout()
    return fig


def held_out_architectures(table: pd.DataFrame):
    """Held-out learner architectures trained one step on the single-learner and the pool datasets
    (one panel per N; bars: mean return, whiskers: 95% CI over learners). ``table``: columns N,
    variant, dataset, sampled mean, sampled ci95 half."""
    ns = sorted(table["N"].unique())
    variants = list(dict.fromkeys(table["variant"]))
    fig, axes = plt.subplots(len(ns), 1, figsize=(8, 2.0 * len(ns) + 0.6), squeeze=False, sharex=True)
    width = 0.38
    for ax, n in zip(axes[:, 0], ns):
        for j, kind in enumerate(("single learner", "learner pool")):
            sub = table[(table.N == n) & (table.dataset == kind)].set_index("variant").loc[variants]
            x = np.arange(len(variants)) + (j - 0.5) * width
            ax.bar(x, sub["sampled mean"], width, yerr=sub["sampled ci95 half"], capsize=2, color=COLOURS[kind],
                   label=f"{kind} dataset")
        ax.set_ylabel(f"N = {n}\nreturn (sampled)")
        ax.set_ylim(0, 520)
    axes[-1, 0].set_xticks(np.arange(len(variants)), variants, rotation=30, ha="right")
    axes[-1, 0].set_xlabel("held-out architecture")
    handles, labels_ = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels_, loc="upper center", ncol=2, bbox_to_anchor=(0.5, 0.975))
    fig.suptitle("Architectures neither dataset was distilled for, one SGD step (mean, 95% CI over learners)",
                 fontsize="medium")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def ppmo_and_ppo(curves: pd.DataFrame, ppo: pd.DataFrame, *, learners: int):
    """Per N: PPMO's one-step learners (mean return of ``learners`` fresh learners per
    evaluation) and plain PPO (mean return of its training episodes per iteration, smoothed over
    10 iterations) against env steps. Different quantities: said in the legend."""
    ns = sorted(curves["N"].unique())
    ncol = 3
    nrow = math.ceil(len(ns) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(10, 2.8 * nrow), squeeze=False)
    for ax, n in zip(axes.flat, ns):
        c, p = curves[curves.N == n], ppo[ppo.N == n]
        ax.plot(p["env_steps"], p["train_return"].rolling(10, min_periods=1).mean(), color=COLOURS["PPO"],
                label="plain PPO: its training episodes (10-iteration mean)")
        ax.plot(c["env_steps"], c["sampled_return"], color=COLOURS["PPMO"], marker=".",
                label=f"PPMO: {learners} fresh one-step learners (sampled)")
        ax.set_title(f"N = {n}")
        ax.set_xlabel("env steps")
        ax.set_ylim(0, 520)
    for ax in list(axes.flat)[len(ns):]:
        ax.axis("off")
    for row in axes:
        row[0].set_ylabel("return")
    handles, labels_ = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels_, loc="lower center", ncol=2, bbox_to_anchor=(0.5, -0.02))
    fig.suptitle("Env steps to a return: distillation vs training the policy directly", fontsize="medium")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def return_by_size(by_size: pd.DataFrame, reference_size: int):
    """One-step return against B per N (mean and 95% CI over learners), and each N's B =
    ``reference_size`` dataset as a marker at the right edge."""
    ns = sorted(by_size["N"].unique())
    palette = dict(zip(ns, sns.color_palette("viridis", len(ns))))
    fig, ax = plt.subplots(figsize=(7, 3.8))
    small = by_size[by_size.B != reference_size]
    right = small["B"].max() + 1.5
    for n in ns:
        s = small[small.N == n].sort_values("B")
        ax.plot(s["B"], s["sampled mean"], marker="o", color=palette[n], label=f"N = {n}")
        ax.fill_between(s["B"], s["ci95 low"], s["ci95 high"], color=palette[n], alpha=0.15, lw=0)
        ref = by_size[(by_size.N == n) & (by_size.B == reference_size)]
        if not ref.empty:
            ax.errorbar(right + 0.12 * (n - (len(ns) + 1) / 2), ref["sampled mean"].iloc[0], yerr=[[ref["sampled mean"].iloc[0] - ref["ci95 low"].iloc[0]],
                        [ref["ci95 high"].iloc[0] - ref["sampled mean"].iloc[0]]], fmt="D", color=palette[n], capsize=2)
    ticks = list(range(1, int(small["B"].max()) + 1))
    ax.set_xticks([*ticks, right], [*map(str, ticks), f"B = {reference_size}"])
    ax.set_xlabel("B (synthetic instances)")
    ax.set_ylabel("one-step return (sampled)")
    ax.set_ylim(0, 520)
    ax.legend(ncol=len(ns), loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize="small")
    ax.set_title("Return against dataset size (bands: 95% CI over learners)", pad=24)
    fig.tight_layout()
    return fig
