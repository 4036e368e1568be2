"""Ad hoc check (not a pipeline stage): students other than the teacher's own learner, for the Pendulum
teacher route. Each variant fits B = 8 for 800 steps unless said (`compress`'s defaults otherwise) from
`results/own_task/Pendulum-v1/teacher.safetensors` and writes `Pendulum-v1_<variant>.safetensors` here; evaluate
each with `python -m paper_code evaluate <file> --learners 30 --episodes 3 --json`.

- `w256g4`: a wider student, 256-256 with hidden gain 4, for more varied random features (a 64-64 learner's with gain
  sqrt 2 fit the teacher's means with R^2 0.95: `pendulum_random_features.json`);
- `tdef64`: the teacher's 64-64 with torch's default init (random biases: a zero-bias tanh learner is an odd function
  of the observation at init);
- `clip8`: the teacher's means clipped to Pendulum's action bounds (+-2) as targets (19% of the visited states' means
  lie outside them and the environment clips actions anyway);
- `w256g4b64dag`: the wider student with B = 64, 3,000 steps and 3 DAgger rounds (its features fit the teacher's means
  with R^2 0.99 where the 64-64 learner's reach 0.95, but B = 8 gives a one-step learner only 8 directions to use).
- `og01b64dag`, `og1b64dag`: the teacher's 64-64 with output gain 0.1 and 1 instead of 0.01 (B = 64, 3,000 steps, 3
  DAgger rounds): with a larger last layer the step also moves the hidden layers, so the one-step function is no
  longer a fixed kernel's (pendulum_shared_set_bias.py: the sets' average one-step function is what misses).

Run from the project folder: python results/own_task/checks/pendulum_students.py w256g4 tdef64 clip8"""
import dataclasses
import sys
from pathlib import Path

from paper_code.core.compress import Compression, load_teacher
from paper_code.core.settings import CompressConfig

HERE = Path(__file__).parent
VARIANTS = {"w256g4": {"hidden": (256, 256), "hidden_gain": 4.0}, "tdef64": {"init": "torch_default"}, "clip8": {},
            "w256g4b64dag": {"hidden": (256, 256), "hidden_gain": 4.0}, "og01b64dag": {"output_gain": 0.1},
            "og1b64dag": {"output_gain": 1.0}}
_DAG = {"size": 64, "steps": 3000, "dagger_rounds": 3}
FITS = {"w256g4b64dag": _DAG, "og01b64dag": _DAG, "og1b64dag": _DAG}  # default: B = 8, 800 steps

for name in sys.argv[1:]:
    t = load_teacher("results/own_task/Pendulum-v1/teacher.safetensors")
    t = dataclasses.replace(t, learner=dataclasses.replace(t.learner, **VARIANTS[name]))
    if name == "clip8":
        raw = t.outputs
        t = dataclasses.replace(t, outputs=lambda theta0, s, raw=raw: raw(theta0, s).clamp(-2.0, 2.0))
    fit = CompressConfig(**FITS.get(name, {"size": 8, "steps": 800}))
    c = Compression(t, fit)
    for _ in range(fit.steps):
        row = c.step()
    c.dataset().save(HERE / f"Pendulum-v1_{name}.safetensors")
    print(name, row, flush=True)
