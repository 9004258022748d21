"""Run by tests/test_parallel.py in a fresh process with several (forced CPU) devices.

    python tests/parallel_worker.py                   # one process, all its devices
    python tests/parallel_worker.py PORT PID COUNT    # process PID of COUNT, on localhost:PORT

Trains the sharded sweep and the data-parallel minibatch SGD over every device (of every
process), and the same on one device for comparison; process 0 prints one JSON object.
"""

from __future__ import annotations

import json
import sys

import jax
import numpy as np
import optax
from jax.experimental import multihost_utils

import jaxbackprop as jb
from jaxbackprop import lecture, parallel

RATES = np.linspace(0.002, 0.06, 13, dtype=np.float32)  # 13 runs: padded to the devices
W0S = np.linspace(-1.0, 3.0, 13, dtype=np.float32)
XS = np.linspace(-1.0, 1.0, 64, dtype=np.float32)
YS = (2.0 * XS + 0.25 * np.sin(7.0 * XS)).astype(np.float32)
SWEEP_SGD = optax.inject_hyperparams(optax.sgd)(learning_rate=0.01)  # rates set per run
SGD = optax.sgd(0.1)


def host(a: jax.Array) -> np.ndarray:
    """A global array, gathered to every process."""
    return np.asarray(multihost_utils.process_allgather(a, tiled=True))


def main() -> None:
    single = parallel.make_mesh("data", jax.local_devices()[:1])
    w, sweep = parallel.sharded_sweep(jb.loss, W0S, lecture.X_DATA, lecture.Y_DATA,
                                      optimizer=SWEEP_SGD, learning_rate=RATES)
    w_ref, sweep_ref = jb.sweep(jb.loss, W0S, lecture.X_DATA, lecture.Y_DATA, optimizer=SWEEP_SGD,
                                learning_rate=RATES)
    mesh = parallel.make_mesh("data")
    scalar, batches = (jax.ShapeDtypeStruct(shape, np.float32) for shape in ((), (4, 16)))
    hlo = parallel.data_parallel_program.lower(
        scalar, None, batches, batches, mesh=mesh, loss=jb.loss, optimizer=SGD, epochs=3,
        engine="jax").compile().as_text()
    report = {
        "devices": jax.device_count(), "processes": jax.process_count(),
        "sweep_max_ulp": int(max(np.max(np.abs(
            host(a).view(np.int32).astype(np.int64) - b.view(np.int32).astype(np.int64)))
            for a, b in zip(sweep, sweep_ref, strict=False))),
        "sweep_w_equal": bool(np.array_equal(host(w), w_ref)),
        "sweep_shape": list(sweep.losses.shape),
        "data_parallel_all_reduce": "all-reduce" in hlo,
    }
    for batch_size in (16, 64):
        kwargs = dict(batch_size=batch_size, optimizer=SGD, epochs=3)
        w, many = parallel.data_parallel_train(jb.loss, 0.0, XS, YS, **kwargs)
        w1, one = parallel.data_parallel_train(jb.loss, 0.0, XS, YS, mesh=single, **kwargs)
        report[f"batch_{batch_size}"] = {
            "losses": host(many.losses).tolist(), "params": host(many.params).tolist(),
            "max_rel_diff_to_one_device": float(max(
                np.max(np.abs(host(a) - np.asarray(b)) / np.abs(np.asarray(b)))
                                                    for a, b in zip(many, one, strict=False))),
        }
    try:  # a batch that divides the data but not across the devices
        parallel.data_parallel_train(jb.loss, 0.0, XS, YS, optimizer=SGD,
                                     batch_size=max(jax.device_count() // 2, 1))
    except ValueError as error:
        report["batch_error"] = str(error)
    if jax.process_index() == 0:
        print(json.dumps(report))


if __name__ == "__main__":
    if len(sys.argv) == 4:  # many processes: initialise before anything touches a device
        port, pid, count = (int(a) for a in sys.argv[1:])
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(f"localhost:{port}", num_processes=count, process_id=pid)
    main()
