"""The one plotting style of every figure, and the figures the notebooks share.

:func:`use_style` (applied when :mod:`paper_code.pipeline.reporting` is imported, so every notebook has it)
sets a seaborn theme and sizes that read at a paper's column width; :data:`COLOURS` gives each
method one colour in every figure; :func:`label` turns column names into axis text. Each figure
function returns its figure; :func:`paper_code.pipeline.reporting.save_figure` writes PNG and PDF.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from paper_code.core.evaluation import mean_ci95

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
    """The project's figure style (seaborn's whitegrid, paper context, 150 dpi, no top/right spines)
    and how notebooks show tables (floats with two decimals)."""
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.15)
    mpl.rcParams.update({"figure.dpi": 110, "savefig.dpi": 150, "axes.spines.top": False, "axes.spines.right": False,
                         "legend.frameon": False, "axes.titleweight": "bold", "axes.titlesize": "medium"})
    # tables shown in notebooks: thousands separators and two decimals, not raw floats
    pd.set_option("display.float_format", "{:,.2f}".format)


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
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), title="axis")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def minimal_dataset(states, labels, dof: int, title: str | None = None):
    """A dataset at a glance: its states (one row per instance, columns grouped per axis, in the
    environment's units, with a colour bar) and, per instance, the softmax of its label over the 2N
    actions; ``title`` should say which method made it."""
    probs = np.exp(labels - labels.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    B = states.shape[0]
    fig, axes = plt.subplots(1, 2, figsize=(max(7.0, 3 + 1.1 * dof * 2), 1.4 + 0.35 * B), gridspec_kw={"width_ratios": [2, 1]})
    state_cols = [f"{n}{i}" for i in range(dof) for n in ("x", "ẋ", "θ", "θ̇")]
    action_cols = [f"{i}{s}" for i in range(dof) for s in ("−", "+")]
    vmax = float(np.abs(states).max()) or 1.0
    sns.heatmap(states, ax=axes[0], cmap="coolwarm", center=0, vmin=-vmax, vmax=vmax, annot=B * dof <= 40, fmt=".1f",
                xticklabels=state_cols, yticklabels=[f"#{b}" for b in range(B)],
                cbar_kws={"label": "value", "shrink": 0.9})
    sns.heatmap(100 * probs, ax=axes[1], cmap="viridis", vmin=0, vmax=100, annot=B * dof <= 40, fmt=".0f",
                xticklabels=action_cols, yticklabels=False, cbar_kws={"shrink": 0.9, "label": "%"})
    axes[0].set_title("synthetic states, a row per instance\n(per axis: x m, ẋ m/s, θ rad, θ̇ rad/s)", fontsize="small")
    axes[1].set_title("softmax(label) in %, 2N actions\n(axis, push − / +)", fontsize="small")
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
            mean, lo, hi = mean_ci95(sub[col].to_numpy(copy=True))
            ax.bar(i, mean, yerr=[[mean - lo], [hi - mean]], color=colours[i], capsize=3, width=0.7)
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
    variant, dataset, sampled mean, sampled CI low, sampled CI high."""
    ns = sorted(table["N"].unique())
    variants = list(dict.fromkeys(table["variant"]))
    fig, axes = plt.subplots(len(ns), 1, figsize=(8, 2.0 * len(ns) + 0.6), squeeze=False, sharex=True)
    width = 0.38
    for ax, n in zip(axes[:, 0], ns):
        for j, kind in enumerate(("single learner", "learner pool")):
            sub = table[(table.N == n) & (table.dataset == kind)].set_index("variant").loc[variants]
            x = np.arange(len(variants)) + (j - 0.5) * width
            yerr = [sub["sampled mean"] - sub["sampled CI low"], sub["sampled CI high"] - sub["sampled mean"]]
            ax.bar(x, sub["sampled mean"], width, yerr=yerr, capsize=2, color=COLOURS[kind],
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


def ppmo_and_ppo(curves: pd.DataFrame, ppo: pd.DataFrame, *, learners: int, episodes: int, cap: float = 500.0,
                 by: str = "N", bounds: dict[Any, tuple[float, float]] | None = None,
                 references: dict[Any, dict[str, float]] | None = None, ncol: int = 3):
    """Per panel (a value of column ``by``: N, a task), on one env-step axis, two evaluations: PPMO's
    ``learners`` fresh one-step learners x 1 episode (``curves``: env_steps, sampled_return, sampled_ci_low/high
    where recorded) and plain PPO's policy on ``episodes`` fresh episodes (``ppo``: env_steps, sampled_return,
    sampled_std); bands: 95% CIs, clipped to the panel's ``bounds`` (default 0 .. ``cap`` for every panel, the
    cart-pole's range; ``None`` entries: unbounded). ``references``: per panel, label -> return, drawn as grey
    lines (random dashed, the others dotted)."""
    keys = sorted(curves[by].unique()) if by == "N" else list(dict.fromkeys([*curves[by], *ppo[by]]))
    nrow = math.ceil(len(keys) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(10 if ncol == 3 else 3.4 * ncol, 2.8 * nrow), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        c, p = curves[curves[by] == key], ppo[ppo[by] == key]
        lo, hi = (bounds or {}).get(key, (0.0, cap) if bounds is None else (None, None))
        half = 1.96 * p["sampled_std"] / math.sqrt(episodes)
        ax.plot(p["env_steps"], p["sampled_return"], color=COLOURS["PPO"], marker=".",
                label=f"plain PPO: its policy, {episodes} fresh episodes (sampled)")
        ax.fill_between(p["env_steps"], (p["sampled_return"] - half).clip(lo, hi), (p["sampled_return"] + half).clip(lo, hi),
                        color=COLOURS["PPO"], alpha=0.2, lw=0)
        ax.plot(c["env_steps"], c["sampled_return"], color=COLOURS["PPMO"], marker=".",
                label=f"PPMO: {learners} fresh one-step learners x 1 episode (sampled)")
        if {"sampled_ci_low", "sampled_ci_high"} <= set(c.columns) and c["sampled_ci_low"].notna().any():
            ax.fill_between(c["env_steps"], c["sampled_ci_low"].clip(lo, hi), c["sampled_ci_high"].clip(lo, hi),
                            color=COLOURS["PPMO"], alpha=0.2, lw=0)
        for label, value in (references or {}).get(key, {}).items():
            ax.axhline(value, color="grey", ls="--" if label == "random" else ":", lw=1)
        ax.set_title(f"{by} = {key}" if by == "N" else str(key), fontsize="medium" if by == "N" else "small")
        ax.set_xlabel("env steps")
        if bounds is None:
            ax.set_ylim(0, cap * 1.04)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    for row in axes:
        row[0].set_ylabel("return")
    handles, labels_ = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels_, loc="lower center", ncol=2, bbox_to_anchor=(0.5, -0.02))
    refs = sorted({label for r in (references or {}).values() for label in r})
    note = f"; grey: {', '.join(refs)} (random dashed)" if refs else ""
    fig.suptitle("Env steps to a return, evaluations of both (bands: 95% CI where recorded): distillation vs training "
                 f"directly{note}", fontsize="medium")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def greedy_action_shares(hist: pd.DataFrame, title: str):
    """Per (game, l): the share of greedy steps on each action (``hist``: columns game, l, action,
    share), one horizontal bar chart each."""
    pairs = list(dict.fromkeys(zip(hist["game"], hist["l"])))
    ncol = min(5, len(pairs))
    nrow = -(-len(pairs) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.6 * ncol, 0.9 + 2.4 * nrow), squeeze=False)
    for ax, (game, l) in zip(axes.flat, pairs):
        h = hist[(hist.game == game) & (hist.l == l)]
        ax.barh(h["action"], 100 * h["share"], color=COLOURS["PPMO"])
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.tick_params(axis="y", labelsize="x-small")
        ax.set_title(f"{game}, l = {l}", fontsize="small")
        ax.set_xlabel("% of greedy steps")
    for ax in list(axes.flat)[len(pairs):]:
        ax.axis("off")
    fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    return fig


def _game_panel(ax: Any, baselines: pd.DataFrame, game: str, xlabel: str, *, legend_loc: str,
                labels: bool = False) -> None:
    """A game's panel: its random policy (grey --) and best constant action (grey ..) from
    ``baselines``, its title, x label and legend."""
    base = baselines[baselines.game == game]
    if not base.empty:
        ax.axhline(base[base.policy == "random"]["return"].mean(), color="grey", ls="--", lw=1,
                   label="random" if labels else None)
        ax.axhline(base[base.policy != "random"].groupby("policy")["return"].mean().max(), color="grey", ls=":",
                   lw=1.2 if labels else 1, label="best constant" if labels else None)
    ax.set_title(game, fontsize="small")
    ax.set_xlabel(xlabel)
    ax.legend(fontsize="x-small", loc=legend_loc)


def _finish_grid(axes: Any, used: int, ylabel: str) -> None:
    """Unused panels off; the y label on each row's first panel."""
    for ax in list(axes.flat)[used:]:
        ax.axis("off")
    for row in axes:
        row[0].set_ylabel(ylabel)


def atari_learning_curves(curves: pd.DataFrame, baselines: pd.DataFrame, *, learners: int):
    """One panel per game: the sampled (solid) and greedy (dashed) one-step return of the
    evaluations during distillation against env steps, one colour per split l; grey lines: the
    random policy (dashed) and the best constant action (dotted) from ``baselines`` (columns game,
    policy, return, as :func:`paper_code.pipeline.reference_policies.atari_reference_returns`)."""
    games = list(dict.fromkeys(curves["game"]))
    splits = sorted(curves["l"].unique())
    palette = dict(zip(splits, sns.color_palette("viridis", len(splits))))
    ncol = min(3, len(games))
    nrow = -(-len(games) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 0.8 + 2.7 * nrow), squeeze=False)
    for ax, game in zip(axes.flat, games):
        c = curves[curves.game == game]
        for l in sorted(c["l"].unique()):
            r = c[c.l == l].sort_values("env_steps")
            ax.plot(r["env_steps"], r["sampled_return"], color=palette[l], lw=1.2, label=f"l = {l}")
            ax.plot(r["env_steps"], r["greedy_return"], color=palette[l], lw=0.9, ls="--")
        _game_panel(ax, baselines, game, "env steps (agent steps)", legend_loc="upper left")
    _finish_grid(axes, len(games), f"return ({learners} learners x 1)")
    fig.suptitle("One-step learners during distillation (solid: sampled, dashed: greedy; grey: random --, "
                 "best constant action ..)", fontsize="medium")
    fig.tight_layout()
    return fig


def atari_teachers(curves: pd.DataFrame, baselines: pd.DataFrame, *, episodes: int):
    """One panel per game: the PPO teacher's evaluations during training (sampled: solid, greedy:
    dashed; ``episodes`` fresh episodes each) against frames (4 per agent step), beside the random
    policy (grey --) and the best constant action (grey ..) of ``baselines``."""
    games = list(dict.fromkeys(curves["game"]))
    ncol = min(4, len(games))
    nrow = -(-len(games) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.4 * ncol, 0.9 + 2.6 * nrow), squeeze=False)
    for ax, game in zip(axes.flat, games):
        c = curves[curves.game == game].sort_values("env_steps")
        frames = 4 * c["env_steps"] / 1e6
        ax.plot(frames, c["sampled_return"], color="C0", lw=1.3, marker=".", label="sampled")
        ax.plot(frames, c["greedy_return"], color="C0", lw=1.0, ls="--", label="greedy")
        _game_panel(ax, baselines, game, "frames (millions)", legend_loc="best", labels=True)
    _finish_grid(axes, len(games), f"return (mean of {episodes} episodes)")
    fig.suptitle("PPO teachers: evaluations of the policy during training", fontsize="medium")
    fig.tight_layout()
    return fig


def atari_splits(table: pd.DataFrame, game: str, *, authors: pd.DataFrame | None = None):
    """The split study: one-step return (sampled: mean and 95% CI over learners; greedy: open markers)
    against the split l for ``game``. Left: our datasets under our settings with our settings' random
    policy (grey --) and best constant action (grey ..), from ``table``'s columns; right, when ``authors``
    has the game: their published datasets under *their* settings with *their* settings' baselines (the
    same columns of ``authors``). Each panel is judged against its own baselines only."""
    a = None if authors is None or authors.empty else authors[authors.game == game].sort_values("l")
    panels = [("ours, our settings (v5, sticky actions)", table[table.game == game].sort_values("l"), COLOURS["PPMO"], "o")]
    if a is not None and not a.empty:
        panels.append(("the authors' published sets, their settings", a, COLOURS["PPO"], "s"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels), 3.6), squeeze=False)
    for ax, (title, d, colour, marker) in zip(axes[0], panels):
        err = [d["sampled mean"] - d["sampled CI low"], d["sampled CI high"] - d["sampled mean"]]
        ax.errorbar(d["l"], d["sampled mean"], yerr=err, fmt=f"{marker}-", color=colour, capsize=3, label="sampled")
        ax.plot(d["l"], d["greedy mean"], marker, mfc="white", color=colour, label="greedy")
        ax.axhline(d["random"].iloc[0], color="grey", ls="--", lw=1, label="random")
        ax.axhline(d["best constant return"].iloc[0], color="grey", ls=":", lw=1.2,
                   label=f"best constant ({d['best constant action'].iloc[0]})")
        ax.set_xticks(range(5))
        ax.set_xlabel("l (Nature-CNN layers in the persistent encoder)")
        ax.set_title(title, fontsize="small")
        ax.legend(fontsize="x-small", loc="best")
    axes[0, 0].set_ylabel("one-step return")
    fig.suptitle(f"{game}: one-step return against the encoder / learner split", fontsize="medium")
    fig.tight_layout()
    return fig


def kshot(table: pd.DataFrame):
    """Return after k SGD steps on the same batch per N (``table``: columns N, k, lr mode, sampled
    mean, ci95 low/high): one panel per lr mode, bands the 95% CI over learners."""
    ns = sorted(table["N"].unique())
    modes = list(dict.fromkeys(table["lr mode"]))
    palette = dict(zip(ns, sns.color_palette("viridis", len(ns))))
    fig, axes = plt.subplots(1, len(modes), figsize=(4.2 * len(modes), 3.4), sharey=True, squeeze=False)
    for ax, mode in zip(axes[0], modes):
        for n in ns:
            t = table[(table.N == n) & (table["lr mode"] == mode)].sort_values("k")
            ax.plot(t["k"], t["sampled mean"], marker="o", ms=3, color=palette[n], label=f"N = {n}")
            ax.fill_between(t["k"], t["ci95 low"], t["ci95 high"], color=palette[n], alpha=0.15, lw=0)
        ax.set_title(f"step size: {mode}", fontsize="medium")
        ax.set_xlabel("k (SGD steps on the same batch)")
        ax.set_xticks(sorted(table["k"].unique()))
    axes[0, 0].set_ylabel("return (sampled)")
    axes[0, 0].set_ylim(0, 520)
    axes[0, -1].legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
    fig.suptitle("k-shot learning on the B = 512 datasets (bands: 95% CI over learners)", fontsize="medium")
    fig.tight_layout()
    return fig


def return_by_size(by_size: pd.DataFrame, reference_size: int, *, authors: pd.DataFrame | None = None,
                   bar: float | None = None):
    """One-step return against B per N (mean and 95% CI over learners), and each N's B =
    ``reference_size`` dataset as a marker at the right edge; ``authors`` (columns N, B, sampled
    mean, ci95 low/high): the authors' published datasets as hollow markers at their B; ``bar``: a
    dotted line (the return a minimal dataset must clear with its CI's lower end). With a
    ``method`` column, one panel per method (in order of appearance), the same references in each."""
    methods = list(dict.fromkeys(by_size["method"])) if "method" in by_size else [None]
    ns = sorted(by_size["N"].unique())
    palette = dict(zip(ns, sns.color_palette("viridis", len(ns))))
    fig, axes = plt.subplots(1, len(methods), figsize=(7 if len(methods) == 1 else 4.6 * len(methods), 3.8),
                             sharey=True, squeeze=False)
    ref_all = by_size[by_size.B == reference_size]
    for ax, method in zip(axes[0], methods):
        rows = by_size if method is None else by_size[by_size.method == method]
        small = rows[rows.B != reference_size]
        right = small["B"].max() + 1.5
        if bar is not None:
            ax.axhline(bar, color="grey", ls=":", lw=1, label=f"bar {bar:g}")
        if authors is not None and not authors.empty:
            for n in ns:
                a = authors[authors.N == n]
                x = [right + 0.12 * (n - (len(ns) + 1) / 2) + 0.06 if b == reference_size else b + 0.12 for b in a["B"]]
                ax.errorbar(x, a["sampled mean"], yerr=[a["sampled mean"] - a["ci95 low"], a["ci95 high"] - a["sampled mean"]],
                            fmt="s", mfc="white", color=palette[n], capsize=2, lw=1,
                            label="authors' published" if n == ns[0] else None)
        for n in ns:
            s = small[small.N == n].sort_values("B")
            ax.plot(s["B"], s["sampled mean"], marker="o", ms=4, color=palette[n], label=f"N = {n}")
            ax.fill_between(s["B"], s["ci95 low"], s["ci95 high"], color=palette[n], alpha=0.15, lw=0)
            ref = ref_all[ref_all.N == n]
            if not ref.empty:
                ax.errorbar(right + 0.12 * (n - (len(ns) + 1) / 2), ref["sampled mean"].iloc[0], yerr=[[ref["sampled mean"].iloc[0] - ref["ci95 low"].iloc[0]],
                            [ref["ci95 high"].iloc[0] - ref["sampled mean"].iloc[0]]], fmt="D", color=palette[n], capsize=2)
        ticks = list(range(1, int(small["B"].max()) + 1))
        ax.set_xticks([*ticks, right], [*map(str, ticks), f"B = {reference_size}"])
        ax.set_xlabel("B (synthetic instances)")
        ax.set_ylim(0, 520)
        if method is not None:
            ax.set_title(method, fontsize="medium")
    axes[0][0].set_ylabel("one-step return (sampled)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    rows_ = 1 if len(methods) > 1 or (len(ns) <= 5 and authors is None and bar is None) else 2
    fig.legend(handles, labels, ncol=-(-(len(ns) + 2) // rows_), loc="upper center", bbox_to_anchor=(0.5, 1.0),
               fontsize="small", frameon=False)
    fig.suptitle("Return against dataset size (bands and bars: 95% CI over learners)", y=1.0 + 0.05 * rows_,
                 fontsize="medium")
    fig.tight_layout(rect=(0, 0, 1, 0.93 if rows_ == 1 else 0.87))
    return fig


#: readable names of studies/mujoco_variants.py's variants (notebook 02's variants figure)
VARIANT_LABELS = {
    "notebook 02": "notebook 02's run (its current setting)", "ent0": "no entropy bonus", "k5e2": "no bonus, K = 5 inits x 2 envs",
    "ent0.01": "bonus 0.01, stopped at 9300", "ent0.01-full": "bonus 0.01",
    "ent0.01-k5e2": "bonus, K = 5 x 2 envs", "ent0.01-k2e10": "bonus, K = 2 x 10 envs",
    "ent0.01-k4e10": "bonus, K = 4 x 10 envs", "ent0.01-trunc200": "bonus, training episodes cut at 200",
    "ent0.01-k2-trunc200": "bonus, K = 2, cut at 200", "ent0.01-k4-trunc200": "bonus, K = 4, cut at 200",
    "ent0.01-k2-trunc100": "bonus, K = 2, cut at 100", "ent0.01-k2e20-trunc200": "bonus, K = 2 x 20 envs, cut at 200",
}
#: the variants' themes, one panel each
VARIANT_GROUPS = {
    "entropy bonus": ["ent0", "ent0.01-full", "ent0.01"],
    "K learner inits per meta-epoch": ["k5e2", "ent0.01-k5e2", "ent0.01-k2e10", "ent0.01-k4e10"],
    "training episodes cut short": ["ent0.01-trunc200", "ent0.01-k2-trunc200", "ent0.01-k4-trunc200",
                                    "ent0.01-k2-trunc100", "ent0.01-k2e20-trunc200"],
}


def variant_curves(curves: dict[str, pd.DataFrame], *, smooth: int = 4):
    """Settings tried besides notebook 02's (studies/mujoco_variants.py): per task and theme, the
    evaluations (fresh learners x 1 episode, sampled; rolling mean of ``smooth`` evaluations)
    against env steps (variants differ in env steps per meta-epoch), notebook 02's run in black in every
    panel. ``curves``: task -> the study's CSV (columns variant, env_steps, sampled_return)."""
    panels = []
    for task, df in curves.items():
        present = set(df["variant"])
        for theme, names in VARIANT_GROUPS.items():
            names = [n for n in names if n in present]
            if names:
                panels.append((task, theme, names))
    ncol = 2
    nrow = math.ceil(len(panels) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(11, 4.3 * nrow), squeeze=False, sharey=False)
    for ax, (task, theme, names) in zip(axes.flat, panels):
        df = curves[task]
        palette = dict(zip(names, sns.color_palette("tab10", len(names))))
        for name in ["notebook 02", *names]:
            s = df[df.variant == name].sort_values("env_steps")
            if s.empty:
                continue
            ax.plot(s["env_steps"], s["sampled_return"].rolling(smooth, min_periods=1).mean(),
                    color="black" if name == "notebook 02" else palette[name], lw=2 if name == "notebook 02" else 1.2,
                    label=VARIANT_LABELS.get(name, name))
        ax.set_title(f"{task.removesuffix('-v5')}: {theme}")
        ax.set_xlabel("env steps")
        ax.set_ylabel("return (sampled)")
        ax.legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"Settings tried besides notebook 02's: evaluations of fresh one-step learners, each curve a rolling "
                 f"mean over {smooth} consecutive evaluations", fontsize="medium")
    fig.tight_layout()
    return fig


def atari_frames(sets: list[tuple[str, Any]], names: list[str], title: str):
    """One game's datasets in one figure, a row each (``sets``: (row label, dataset)): every instance's
    newest frame (pixels mapped back to [0 black, 1 white], one grey scale for all), titled with its
    label's top action and that action's softmax probability."""
    width = max(ds.size for _, ds in sets)
    fig, axes = plt.subplots(len(sets), width, figsize=(1.05 * width + 1.7, 1.08 * len(sets) + 0.8), squeeze=False)
    im = None
    for r, (label, ds) in enumerate(sets):
        frames = ds.denormalize(ds.states).clamp(0, 1)
        probs = ds.labels.softmax(-1)
        for b in range(width):
            ax = axes[r, b]
            ax.set_xticks([])
            ax.set_yticks([])
            if b >= ds.size:
                ax.axis("off")
                continue
            im = ax.imshow(frames[b, -1].numpy(), cmap="gray", vmin=0, vmax=1)
            k = int(probs[b].argmax())
            ax.set_title(f"{names[k]} {float(probs[b, k]):.2f}", fontsize=5, pad=2)
        axes[r, 0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    fig.subplots_adjust(left=0.16, right=0.9, top=1 - 0.5 / fig.get_figheight(), bottom=0.02, wspace=0.12, hspace=0.3)
    cax = fig.add_axes((0.92, 0.1, 0.012, 0.75))
    fig.colorbar(im, cax=cax).set_label("pixel (newest of 4 frames)", fontsize="x-small")
    fig.suptitle(title, fontsize="small")
    return fig
