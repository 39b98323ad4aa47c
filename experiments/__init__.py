"""The experiment harness: scripts that measure the project and write the results book,
``experiments/README.md``.

Run a script from the repository root, either way:

    python experiments/<script>.py [options]
    python -m experiments.<script> [options]

Scripts import what they share as ``experiments.<module>`` and never import each other:

- :mod:`experiments.results_io`: results files and the results blocks of ``experiments/README.md``;
- :mod:`experiments.harness`: train a configuration through ``python -m kanji_lab``, read its
  ``metrics.json``, evaluate a run;
- :mod:`experiments.realsets`: the paths of the real development writing and the image sets built
  from it;
- :mod:`experiments.bench_common`: random ETL-shaped data and a step timer for the speed benchmarks.

A script run as a file has ``experiments/`` on ``sys.path``, not the repository root: it imports
:mod:`experiments._bootstrap` first (the only module here that changes ``sys.path``).
"""
