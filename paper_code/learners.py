"""Learner networks as pure functions of a parameter dict (for ``torch.func``).

A learner is described by a :class:`LearnerSpec` (stored in dataset files as JSON). Parameters
are a flat ``dict[str, Tensor]`` (``"l0.weight"``, ``"l0.bias"``, ...), so the inner SGD step is
``{k: p - lr * g[k]}`` and ``torch.func.vmap`` can batch over learner initialisations by stacking
the dicts.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

Params = dict[str, torch.Tensor]

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": F.relu,
    "gelu": F.gelu,
}
INITS = ("orthogonal", "xavier_normal", "torch_default")
POLICIES = ("categorical", "gaussian")


@dataclass(frozen=True)
class LearnerSpec:
    """An MLP ``obs -> hidden... -> out``.

    ``init``: ``orthogonal`` (gain ``hidden_gain`` on hidden layers and ``output_gain`` on the
    output layer, zero biases: the paper's learner), ``xavier_normal`` (zero biases) or
    ``torch_default`` (``nn.Linear``'s default).

    ``policy``: ``categorical`` (the outputs are logits over discrete actions) or ``gaussian``
    (the outputs are the means of a diagonal Gaussian over continuous actions; the learner has one
    more parameter, a state-independent ``log_std`` [A] initialised to ``init_log_std``).
    """

    hidden: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    init: str = "orthogonal"
    hidden_gain: float = math.sqrt(2)
    output_gain: float = 0.01
    kind: str = field(default="mlp")
    policy: str = "categorical"
    init_log_std: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if self.kind != "mlp":
            raise ValueError(f"unknown learner kind {self.kind!r} (known: mlp)")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r} (known: {', '.join(ACTIVATIONS)})")
        if self.init not in INITS:
            raise ValueError(f"unknown init {self.init!r} (known: {', '.join(INITS)})")
        if self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r} (known: {', '.join(POLICIES)})")
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden sizes must be positive, got {self.hidden}")

    def to_json(self) -> str:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "LearnerSpec":
        d = json.loads(text)
        if not isinstance(d, dict):
            raise ValueError("learner metadata must be a JSON object")
        return cls(**d)


PAPER_LEARNER = LearnerSpec()


def layer_sizes(spec: LearnerSpec, in_size: int, out_size: int) -> list[tuple[int, int]]:
    sizes = [in_size, *spec.hidden, out_size]
    return list(zip(sizes[:-1], sizes[1:]))


def init_params(spec: LearnerSpec, in_size: int, out_size: int, generator: torch.Generator | None = None,
                dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> Params:
    """Draw one learner's parameters."""
    params: Params = {}
    layers = layer_sizes(spec, in_size, out_size)
    for i, (fan_in, fan_out) in enumerate(layers):
        w = torch.empty(fan_out, fan_in, dtype=dtype, device=device)
        b = torch.zeros(fan_out, dtype=dtype, device=device)
        last = i == len(layers) - 1
        if spec.init == "orthogonal":
            torch.nn.init.orthogonal_(w, gain=spec.output_gain if last else spec.hidden_gain, generator=generator)
        elif spec.init == "xavier_normal":
            torch.nn.init.xavier_normal_(w, generator=generator)
        else:  # nn.Linear's default: kaiming_uniform(a=sqrt(5)) weights, uniform(+-1/sqrt(fan_in)) biases
            torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=generator)
            bound = 1 / math.sqrt(fan_in)
            torch.nn.init.uniform_(b, -bound, bound, generator=generator)
        params[f"l{i}.weight"] = w
        params[f"l{i}.bias"] = b
    if spec.policy == "gaussian":
        params["log_std"] = torch.full((out_size,), float(spec.init_log_std), dtype=dtype, device=device)
    return params


def init_params_batch(spec: LearnerSpec, in_size: int, out_size: int, count: int,
                      generator: torch.Generator | None = None, **kw) -> Params:
    """``count`` independent initialisations stacked along a new leading dimension."""
    draws = [init_params(spec, in_size, out_size, generator, **kw) for _ in range(count)]
    return {k: torch.stack([d[k] for d in draws]) for k in draws[0]}


def num_layers(params: Params) -> int:
    """Linear layers in a parameter dict (``l{i}.weight``/``l{i}.bias``; other keys such as a
    Gaussian learner's ``log_std`` are not layers)."""
    return sum(1 for k in params if k.endswith(".weight"))


def forward(params: Params, x: torch.Tensor, activation: str = "tanh") -> torch.Tensor:
    """The MLP on inputs ``[..., in]``; the number of layers is read off ``params``."""
    act = ACTIVATIONS[activation]
    n = num_layers(params)
    h = x
    for i in range(n):
        h = F.linear(h, params[f"l{i}.weight"], params[f"l{i}.bias"])
        if i < n - 1:
            h = act(h)
    return h


def batched_forward(params: Params, x: torch.Tensor, activation: str = "tanh") -> torch.Tensor:
    """``K`` learners (params with leading dim K) on inputs ``[K, n, in]`` -> ``[K, n, out]``."""
    if x.shape[0] == 1:  # one learner: plain linear layers (fewer operations)
        return forward({k: v[0] for k, v in params.items()}, x[0], activation).unsqueeze(0)
    act = ACTIVATIONS[activation]
    n = num_layers(params)
    h = x
    for i in range(n):
        h = torch.baddbmm(params[f"l{i}.bias"].unsqueeze(1), h, params[f"l{i}.weight"].transpose(1, 2))
        if i < n - 1:
            h = act(h)
    return h
