"""Ad hoc (issue 42): fingerprints of small training runs, compared before/after a refactor.
Usage: python fingerprint.py OUT.json [case ...]"""
import hashlib, json, subprocess, sys, tempfile, os
from pathlib import Path
import torch

def h(*ts):
    m = hashlib.sha256()
    for t in ts:
        m.update(t.detach().contiguous().cpu().numpy().tobytes())
    return m.hexdigest()[:16]

def ds_fp(path):
    from paper_code.core.dataset import DistilledDataset
    ds = DistilledDataset.load(path)
    enc = [ds.encoder[k] for k in sorted(ds.encoder)] if ds.encoder else []
    extra = [ds.extra[k] for k in sorted(ds.extra)]
    return {"data": h(ds.states, ds.labels, ds.lr, *enc, *extra)}

def log_fp(path):
    log = json.loads(Path(str(path) + ".log.json").read_text())
    rows = [{k: v for k, v in r.items() if "wall" not in k} for r in log["history"]]
    evals = [{k: v for k, v in r.items() if "wall" not in k} for r in log.get("evals", [])]
    return hashlib.sha256(json.dumps([rows, evals], sort_keys=True).encode()).hexdigest()[:16]

TINY = dict(size=16, num_envs=4, num_steps=25, update_epochs=2, minibatch_size=50, eval_every=2, eval_learners=3)

def case(name, tmp):
    from paper_code.core.settings import PPMOConfig, CompressConfig, PPOConfig
    from paper_code.runs.training import distill
    out = tmp / f"{name}.safetensors"
    if name == "cartpole_k1":
        distill(PPMOConfig(env_kwargs={"dof": 2}, **TINY), out, 4, progress=False)
    elif name == "cartpole_k3":
        distill(PPMOConfig(env_kwargs={"dof": 2}, inits_per_epoch=3, **TINY), out, 4, progress=False)
    elif name == "compiled":
        distill(PPMOConfig(env_kwargs={"dof": 1}, compile=True, **TINY), out, 4, progress=False)
    elif name == "idp":
        from paper_code.pipeline.experiments import scale_config
        section = {"seed": 0, "size": 8, "eval_every": 2, "eval_learners": 1}
        cfg = scale_config("mujoco-InvertedDoublePendulum-v5", section, num_envs=2, num_steps=20, obs_scale=0.5, state_bound=3.0)
        distill(cfg, out, 3, progress=False)
    elif name == "breakout_l3":
        from paper_code.pipeline.experiments import scale_config
        t = {"seed": 0, "max_episode_steps": 40, "eval_every": 0, "eval_learners": 1, "num_envs": 2, "num_steps": 8,
             "minibatch_size": 8, "update_epochs": 1}
        distill(scale_config("atari-Breakout-l3", t), out, 2, progress=False)
    elif name == "compress":
        try:
            from paper_code.runs.training import compress_file
        except ImportError:
            from paper_code.core.compress import compress_file
        from paper_code.pipeline.config import project_root
        teacher = project_root() / "results" / "cartpole" / "datasets" / "nd2_b512.safetensors"
        compress_file(teacher, out, CompressConfig(size=3, steps=6, inits=2, batch_states=256, pool=512, seed=0), progress=False)
    elif name == "ppo":
        try:
            from paper_code.runs.training import ppo_file
        except ImportError:
            from paper_code.core.ppo import ppo_file
        ppo_file(PPOConfig(num_envs=2, num_steps=32, minibatch_size=32, update_epochs=1), out, 64 * 6, progress=False,
                 eval_every=2, eval_episodes=2)
        from safetensors.torch import load_file
        t = load_file(str(out))
        return {"data": h(*[t[k] for k in sorted(t)]), "log": log_fp(out)}
    elif name in ("two_ranks", "two_ranks_compiled"):
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        subprocess.run(["torchrun", "--nproc-per-node", "2", "-m", "paper_code", "distill", "--env", "paper_code/NDCartPole-v0",
                        "--env-kwargs", '{"dof": 1}', "--size", "16", "--num-envs", "4", "--num-steps", "32",
                        "--minibatch-size", "64", "--update-epochs", "2", "--eval-every", "2", "--eval-learners", "2",
                        "--meta-epochs", "3", "--out", str(out), "--quiet",
                        *(["--compile"] if name.endswith("compiled") else [])], check=True, env=env,
                       stdout=subprocess.DEVNULL)
    return {**ds_fp(out), "log": log_fp(out)}

if __name__ == "__main__":
    out_json = sys.argv[1]
    names = sys.argv[2:] or ["cartpole_k1", "cartpole_k3", "idp", "breakout_l3", "compress", "ppo", "compiled", "two_ranks"]
    res = {}
    with tempfile.TemporaryDirectory() as d:
        for n in names:
            try:
                res[n] = case(n, Path(d))
            except Exception as e:
                res[n] = {"error": repr(e)[:300]}
            print(n, res[n], flush=True)
    Path(out_json).write_text(json.dumps(res, indent=1))
