"""jaxbackprop: the backpropagation lecture, reimplemented functionally in JAX.

    import jaxbackprop as jb
    jb.loss(1.0, 1.0, 2.0)                      # (w*x - y)**2 = 1
    jax.grad(jb.loss)(1.0, 1.0, 2.0)            # -2, from JAX
    jb.tape.grad(jb.loss)(1.0, 1.0, 2.0)        # -2, from the hand-written tape

The names below are imported on first use (PEP 562), so that ``import jaxbackprop`` and
the ``jaxbackprop --help`` command do not pay for importing JAX.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time, __getattr__ below
    from jaxbackprop import tape
    from jaxbackprop.model import loss, loss_and_grad, loss_grad, mean_loss, predict, squared_error
    from jaxbackprop.train import DivergenceError, TrainHistory, sweep, train_per_sample, train_scan

# Each public name and the module that defines it.
_LAZY: dict[str, str] = {
    "tape": "jaxbackprop.tape",
    **dict.fromkeys(["predict", "squared_error", "loss", "loss_grad", "loss_and_grad",
                     "mean_loss"], "jaxbackprop.model"),
    **dict.fromkeys(["train_per_sample", "train_scan", "sweep", "TrainHistory",
                     "DivergenceError"], "jaxbackprop.train"),
}

__all__ = ["__version__", "tape", "predict", "squared_error", "loss", "loss_grad",
           "loss_and_grad", "mean_loss", "train_per_sample", "train_scan", "sweep", "TrainHistory",
           "DivergenceError"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'jaxbackprop' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name])
    value = module if name == "tape" else getattr(module, name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
