"""The README's result tables are made from the committed result tables, never typed."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from paper_code.pipeline import headline as H
from paper_code.project import package_root


@pytest.mark.parametrize("name", list(H.TABLES))
def test_each_readme_table_is_the_one_the_result_tables_make(name):
    readme = (package_root() / "README.md").read_text()
    assert H.readme_block(readme, name) == H.TABLES[name](), (
        f"README.md's {name} table differs from results/: run python -m paper_code.pipeline.headline")


def test_a_changed_result_changes_the_table_and_update_rewrites_only_the_block(tmp_path):
    root = tmp_path / "results"
    shutil.copytree(package_root() / "results" / "cartpole", root / "cartpole")
    shutil.copytree(package_root() / "results" / "mujoco" / "report", root / "mujoco" / "report")
    shutil.copytree(package_root() / "results" / "atari" / "report", root / "atari" / "report")
    shutil.copytree(package_root() / "results" / "own_task", root / "own_task")
    if (package_root() / "results" / "evaluations").exists():
        shutil.copytree(package_root() / "results" / "evaluations", root / "evaluations")
    readme = tmp_path / "README.md"
    shutil.copy(package_root() / "README.md", readme)
    assert H.update_readme(readme, root) == []  # already the tables' blocks
    t = root / "mujoco" / "report" / "table.csv"
    df = pd.read_csv(t)
    df.loc[df.task == "Hopper-v5", "one-step mean"] = 1234.5
    df.to_csv(t, index=False)
    before = readme.read_text()
    assert H.update_readme(readme, root) == ["headline"]
    after = readme.read_text()
    assert "1,234.5 [" in H.readme_block(after) and "1,234.5 [" not in H.readme_block(before)
    b, e = H.begin("headline"), H.end("headline")
    assert after.split(b)[0] == before.split(b)[0] and after.split(e)[1] == before.split(e)[1]


def test_a_readme_without_the_markers_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="markers of the headline table"):
        H.readme_block("# a README without the table\n")
