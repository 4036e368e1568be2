"""The README's result tables, made from the committed result tables (which the notebooks make from the
results store), never typed: ``python -m paper_code.pipeline.headline`` rewrites the blocks between the
README's markers (the headline table and the "your own task" table); ``tests/test_headline.py`` fails when a
block and the tables differ.

Every row reads one table of one notebook: cart-pole Table 1 and the authors' sets (01,
``cartpole/table1/ours_vs_authors.csv``), the minimal sets (05, ``cartpole/minimal/return_by_size.csv`` and
``authors.csv``), MuJoCo (02, ``mujoco/report/table.csv``), Atari (03: ``atari/report/methods.csv`` where the
teacher-first rows exist, else ``table.csv``; ``teachers.csv``; ``authors.csv``).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from paper_code.project import package_root

def begin(name: str) -> str:
    """The README's opening marker of the generated table ``name``."""
    return f"<!-- table {name}: made by `python -m paper_code.pipeline.headline` from results/ (do not edit by hand) -->"


def end(name: str) -> str:
    return f"<!-- end of table {name} -->"


#: the MuJoCo tasks the headline shows (all 11 are in docs/results.md)
MUJOCO_TASKS = ("InvertedPendulum-v5", "InvertedDoublePendulum-v5", "Hopper-v5", "HalfCheetah-v5", "Walker2d-v5", "Ant-v5")
#: the Atari games, in the README's order (Breakout is not a paper game)
ATARI_GAMES = ("Pong", "MsPacman", "SpaceInvaders", "Centipede", "Breakout")


def num(v: float, digits: int = 1) -> str:
    """A number as the README prints it: thousands separated, a true minus sign."""
    text = f"{v:,.{digits}f}"
    return text.replace("-", "\u2212")


def ci(mean: float, low: float, high: float) -> str:
    return f"{num(mean)} [{num(low)}, {num(high)}]"


def _cartpole(root: Path) -> list[list[str]]:
    t = pd.read_csv(root / "cartpole" / "table1" / "ours_vs_authors.csv")
    rows = []
    for n, d in t.groupby("N"):
        ours = d[d.dataset == "ours B = 512"].iloc[0]
        theirs = d[d.dataset == "authors' B = 512"]
        a = theirs.iloc[0] if len(theirs) else None
        rows.append([f"{n}-D cart-pole, B = 512", ci(ours["sampled mean"], ours["sampled CI low"], ours["sampled CI high"]),
                     "—" if a is None else ci(a["sampled mean"], a["sampled CI low"], a["sampled CI high"]),
                     "—" if math.isnan(ours["paper (B = 512)"]) else f"{ours['paper (B = 512)']:.0f}", _times(ours["learners x episodes"])])
    return rows


def _minimal(root: Path) -> list[list[str]]:
    by = pd.read_csv(root / "cartpole" / "minimal" / "return_by_size.csv")
    authors = pd.read_csv(root / "cartpole" / "minimal" / "authors.csv")
    small = by[by.B == by.N + 1].sort_values("N")
    ns = " / ".join(str(n) for n in small.N.unique())
    theirs = " / ".join(num(authors[(authors.N == n) & (authors.B == n + 1)]["sampled mean"].iloc[0]) for n in small.N.unique())
    protocol = _times(small["learners x episodes"].iloc[0])
    rows = []
    for label, method in (("compressed from the PPO policy (`compress`; beyond the paper)", "compressed: PPO policy teacher"),
                          ("PPMO alone (the paper's method)", "PPMO alone")):
        d = small[small.method == method]
        means = " / ".join(num(v) for v in d["sampled mean"])
        rows.append([f"N-D cart-pole, B = N + 1, N = {ns}, {label}",
                     f"{means} (every CI lower end ≥ {num(d['ci95 low'].min())})" if method != "PPMO alone" else
                     f"{means} (CI lower ends {num(d['ci95 low'].min())}–{num(d['ci95 low'].max())})",
                     "(the row above)" if rows else theirs, "—", protocol])
    return rows


def _mujoco(root: Path) -> list[list[str]]:
    t = pd.read_csv(root / "mujoco" / "report" / "table.csv").set_index("task")
    rows = []
    for task in MUJOCO_TASKS:
        if task not in t.index:
            continue
        r = t.loc[task]
        theirs = ("— (none published)" if math.isnan(r["authors' (v4) mean"]) else
                  ci(r["authors' (v4) mean"], r["authors' (v4) CI low"], r["authors' (v4) CI high"]) + " (v4)")
        rows.append([f"{task.removesuffix('-v5')}, B = {r.B}; PPO {num(r['PPO return'])}, random {num(r['random'])}",
                     ci(r["one-step mean"], r["one-step CI low"], r["one-step CI high"]), theirs, "—", _times(r["learners x episodes"])])
    return rows


def _atari(root: Path) -> list[list[str]]:
    report = root / "atari" / "report"
    table = pd.read_csv(report / "table.csv")
    methods = pd.read_csv(report / "methods.csv") if (report / "methods.csv").exists() else None
    teachers = pd.read_csv(report / "teachers.csv").set_index("game") if (report / "teachers.csv").exists() else None
    authors = pd.read_csv(report / "authors.csv") if (report / "authors.csv").exists() else pd.DataFrame(columns=["game"])
    rows = []
    for game in ATARI_GAMES:
        ours = table[table.game == game]
        if ours.empty:
            continue
        parts = []
        for _, alone in ours.iterrows():
            cell = (f"l = {alone.l}: PPMO alone {ci(alone['sampled mean'], alone['sampled CI low'], alone['sampled CI high'])} "
                    f"(replayed {num(alone['replayed mean'])})")
            if methods is not None:
                m = methods[(methods.game == game) & (methods.l == alone.l) & (methods.method != "PPMO alone")]
                if len(m):
                    best = m.loc[m["sampled mean"].idxmax()]
                    cell += (f", {best.method} {ci(best['sampled mean'], best['sampled CI low'], best['sampled CI high'])} "
                             f"(replayed {num(best['replayed mean'])})")
            parts.append(cell)
        base = ours.iloc[0]
        tail = (f"; random {num(base['random'])}; best constant {base['best constant action']} {num(base['best constant return'])}"
                " (replayed: the same learners' actions, state-blind)")
        if teachers is not None and game in teachers.index:
            tail += f"; PPO teacher {num(teachers.loc[game, 'sampled mean'])}"
        a = authors[authors.game == game]
        theirs = ("; ".join(f"l = {r.l}: {ci(r['sampled mean'], r['sampled CI low'], r['sampled CI high'])} (replayed "
                            f"{num(r['replayed mean'])})" for _, r in a.iterrows())
                  + f"; best constant {num(a['best constant return'].iloc[0])}, their settings") if len(a) else "—"
        budget = ", ".join(sorted({f"{int(v):,}" for v in ours["meta-epochs"]}))
        rows.append([f"{game}{' (not a paper game)' if game == 'Breakout' else ''}, Nature-CNN, B = {base.B} "
                     f"({budget} meta-epochs)", "; ".join(parts) + tail, theirs, "—", _stored_protocol(root, base)])
    return rows


def _stored_protocol(root: Path, row: pd.Series) -> str:
    """``learners × episodes`` of the stored evaluation a table row names ("—" where it names none)."""
    from paper_code.pipeline.store import EvaluationStore

    name = row.get("evaluation")
    if not isinstance(name, str):
        return _times(row.get("learners x episodes", "—"))
    p = EvaluationStore(root).read(name)["protocol"]
    return f"{p['learners']} × {p['episodes']}"


def _times(text: str) -> str:
    return str(text).replace(" x ", " × ")


def _own_task(root: Path) -> list[list[str]]:
    t = pd.read_csv(root / "own_task" / "table.csv")
    rows = []

    def minus(v: Any) -> str:
        return str(v).replace("-", "\u2212")

    def missed(text: str, met: Any) -> str:  # below 90% of the teacher's margin: the miss, in bold
        return text if bool(met) else f"**{text}**"

    for _, r in t.iterrows():
        rows.append([r.task, minus(r.random), minus(r["teacher (PPO)"]),
                     missed(minus(r["teacher route, B = 8"]), r[">= 0.9"]), minus(f"{r['share of margin']:.2f}"),
                     f"{r['route min']:.1f} min",
                     missed(minus(r["Fourier route"]), r["Fourier >= 0.9"]), minus(f"{r['Fourier share']:.2f}"),
                     f"{r['Fourier route min']:.1f} min",
                     minus(r["PPMO alone"]), minus(f"{r['PPMO alone share']:.2f}")])
    return rows


def _markdown(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def _root(root: str | Path | None) -> Path:
    return Path(root) if root is not None else package_root() / "results"


def headline_table(root: str | Path | None = None) -> str:
    """The headline table (markdown) from the result tables under ``root`` (default: the package's results/)."""
    root = _root(root)
    rows = _cartpole(root) + _minimal(root) + _mujoco(root) + _atari(root)
    return _markdown(["task", "ours (mean [95% CI])", "authors' published set, same protocol", "paper (reported)",
                      "learners × episodes"], rows)


def own_task_table(root: str | Path | None = None) -> str:
    """The "your own task" table (``studies/own_task.py``'s ``results/own_task/table.csv``)."""
    return _markdown(["task", "random", "PPO teacher", "one-step, B = 8 (the route)", "share", "route",
                      "wide student (`--student fourier`, B = 256)", "share", "route",
                      "PPMO alone (`distill --env`, 1,000 meta-epochs)", "share"], _own_task(_root(root)))


#: the README's generated tables: name -> what makes it
TABLES = {"headline": headline_table, "own-task": own_task_table}


def readme_block(readme_text: str, name: str = "headline") -> str:
    """The block between the README's markers of table ``name`` (an error if they are missing)."""
    if begin(name) not in readme_text or end(name) not in readme_text:
        raise ValueError(f"README.md has no markers of the {name} table")
    return readme_text.split(begin(name), 1)[1].split(end(name), 1)[0].strip("\n")


def update_readme(readme: str | Path | None = None, root: str | Path | None = None) -> list[str]:
    """Rewrite the README's generated tables from the result tables; the names of those that changed."""
    readme = Path(readme) if readme is not None else package_root() / "README.md"
    text, changed = readme.read_text(), []
    for name, make in TABLES.items():
        old, new = readme_block(text, name), make(root)
        if old != new:
            text = text.replace(begin(name) + "\n" + old + "\n" + end(name), begin(name) + "\n" + new + "\n" + end(name))
            changed.append(name)
    if changed:
        readme.write_text(text)
    return changed


if __name__ == "__main__":
    changed = update_readme()
    print("README.md: " + (f"rewrote the {', '.join(changed)} table(s) from results/" if changed else
                           "every generated table already matches results/"))
    sys.exit(0)
