"""The benchmarks: each entry point runs as ``python -m experiments.benchmarks.NAME``.

They live apart from the command-line tools one level up because they are not how people use
purerl but how its speed and learning are checked against other trainers (docs/BENCHMARKS.md,
docs/PPO_PARITY.md).

The anchors (``brax_anchor.py``, ``purejaxrl_anchor.py``) run as *scripts*, often under another
project's environment, so Python puts this folder first on their ``sys.path`` and they import
``args`` as a sibling. A module here named like one they import (``wrappers``, ``brax``, a
standard-library module, ...) would shadow it; tests/test_bench_tools.py checks the names.
"""
