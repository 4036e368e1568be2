"""The evaluation store: one evaluation per (file content, protocol), read back instead of redone, and
every committed table that names a stored evaluation agrees with it."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from paper_code.pipeline import store as S
from paper_code.project import project_root

DATASET = project_root() / "results" / "cartpole" / "datasets" / "nd1_b512.safetensors"


def test_a_second_request_of_the_same_key_is_read_not_redone(tmp_path, monkeypatch):
    calls = []

    def compute():
        calls.append(1)
        return [{"learner": 0, "mode": m, "return": r} for m, r in (("sampled", 1.0), ("greedy", 2.0), ("replayed", 0.5))]

    st = S.EvaluationStore(tmp_path / "root")
    rows, name = st.measure(DATASET, "toy", {"learners": 1, "seed": 3}, compute)
    again, name2 = st.measure(DATASET, "toy", {"learners": 1, "seed": 3}, compute)
    assert calls == [1] and name == name2 and again.equals(rows)
    copy = tmp_path / "elsewhere.safetensors"  # the same content under another name: the same evaluation
    shutil.copy(DATASET, copy)
    assert st.measure(copy, "toy", {"learners": 1, "seed": 3}, compute)[1] == name and calls == [1]
    st.measure(DATASET, "toy", {"learners": 1, "seed": 4}, compute)  # another protocol: measured
    assert calls == [1, 1]
    entry = st.read(name)
    assert entry["sha256"] == S.file_sha256(DATASET) and entry["protocol"] == {"learners": 1, "seed": 3}


def test_one_step_actions_are_stored_with_their_protocol(tmp_path):
    st = S.EvaluationStore(tmp_path)
    rows, name = st.one_step_actions(DATASET, learners=2, seed=5)
    assert set(rows["mode"]) == {"greedy", "sampled", "replayed"} and len(rows) == 6
    entry = st.read(name)
    assert entry["protocol"]["learners"] == 2 and entry["protocol"]["seed"] == 5 and entry["kind"] == "one_step_actions"
    assert st.one_step_actions(DATASET, learners=2, seed=5)[0].equals(rows)


def test_a_table_that_disagrees_with_its_stored_evaluation_is_found(tmp_path):
    st = S.EvaluationStore(tmp_path)
    rows = [{"learner": i, "mode": m, "return": float(r)} for i, r in enumerate((10, 20))
            for m in ("sampled", "greedy", "replayed")]
    _, name = st.measure(DATASET, "one_step_actions", {"learners": 2}, lambda: rows)
    good = pd.DataFrame([{"sampled mean": 15.0, "greedy mean": 15.0, "replayed mean": 15.0, "evaluation": name}])
    bad = good.assign(**{"sampled mean": 16.0})
    missing = good.assign(evaluation="evaluations/one_step_actions/none.json")
    for stem, df in (("a", good), ("b", good), ("c", bad), ("d", missing)):
        df.to_csv(tmp_path / f"{stem}.csv", index=False)
    problems = S.disagreements(tmp_path)
    assert len(problems) == 2, problems
    assert any(p.startswith("c.csv row 0: sampled mean 16.0") for p in problems)
    assert any(p.startswith("d.csv") and "does not hold" in p for p in problems)


@pytest.mark.parametrize("root", ["results"])
def test_every_committed_table_agrees_with_the_evaluations_it_names(root):
    assert S.disagreements(project_root() / root) == []


def test_dataset_returns_are_stored_and_read_back_as_the_same_evaluation(tmp_path):
    st = S.EvaluationStore(tmp_path)
    e, name = st.dataset_returns(DATASET, learners=3, episodes=2, seed=11)
    again, name2 = st.dataset_returns(DATASET, learners=3, episodes=2, seed=11, lr=None)
    assert name == name2 and again.returns.tolist() == e.returns.tolist() and again.ci95 == e.ci95
    assert e.returns.shape == (3, 2) and 0.0 <= e.ci95[0] <= e.ci95[1] <= 500.0 and again.cap == 500.0
    from paper_code.core.dataset import DistilledDataset

    own_lr = float(DistilledDataset.load(DATASET).lr)
    assert st.dataset_returns(DATASET, learners=3, episodes=2, seed=11, lr=own_lr)[1] == name  # its own lr: the same key
    greedy, gname = st.dataset_returns(DATASET, learners=3, episodes=2, seed=11, greedy=True)
    untrained, uname = st.dataset_returns(DATASET, learners=3, episodes=2, seed=11, steps=0)
    assert len({name, gname, uname}) == 3 and st.read(uname)["protocol"]["steps"] == 0
    row = {"sampled mean": e.mean, "greedy mean": greedy.mean, "untrained mean": untrained.mean,
           "evaluation": name, "greedy evaluation": gname, "untrained evaluation": uname}
    pd.DataFrame([row]).to_csv(tmp_path / "good.csv", index=False)
    pd.DataFrame([{**row, "untrained mean": untrained.mean + 1}]).to_csv(tmp_path / "bad.csv", index=False)
    problems = S.disagreements(tmp_path)
    assert len(problems) == 1 and problems[0].startswith("bad.csv row 0: untrained mean"), problems
