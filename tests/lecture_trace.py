"""The training trace as the second note prints it: the independent source for the trainers.

PyTorch printed each number as ``tensor(-7.8400)``: 4 decimals (``tensor(-2.)`` is -2).
The notes are cut off after the gradients of epoch 7, so there are 8 epochs of gradients
and 7 epoch losses.
"""

from __future__ import annotations

from typing import Any

import numpy as np

PREDICTION_BEFORE = 4.0  # "Predict (before training 4 tensor(4.)"

GRADS: tuple[tuple[float, float, float], ...] = (  # "\tgrad:  1.0 2.0 tensor(-2.)", ...
    (-2.0, -7.8400, -16.2288),
    (-1.4786, -5.7962, -11.9981),
    (-1.0932, -4.2852, -8.8704),
    (-0.8082, -3.1681, -6.5580),
    (-0.5975, -2.3422, -4.8484),
    (-0.4417, -1.7316, -3.5845),
    (-0.3266, -1.2802, -2.6500),
    (-0.2414, -0.9465, -1.9592),
)

EPOCH_LOSS: tuple[float, ...] = (  # "progress: 0 tensor(7.3159)", ...
    7.3159, 3.9988, 2.1857, 1.1946, 0.6530, 0.3569, 0.1951,
)


def at_printed_precision(values: Any) -> list[str]:
    """Numbers as the notes print them: rounded to 4 decimals."""
    return [f"{v:.4f}" for v in np.ravel(np.asarray(values, dtype=float))]


def lecture_lines() -> list[str]:
    """The trace's lines in the layout of ``jaxbackprop train`` (grad and progress lines)."""
    lines = []
    for epoch, grads in enumerate(GRADS):
        lines += [f"\tgrad:  {x} {y} {g:.4f}"
                  for x, y, g in zip((1.0, 2.0, 3.0), (2.0, 4.0, 6.0), grads, strict=True)]
        if epoch < len(EPOCH_LOSS):
            lines.append(f"progress: {epoch} {EPOCH_LOSS[epoch]:.4f}")
    return lines
