"""Learner networks as pure functions of a parameter dict (for ``torch.func``).

A learner is described by a :class:`LearnerSpec` (stored in dataset files as JSON). Parameters
are a flat ``dict[str, Tensor]`` (``"l0.weight"``, ``"l0.bias"``, ...), so the inner SGD step is
``{k: p - lr * g[k]}`` and ``torch.func.vmap`` can batch over learner initialisations by stacking
the dicts.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Callable

import torch
import torch.nn.functional as F
from paper_code import checks

Params = dict[str, torch.Tensor]

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": F.relu,
    "gelu": F.gelu,
    "cos": torch.cos,
}
INITS = ("orthogonal", "xavier_normal", "torch_default", "fourier")
POLICIES = ("categorical", "gaussian")
KINDS = ("mlp", "nature_cnn")
#: the Nature-CNN's layers: (kind, out channels/features, kernel, stride); the last layer's size is
#: the number of outputs
NATURE_CNN: tuple[tuple[str, int, int, int], ...] = (
    ("conv", 32, 8, 4), ("conv", 64, 4, 2), ("conv", 64, 3, 1), ("linear", 512, 0, 0), ("linear", 0, 0, 0),
)


@dataclass(frozen=True)
class LearnerSpec:
    """An MLP ``obs -> hidden... -> out`` (``kind="mlp"``) or the Nature-CNN (``kind="nature_cnn"``).

    The Nature-CNN (Mnih et al. 2015) is conv 32@8x8/4, conv 64@4x4/2, conv 64@3x3/1, FC 512,
    output, with ReLU; its layers are ``c0`` .. ``c4``. ``split`` = l in 0..4: the first l layers
    form a persistent **encoder** (part of the distilled artifact) and the learner is layers l..4
    (l = 0: the whole network). ``hidden`` is not used by the Nature-CNN.

    ``init``: ``orthogonal`` (gain ``hidden_gain`` on hidden layers and ``output_gain`` on the
    output layer, zero biases: the paper's learner), ``xavier_normal`` (zero biases),
    ``torch_default`` (``nn.Linear``'s default) or ``fourier`` (beyond the paper: random Fourier
    features, Rahimi & Recht 2007: the first layer's weights N(0, ``hidden_gain``^2) and its biases
    uniform in +-pi, the other layers as ``orthogonal``; with ``activation="cos"`` and one hidden
    layer of width W, the features' inner product averaged over inits is
    (W / 2) exp(-``hidden_gain``^2 |x - s|^2 / 2), a Gaussian kernel).

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
    split: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.hidden, (str, bytes)) or not hasattr(self.hidden, "__iter__"):
            raise ValueError(f"hidden must be a list of layer widths, got {self.hidden!r}")
        hidden = tuple(checks.integer("hidden width", h, hi=checks.MAX_WIDTH) for h in self.hidden)
        if len(hidden) > checks.MAX_DEPTH:
            raise ValueError(f"at most {checks.MAX_DEPTH} hidden layers, got {len(hidden)}")
        object.__setattr__(self, "hidden", hidden)
        for name in ("hidden_gain", "output_gain"):
            object.__setattr__(self, name, checks.number(name, getattr(self, name), lo=0.0, hi=1e3))
        object.__setattr__(self, "init_log_std", checks.number("init_log_std", self.init_log_std, lo=-20.0, hi=20.0))
        object.__setattr__(self, "split", checks.integer("split", self.split, lo=0, hi=len(NATURE_CNN) - 1))
        for name in ("activation", "init", "kind", "policy"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"learner {name} must be a string, got {getattr(self, name)!r}")
        if self.kind not in KINDS:
            raise ValueError(f"unknown learner kind {self.kind!r} (known: {', '.join(KINDS)})")
        if self.kind == "mlp" and self.split != 0:
            raise ValueError("split applies to the Nature-CNN only")
        if not 0 <= self.split < len(NATURE_CNN):
            raise ValueError(f"split must be in 0..{len(NATURE_CNN) - 1}, got {self.split}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r} (known: {', '.join(ACTIVATIONS)})")
        if self.init not in INITS:
            raise ValueError(f"unknown init {self.init!r} (known: {', '.join(INITS)})")
        if self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r} (known: {', '.join(POLICIES)})")
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden sizes must be positive, got {self.hidden}")

    def to_dict(self) -> dict:
        """Its fields as plain JSON values."""
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "LearnerSpec":
        return cls.coerce(json.loads(text), "learner metadata")

    @classmethod
    def coerce(cls, value: "LearnerSpec | dict", what: str = "learner") -> "LearnerSpec":
        """A spec, or one from its fields (a dict, e.g. read from JSON); ``ValueError`` otherwise."""
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            raise ValueError(f"{what} must be a JSON object of LearnerSpec fields, got {type(value).__name__}")
        unknown = sorted(set(value) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"{what} has unknown field(s) {', '.join(map(str, unknown))}")
        return cls(**value)


PAPER_LEARNER = LearnerSpec()


def layer_sizes(spec: LearnerSpec, in_size: int, out_size: int) -> list[tuple[int, int]]:
    sizes = [in_size, *spec.hidden, out_size]
    return list(zip(sizes[:-1], sizes[1:]))


def cnn_shapes(in_shape: tuple[int, ...], out_size: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """(weight shape, input shape) of every Nature-CNN layer for observations ``in_shape`` (C, H, W)."""
    if len(in_shape) != 3:
        raise ValueError(f"a Nature-CNN learner needs image observations [C, H, W] (Atari frames), got observations of "
                         f"shape {tuple(in_shape)}: use an MLP learner")
    shapes, (c, h, w) = [], in_shape
    flat = None
    for i, (kind, n, k, s) in enumerate(NATURE_CNN):
        n = out_size if i == len(NATURE_CNN) - 1 else n
        if kind == "conv":
            shapes.append(((n, c, k, k), (c, h, w)))
            c, h, w = n, (h - k) // s + 1, (w - k) // s + 1
            if h < 1 or w < 1:
                raise ValueError(f"observations of shape {in_shape} are too small for the Nature-CNN")
        else:
            fan_in = flat if flat is not None else c * h * w
            shapes.append(((n, fan_in), (fan_in,)))
            flat = n
    return shapes


def init_cnn_layers(layers: range, in_shape: tuple[int, ...], out_size: int, *, hidden_gain: float, output_gain: float,
                    generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
                    device: torch.device | str = "cpu") -> Params:
    """Orthogonally initialised Nature-CNN layers ``layers`` (``c{i}.weight``/``c{i}.bias``)."""
    shapes = cnn_shapes(tuple(in_shape), out_size)
    params: Params = {}
    for i in layers:
        w = torch.empty(shapes[i][0], dtype=dtype, device=device)
        gain = output_gain if i == len(NATURE_CNN) - 1 else hidden_gain
        torch.nn.init.orthogonal_(w, gain=gain, generator=generator)
        params[f"c{i}.weight"] = w
        params[f"c{i}.bias"] = torch.zeros(w.shape[0], dtype=dtype, device=device)
    return params


def init_encoder(spec: LearnerSpec, in_shape: tuple[int, ...], generator: torch.Generator | None = None,
                 **kw) -> Params:
    """The persistent encoder of a split Nature-CNN: layers 0 .. split - 1 (empty for split 0)."""
    if spec.kind != "nature_cnn":
        return {}
    return init_cnn_layers(range(spec.split), in_shape, 1, hidden_gain=spec.hidden_gain, output_gain=spec.output_gain,
                           generator=generator, **kw)


def learner_input(spec: LearnerSpec, observation_shape: tuple[int, ...]) -> int | tuple[int, ...]:
    """What :func:`init_params` takes as ``in_size``: the observation size for an MLP, the
    observation shape for the Nature-CNN."""
    return tuple(observation_shape) if spec.kind == "nature_cnn" else int(observation_shape[0])


def init_params(spec: LearnerSpec, in_size: int | tuple[int, ...], out_size: int, generator: torch.Generator | None = None,
                dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> Params:
    """Draw one learner's parameters (``in_size``: the observation shape for the Nature-CNN)."""
    if spec.kind == "nature_cnn":
        if spec.init != "orthogonal":
            raise ValueError("the Nature-CNN learner uses orthogonal init")
        return init_cnn_layers(range(spec.split, len(NATURE_CNN)), tuple(in_size), out_size, hidden_gain=spec.hidden_gain,
                               output_gain=spec.output_gain, generator=generator, dtype=dtype, device=device)
    params: Params = {}
    layers = layer_sizes(spec, in_size, out_size)
    for i, (fan_in, fan_out) in enumerate(layers):
        w = torch.empty(fan_out, fan_in, dtype=dtype, device=device)
        b = torch.zeros(fan_out, dtype=dtype, device=device)
        last = i == len(layers) - 1
        if spec.init == "fourier" and i == 0 and not last:
            w.normal_(0.0, spec.hidden_gain, generator=generator)
            b.uniform_(-math.pi, math.pi, generator=generator)
        elif spec.init in ("orthogonal", "fourier"):
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


def fourier_learner(base: LearnerSpec, width: int, sigma: float) -> LearnerSpec:
    """``base`` (an MLP; its policy head and log-std kept) as one hidden layer of ``width`` cos units
    with random Fourier features of scale ``sigma`` (``init="fourier"``)."""
    if base.kind != "mlp":
        raise ValueError(f"a Fourier student replaces an MLP learner, not {base.kind}")
    return replace(base, hidden=(int(width),), activation="cos", init="fourier", hidden_gain=float(sigma))


def init_params_batch(spec: LearnerSpec, in_size: int, out_size: int, count: int,
                      generator: torch.Generator | None = None, **kw) -> Params:
    """``count`` independent initialisations stacked along a new leading dimension."""
    draws = [init_params(spec, in_size, out_size, generator, **kw) for _ in range(count)]
    return {k: torch.stack([d[k] for d in draws]) for k in draws[0]}


def num_layers(params: Params) -> int:
    """Linear layers in a parameter dict (``l{i}.weight``/``l{i}.bias``; other keys such as a
    Gaussian learner's ``log_std`` are not layers)."""
    return sum(1 for k in params if k.endswith(".weight"))


def _channels_last(t: torch.Tensor) -> torch.Tensor:
    """``t`` [N, C, H, W] in channels-last memory; unchanged inside ``vmap``, which cannot
    re-layout (the values are the same either way)."""
    if _is_batched(t):
        return t
    return t.contiguous(memory_format=torch.channels_last)


def _is_batched(t: torch.Tensor) -> bool:
    """Whether ``t`` is one of vmap's batched tensors (possibly under grad transforms)."""
    is_batched = getattr(torch._C._functorch, "is_batchedtensor", None)
    unwrap = getattr(torch._C._functorch, "get_unwrapped", None)
    is_wrapped = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    if is_batched is None:
        return False
    while True:
        if is_batched(t):
            return True
        if is_wrapped is None or unwrap is None or not is_wrapped(t):
            return False
        t = unwrap(t)


def cnn_forward(params: Params, x: torch.Tensor) -> torch.Tensor:
    """The Nature-CNN layers present in ``params`` (consecutive ``c{i}``), in order, on ``x``
    [..., C, H, W] (or [..., features] from layer 3 on); ReLU after every layer but the output."""
    idx = sorted(int(k[1:].split(".")[0]) for k in params if k.endswith(".weight"))
    h = x
    for i in idx:
        w, b = params[f"c{i}.weight"], params[f"c{i}.bias"]
        if w.ndim == 4:
            # channels-last images and kernels, the layout oneDNN's CPU convolutions run fastest in
            # (~1.5x per conv stack); the ReLU runs on the 4-D result, before the leading dims return
            lead = h.shape[:-3]
            h = F.conv2d(_channels_last(h.reshape(-1, *h.shape[-3:])), _channels_last(w), b, stride=NATURE_CNN[i][3])
            h = F.relu(h).reshape(*lead, *h.shape[1:])  # conv layers are never the output layer
            continue
        if h.shape[-1] != w.shape[1]:  # conv features [..., C, H, W] -> flat
            h = h.flatten(-3)
        h = F.linear(h, w, b)
        if i < len(NATURE_CNN) - 1:
            h = F.relu(h)
    return h


def is_cnn(params: Params) -> bool:
    return any(k.startswith("c") for k in params)


def forward(params: Params, x: torch.Tensor, activation: str = "tanh") -> torch.Tensor:
    """The learner on inputs ``[..., in]``: an MLP (the number of layers is read off ``params``)
    or Nature-CNN layers (``c{i}`` keys; ``activation`` is then ReLU by construction)."""
    if is_cnn(params):
        return cnn_forward(params, x)
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
    if is_cnn(params):
        return torch.stack([cnn_forward({k: v[i] for k, v in params.items()}, x[i]) for i in range(x.shape[0])])
    act = ACTIVATIONS[activation]
    n = num_layers(params)
    h = x
    for i in range(n):
        h = torch.baddbmm(params[f"l{i}.bias"].unsqueeze(1), h, params[f"l{i}.weight"].transpose(1, 2))
        if i < n - 1:
            h = act(h)
    return h


def atari_learner(split: int) -> LearnerSpec:
    """The Nature-CNN learner split at level ``split`` (orthogonal init, ReLU, output gain 0.01): the
    Atari presets' learner."""
    return LearnerSpec(kind="nature_cnn", activation="relu", split=int(split))
