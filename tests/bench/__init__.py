"""Benchmarks of the dashboard (``make bench`` = ``python -m tests.bench``); not collected by pytest.

Every figure comes with a baseline measured in the same run, so ratios stay meaningful across machines.
Results are printed as a table and written to ``bench-results/`` (git-ignored).
"""
