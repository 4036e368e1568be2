"""Ad hoc check (not a pipeline stage): ``compress`` with a bang-bang target for the Pendulum teacher.

Playing the teacher's mean action pushed to a bound, 2 * sign(mean), scores better than the teacher
(pendulum_bang_bang.json), so a one-step learner would only need the sign of the teacher's mean right. This
runs ``python -m paper_code compress <the Pendulum teacher> <flags>`` with the fit's KL replaced: the teacher's
means become 2 * sign(mean) and the student's means are clipped to the action bounds (+-2) before the Gaussian KL
(a student mean beyond the bound on the right side costs nothing, as the environment clips it).

    python results/own_task/checks/pendulum_bang_bang_fit.py --size 64 --steps 3000 --dagger-rounds 3 \
        --out results/own_task/checks/Pendulum-v1_bang64dag3s3k.safetensors --quiet
"""
import sys

import torch

import paper_code.core.compress as compress
from paper_code.__main__ import main

kl = compress.kl_divergence


def bang_bang_kl(teacher, student, t_log_std=None, s_log_std=None):
    if t_log_std is None:  # a categorical teacher: unchanged
        return kl(teacher, student)
    return kl(2 * torch.sign(teacher), student.clamp(-2, 2), t_log_std, s_log_std)


compress.kl_divergence = bang_bang_kl
sys.exit(main(["compress", "results/own_task/Pendulum-v1/teacher.safetensors", *sys.argv[1:]]))
