"""``jaxbackprop train`` without ``--out`` keeps no history: it prints each step as it
goes, so its memory does not grow with ``--epochs``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jaxbackprop import train
from jaxbackprop.cli.main import main


@pytest.fixture
def records(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """The ``record`` each training was asked for, and the history it returned."""
    seen: list[tuple[str, Any]] = []
    real = train.train_per_sample

    def spy(*args: Any, **kwargs: Any) -> Any:
        params, history = real(*args, **kwargs)
        seen.append((kwargs["record"], history))
        return params, history

    monkeypatch.setattr(train, "train_per_sample", spy)
    return seen


def test_without_out_the_trace_is_printed_and_no_history_kept(
        records: list[tuple[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--epochs", "50"]) == 0
    out = capsys.readouterr().out
    assert out.count("\tgrad:") == 150 and out.count("progress:") == 50
    [(record, history)] = records
    assert record == "final" and history.losses is None and history.grads is None
    assert np.shape(history.params)[0] == 1  # the final parameters only, whatever --epochs


def test_with_out_every_step_is_kept(records: list[tuple[str, Any]], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--epochs", "5", "--out", str(tmp_path / "h.json")]) == 0
    [(record, history)] = records
    assert record == "steps" and np.shape(history.losses) == (5, 3)
