"""The command line's help tells the truth: every setting shows the value the resolved run will use,
every flag is described, the commands are listed once, and messages use the command line's words."""

from __future__ import annotations

import argparse
import json
import re

import pytest
import torch

from paper_code.__main__ import build_parser, cli_wording, main
from paper_code.core.settings import CompressConfig
from paper_code.pipeline.presets import meta_epoch_budget


def _subparser(argv: list[str]) -> argparse.ArgumentParser:
    parser = build_parser([*argv, "--help"])
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[argv[0]]


def _bracketed(action: argparse.Action) -> tuple[str, str]:
    m = re.search(r"\[([^\[\]:]+): (.*)\]$", " ".join((action.help or "").split()).replace("%%", "%"))
    assert m, (action.dest, action.help)
    return m.group(1), m.group(2)


def _same(shown: str, value) -> bool:
    if value is None or isinstance(value, (bool, str)):
        return shown == str(value)
    return json.loads(shown) == value


@pytest.mark.parametrize("argv", [["distill"], ["distill", "--env", "Hopper-v5"], ["distill", "--env", "Acrobot-v1"],
                                  ["distill", "--env", "Pendulum-v1"], ["distill", "--preset", "atari-Pong-l4"],
                                  ["distill", "--dof", "3"], ["ppo", "--env", "Acrobot-v1"], ["ppo", "--env", "Hopper-v5"],
                                  ["ppo", "--preset", "atari-Pong"], ["distill", "--env", "LunarLander-v3"],
                                  ["ppo", "--env", "BipedalWalker-v3"]])
def test_every_settings_flag_shows_the_value_the_resolved_run_uses(argv, capsys):
    assert main([*argv, "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    parser = _subparser(argv)
    settings = [a for g in parser._action_groups if g.title and g.title.startswith("settings") for a in g._group_actions]
    assert len(settings) >= 20
    for action in settings:
        label, shown = _bracketed(action)
        assert label.startswith("preset ") and _same(shown, printed[action.dest]), (action.dest, shown, printed[action.dest])
    if argv[0] == "distill":  # the budget is the preset's too
        meta = next(a for a in parser._actions if a.dest == "meta_epochs")
        label, shown = _bracketed(meta)
        assert label.startswith("preset ") and int(shown) == printed["meta_epochs"] == meta_epoch_budget(label[7:])


def test_compress_flags_show_the_defaults_a_run_uses():
    parser = _subparser(["compress"])
    cfg = CompressConfig()
    for action in (a for g in parser._action_groups if g.title and g.title.startswith("settings") for a in g._group_actions):
        label, shown = _bracketed(action)
        value = getattr(cfg, action.dest)
        assert label == "default" and _same(shown, list(value) if isinstance(value, tuple) else value), action.dest


def test_ppo_help_without_a_task_says_where_its_values_come_from():
    help_text = " ".join(_subparser(["ppo"]).format_help().split())
    assert "give --env or --preset with --help to see its values" in help_text


def test_every_flag_of_every_command_is_described_and_the_commands_are_listed_once():
    parser = build_parser()
    top = parser.format_help()
    assert "``" not in top and ":class:" not in top
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, cmd in sub.choices.items():
        assert len(re.findall(rf"^    {re.escape(name)}(\s|$)", top, re.M)) == 1, name
        for action in cmd._actions:
            assert action.help and action.help.strip(), (name, action.dest)
    evaluate = " ".join(sub.choices["evaluate"].format_help().split())
    assert "(default: 50)" in evaluate and "(default: 5)" in evaluate


def test_messages_name_python_arguments_in_the_library_and_flags_on_the_command_line():
    library = "x.ckpt.pt holds an unfinished run: continue it with resume=True or start over with force=True"
    assert cli_wording(library) == "x.ckpt.pt holds an unfinished run: continue it with --resume or start over with --force"
    assert cli_wording("try a smaller `adam_lr`") == "try a smaller --adam-lr"
    assert cli_wording("read with torch.load(weights_only=True)") == "read with torch.load(weights_only=True)"


def _evaluated(capsys, path, *flags: str) -> str:
    assert main(["evaluate", str(path), "--learners", "20", "--episodes", "2", *flags]) == 0
    return capsys.readouterr().out


def test_evaluate_judges_a_set_against_random_and_untrained_learners(tmp_path, capsys):
    from dataclasses import replace

    from paper_code.core.dataset import DistilledDataset
    from paper_code.pipeline.layout import dataset_path
    from paper_code.project import package_root

    good = dataset_path(package_root() / "results", "cartpole-nd1", 512)
    out = _evaluated(capsys, good)
    verdict = out.strip().splitlines()[-1]
    assert verdict.startswith("verdict: the one-step learners") and "above the random policy" in verdict
    assert "above the untrained learners" in verdict and "NO BETTER" not in verdict
    # the same states and labels at a learning rate that leaves the learners where they started
    inert = tmp_path / "inert.safetensors"
    replace(DistilledDataset.load(good), lr=torch.tensor(1e-9)).save(inert)
    out = _evaluated(capsys, inert)
    verdict = out.strip().splitlines()[-1]
    assert verdict.startswith("verdict: NO BETTER THAN RANDOM: the one-step learners"), verdict
    assert "not distinguishable from the untrained learners" in verdict
    # JSON carries the references and the verdict; --no-baselines leaves them out
    d = json.loads(_evaluated(capsys, inert, "--json"))
    assert d["verdict"]["random"] != "above" and d["references"]["random"]["n"] == 40
    assert d["verdict_line"].startswith("verdict: NO BETTER THAN RANDOM")
    assert "verdict" not in _evaluated(capsys, inert, "--no-baselines")
    # a compress set is judged against its teacher too (here a committed B = 512 dataset)
    fitted = package_root() / "results" / "cartpole" / "datasets" / "compressed" / "b512" / "nd1_b2.safetensors"
    out = _evaluated(capsys, fitted)
    assert "the teacher results/cartpole/datasets/nd1_b512.safetensors:" in out and "of the teacher's margin" in out


#: per command of the README's "own task" block: flags appended to shrink it (argparse: the last one wins)
_TINY = {"ppo": ["--total-env-steps", "1024", "--eval-episodes", "2", "--quiet"],
         "compress": ["--steps", "5", "--eval-learners", "2", "--quiet"],
         "evaluate": ["--learners", "2", "--episodes", "1"]}


def test_the_readmes_own_task_commands_run_end_to_end(tmp_path, monkeypatch, capsys):
    import shlex

    from paper_code.project import package_root

    readme = (package_root() / "README.md").read_text()
    block = readme.split("## Your own task in three commands", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [shlex.split(line.split("#", 1)[0]) for line in block.splitlines() if line.startswith("python -m paper_code")]
    assert [c[3] for c in commands] == ["ppo", "compress", "evaluate"]
    monkeypatch.chdir(tmp_path)
    for cmd in commands:
        assert main([*cmd[3:], *_TINY[cmd[3]]]) == 0, cmd
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("verdict: ") and "the teacher" in out[-1], out[-4:]
    # the README's wide-student command, on the teacher the block made (and a narrow student: only the size shrinks)
    wide = [shlex.split(line) for line in readme.splitlines()
            if line.startswith("python -m paper_code compress") and "--student fourier" in line]
    assert len(wide) == 1
    teacher = wide[0][4]  # made here by step 1 on Pendulum-v1 (its --env), at the same tiny size
    assert main(["ppo", "--env", "Pendulum-v1", "--out", teacher, *_TINY["ppo"]]) == 0
    assert main([*wide[0][3:], *_TINY["compress"], "--student-width", "64", "--pool", "512", "--dagger-states", "64"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("verdict: ") and "the teacher" in out[-1], out[-4:]
    from paper_code.core.dataset import DistilledDataset

    learner = DistilledDataset.load(tmp_path / wide[0][wide[0].index("--out") + 1]).learner
    assert (learner.init, learner.activation, learner.policy) == ("fourier", "cos", "gaussian")


def test_distill_stops_at_a_target_on_the_evaluations_ci(tmp_path, capsys):
    from paper_code.core.dataset import DistilledDataset

    tiny = ["--preset", "cartpole-nd1", "--size", "16", "--num-envs", "4", "--num-steps", "32", "--eval-learners", "4",
            "--meta-epochs", "12", "--eval-every", "2", "--quiet"]
    out = tmp_path / "s.safetensors"
    assert main(["distill", *tiny, "--out", str(out), "--stop-at", "0", "--stop-patience", "2"]) == 0
    ds = DistilledDataset.load(out)  # every return is >= 0 on cart-pole: two evaluations, then stopped
    assert ds.provenance["meta_epochs"] == 4
    never = tmp_path / "n.safetensors"
    assert main(["distill", *tiny, "--out", str(never), "--stop-at", "1e9"]) == 0
    assert DistilledDataset.load(never).provenance["meta_epochs"] == 12
    capsys.readouterr()
    assert main(["distill", *tiny, "--eval-every", "0", "--out", str(tmp_path / "x.safetensors"), "--stop-at", "1"]) == 2
    assert capsys.readouterr().err.strip() == "error: --stop-at reads the evaluations during training: give --eval-every > 0"
