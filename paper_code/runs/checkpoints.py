"""Checkpoint files: written atomically and only when every tensor is finite, read without ever
unpickling code (``weights_only=True``), and checked against the run that loads them before any
of it is used, so a wrong or damaged file gives one clear :class:`CheckpointError`.

A checkpoint is a ``torch.save`` of a plain dict (tensors, numbers, strings, lists and dicts).
:func:`check_like` compares it with the state dict of a freshly built run of the same
configuration, the *template*: the same keys, tensors of the same shape and dtype, finite
floating-point values, numbers of the right kind, optimiser states that fit their parameters.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import torch

from paper_code.files import CheckpointError, atomic_path

#: entries that a template cannot describe exactly; checked by their own rules below
_HISTORY_KEYS = ("history", "evals")
_OPTIMIZER_KEYS = ("data_opt", "critic_opt")
_FREE_KEYS = ("config",)  # compared with the run's configuration by the run itself


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def load_weights(path: str | Path, device: str = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` (no code in the file runs), without torch's warning
    about a pickle protocol other than its default: a file's problems are reported as one error."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected pickle protocol")
        return torch.load(path, map_location=device, weights_only=True)


def read_checkpoint(path: str | Path, device: str = "cpu") -> dict[str, Any]:
    """The checkpoint's dict; :class:`CheckpointError` (one line) if the file is not one of ours."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint")
    try:
        sd = load_weights(path, device)
    except Exception as e:  # noqa: BLE001  (any unreadable file)
        text = str(e)
        if "GLOBAL" in text or "global" in text.lower() and "unsupported" in text.lower():
            raise CheckpointError(f"{path}: not a checkpoint of this project (it holds Python objects that our "
                                  f"checkpoints never contain; refused without loading them)") from None
        # torch's own message for a refused file suggests unsafe loading: never repeat it
        detail = type(e).__name__ if "weights_only" in text or "Weights only" in text else f"{type(e).__name__}: {_first_line(e)}"
        raise CheckpointError(f"{path}: not a readable checkpoint (damaged, or not a torch file: {detail})") from None
    if not isinstance(sd, dict):
        raise CheckpointError(f"{path}: not a checkpoint of this project (holds a {type(sd).__name__}, not a dict)")
    return sd


def nonfinite_tensors(sd: Any, prefix: str = "") -> list[str]:
    """Names of the floating-point tensors in (nested) ``sd`` with a nan or inf."""
    bad = []
    if isinstance(sd, torch.Tensor):
        if sd.dtype.is_floating_point and not bool(torch.isfinite(sd).all()):
            bad.append(prefix or "value")
    elif isinstance(sd, dict):
        for k, v in sd.items():
            bad += nonfinite_tensors(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(sd, (list, tuple)):
        for i, v in enumerate(sd):
            bad += nonfinite_tensors(v, f"{prefix}[{i}]")
    return bad


def write_checkpoint(sd: dict[str, Any], path: str | Path) -> Path:
    """Atomic write (temporary file, fsync, rename). A state with a non-finite tensor is refused
    (``ValueError``) so that a diverged run never replaces a good checkpoint."""
    bad = nonfinite_tensors({k: v for k, v in sd.items() if k not in _HISTORY_KEYS})
    if bad:
        raise ValueError(f"refusing to write a checkpoint with non-finite values in {', '.join(bad[:5])}")
    with atomic_path(path) as tmp:
        torch.save(sd, tmp)
    return Path(path)


def _fail(where: str, what: str) -> None:
    raise CheckpointError(f"{where}: {what}")


def _check_value(value: Any, template: Any, where: str) -> None:
    if isinstance(template, torch.Tensor):
        if not isinstance(value, torch.Tensor):
            _fail(where, f"expected a tensor, got {type(value).__name__}")
        if tuple(value.shape) != tuple(template.shape) or value.dtype != template.dtype:
            _fail(where, f"expected a {template.dtype} tensor of shape {tuple(template.shape)}, "
                         f"got {value.dtype} {tuple(value.shape)}")
        if value.dtype.is_floating_point and not bool(torch.isfinite(value).all()):
            _fail(where, "holds non-finite values (nan or inf)")
    elif isinstance(template, dict):
        if not isinstance(value, dict):
            _fail(where, f"expected a dict, got {type(value).__name__}")
        missing, extra = sorted(set(template) - set(value), key=str), sorted(set(value) - set(template), key=str)
        if missing or extra:
            _fail(where, f"keys differ from this run's (missing {missing or 'none'}, unexpected {extra or 'none'})")
        for k in template:
            _check_value(value[k], template[k], f"{where}.{k}")
    elif isinstance(template, bool):
        if not isinstance(value, bool):
            _fail(where, f"expected true/false, got {value!r}")
    elif isinstance(template, int):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            _fail(where, f"expected a non-negative integer, got {value!r}")
    elif isinstance(template, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
            _fail(where, f"expected a non-negative finite number, got {value!r}")
    elif isinstance(template, str):
        if not isinstance(value, str):
            _fail(where, f"expected a string, got {type(value).__name__}")
    elif isinstance(template, list):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            _fail(where, f"expected a list of strings, got {value!r:.80}")


def _check_history(value: Any, where: str) -> None:
    if isinstance(value, list):  # written before histories were stored as columns
        if not all(isinstance(r, dict) for r in value):
            _fail(where, "expected rows (dicts)")
        return
    if not isinstance(value, dict):
        _fail(where, f"expected columns (a dict of tensors), got {type(value).__name__}")
    lengths = set()
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor) or v.ndim != 1:
            _fail(where, f"column {k!r} is not a 1-D tensor")
        lengths.add(v.shape[0])
    if len(lengths) > 1:
        _fail(where, f"columns of different lengths {sorted(lengths)}")


def _check_optimizer(value: Any, params: list[torch.Tensor], where: str, template: dict[str, Any]) -> None:
    if not isinstance(value, dict) or set(value) != {"state", "param_groups"}:
        _fail(where, "expected an optimiser state (keys 'state' and 'param_groups')")
    groups = value["param_groups"]
    sizes = [len(g["params"]) for g in template["param_groups"]]  # the run's own groups, in order
    if (not isinstance(groups, list) or not all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in groups)
            or [len(g["params"]) for g in groups] != sizes
            or [i for g in groups for i in g["params"]] != list(range(len(params)))):
        what = "one parameter group" if len(sizes) == 1 else f"{len(sizes)} parameter groups"
        _fail(where, f"expected {what} of {len(params)} parameters")
    state = value["state"]
    if not isinstance(state, dict) or not set(state) <= set(range(len(params))):
        _fail(where, "optimiser state of unknown parameters")
    for i, st in state.items():
        if not isinstance(st, dict):
            _fail(f"{where}.state.{i}", "expected a dict")
        for k, v in st.items():
            if not isinstance(v, torch.Tensor):
                _fail(f"{where}.state.{i}.{k}", "expected a tensor")
            if k in ("exp_avg", "exp_avg_sq") and tuple(v.shape) != tuple(params[i].shape):
                _fail(f"{where}.state.{i}.{k}", f"shape {tuple(v.shape)} does not fit its parameter's "
                                                f"{tuple(params[i].shape)}")
            if v.dtype.is_floating_point and not bool(torch.isfinite(v).all()):
                _fail(f"{where}.state.{i}.{k}", "holds non-finite values (nan or inf)")


def check_like(sd: dict[str, Any], template: dict[str, Any], optimizer_params: dict[str, list[torch.Tensor]],
               where: str) -> None:
    """Raise :class:`CheckpointError` unless ``sd`` has the structure of ``template`` (see the
    module docstring); ``optimizer_params`` maps each optimiser entry to its parameters."""
    missing = sorted(set(template) - set(sd), key=str)
    if missing:
        _fail(where, f"missing {', '.join(map(str, missing))}")
    extra = sorted(set(sd) - set(template), key=str)
    if extra:
        _fail(where, f"unexpected entries {', '.join(map(str, extra))} (a checkpoint of another configuration?)")
    for k, t in template.items():
        if k in _FREE_KEYS:
            if not isinstance(sd[k], dict):
                _fail(f"{where}: {k}", f"expected a dict, got {type(sd[k]).__name__}")
        elif k in _HISTORY_KEYS:
            _check_history(sd[k], f"{where}: {k}")
        elif k in _OPTIMIZER_KEYS:
            _check_optimizer(sd[k], optimizer_params[k], f"{where}: {k}", t)
        else:
            _check_value(sd[k], t, f"{where}: {k}")
