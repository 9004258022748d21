"""The benchmarks: ``python experiments/benchmark.py [options]`` is ``jaxbackprop bench [options]``.

    python experiments/benchmark.py --quick
    python experiments/benchmark.py --out docs/benchmarks.json --markdown docs/benchmarks.md
"""

import sys

from jaxbackprop.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
