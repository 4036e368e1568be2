#!/bin/bash
# The GPU checks of issues 22/23, as run on a lent NVIDIA H200 (results/benchmarks/gpu/, summary in
# results/benchmarks/gpu.md). Run from the project root on a machine with CUDA and a python3 that has
# torch; packages the machine lacks can be installed first from wheels in .whl/ (gymnasium, ale-py,
# mujoco and their small dependencies for that python), e.g.
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 ... -d .whl gymnasium==1.4.0 ...
# Writes everything to ${R:-results/benchmarks/gpu}.
R=${R:-results/benchmarks/gpu}; mkdir -p "$R"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nproc; lscpu | grep "Model name";
  python3 -c "import torch, gymnasium, ale_py, mujoco, numpy; print('torch', torch.__version__, torch.version.cuda, torch.cuda.is_available(), 'gymnasium', gymnasium.__version__, 'ale_py', ale_py.__version__, 'mujoco', mujoco.__version__, 'numpy', numpy.__version__)"; } 2>&1 | tee "$R/machine.txt"
# the CUDA tests (skipped on machines without CUDA)
timeout 240 python3 -m pytest -q -p no:cacheprovider -o addopts="" -rA tests/test_cuda.py 2>&1 | tee "$R/test_cuda.log" | tail -6
# meta-epochs/s: cart-pole B = 512 (K = 1 and 4) on the GPU and on this machine's CPU; Atari l = 4, 3
timeout 200 python3 benchmarks/bench_ppmo.py --device cuda --meta-epochs 20 --inits 1 4 --out "$R/ppmo_cuda" | tail -3
timeout 60 python3 benchmarks/bench_ppmo.py --meta-epochs 30 --out "$R/ppmo_cpu_gpuhost" | tail -2
timeout 200 python3 benchmarks/bench_atari.py --device cuda --splits 4 3 --meta-epochs 5 --out "$R/atari_cuda_breakout" | tail -3
timeout 120 python3 benchmarks/bench_atari.py --device cuda --game Centipede --splits 4 3 --meta-epochs 5 --out "$R/atari_cuda_centipede" | tail -3
# NCCL: torchrun with one rank on the GPU (one GPU: two NCCL ranks cannot share it)
timeout 90 torchrun --nproc-per-node 1 -m paper_code distill --preset cartpole-nd1 --device cuda --meta-epochs 20 \
    --eval-every 10 --out /tmp/nccl/nd1.safetensors --quiet 2>&1 | tail -5 | tee "$R/nccl.log"; ls -la /tmp/nccl >> "$R/nccl.log"
# gloo, 1 vs 2 CPU processes on this (many-core) host
timeout 150 python3 benchmarks/bench_distributed.py --out "$R/distributed_gpuhost" | tail -3
# issue 39: the Atari PPO teacher and one PPMO run per paper game on the GPU (agent steps/s, s per meta-epoch)
timeout 300 python3 benchmarks/bench_ppo_atari.py --device cuda --iterations 5 --out "$R/ppo_atari_cuda" | tail -6
for g in Pong SpaceInvaders MsPacman; do
  timeout 120 python3 benchmarks/bench_atari.py --device cuda --game $g --splits 4 3 --meta-epochs 5 --out "$R/atari_cuda_${g,,}" | tail -3
done
