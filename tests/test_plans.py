"""A notebook's evaluations listed ahead (pipeline.plans): the shards cover the plan once, a fill measures
into the store what the notebook then reads, and files not ready are skipped."""

from __future__ import annotations

import shutil

import pytest

from paper_code.files import OutputLock
from paper_code.pipeline import plans as P
from paper_code.pipeline.config import load_scale
from paper_code.pipeline.store import EvaluationStore
from paper_code.project import project_root

DATASET = project_root() / "results" / "cartpole" / "datasets" / "nd1_b512.safetensors"


def test_shards_partition_the_atari_plan_and_every_row_has_its_own_seed_or_file(tmp_path):
    plan = P.plan_for("03_atari", load_scale("paper"), tmp_path)
    assert {p.what for p in plan} >= {"PPMO alone", "fit", "fit + fine-tune", "teacher", "authors"}
    keys = [(str(p.path), p.seed, str(p.env_kwargs)) for p in plan]
    assert len(set(keys)) == len(keys)  # no evaluation listed twice
    shards = [plan[k - 1::3] for k in (1, 2, 3)]
    assert sorted(map(id, sum(shards, []))) == sorted(map(id, plan))
    ours = [p for p in plan if p.what != "authors"]
    assert all(p.path.is_relative_to(tmp_path) for p in ours)  # under the scale's output folder
    assert all(p.count == load_scale("paper")["atari"]["learners"] for p in plan)


@pytest.mark.parametrize("text", ["2", "0/2", "3/2", "a/b", "1/0"])
def test_a_bad_shard_is_one_clear_error(text):
    with pytest.raises(ValueError, match="--shard"):
        P.parse_shard(text)


def test_fill_measures_once_then_reads_and_skips_what_is_not_ready(tmp_path):
    ready = tmp_path / "ready.safetensors"
    shutil.copy(DATASET, ready)
    busy = tmp_path / "busy.safetensors"
    shutil.copy(DATASET, busy)
    plan = [P.Planned("PPMO alone", "CartPole", 0, ready, 2, 7),
            P.Planned("PPMO alone", "CartPole", 1, tmp_path / "missing.safetensors", 2, 8),
            P.Planned("PPMO alone", "CartPole", 2, busy, 2, 9)]
    store, said = EvaluationStore(tmp_path / "root"), []
    with OutputLock(busy):  # a live run is writing it
        assert P.fill(store, plan, say=said.append) == {"measured": 1, "stored": 0, "skipped": 2}
        assert any("does not exist yet" in s for s in said) and any("live run" in s for s in said)
        assert P.fill(store, plan, say=said.append) == {"measured": 0, "stored": 1, "skipped": 2}
    rows, name = plan[0].measure(store)  # what the notebook reads: the filled entry
    assert len(rows) == 6 and name in said[-3]


def test_a_notebook_without_a_plan_says_which_have_one(tmp_path):
    with pytest.raises(ValueError, match="03_atari"):
        P.plan_for("01_cartpole_nd", load_scale("quick"), tmp_path)
