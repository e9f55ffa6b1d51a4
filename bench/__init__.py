"""Benchmarks: each module prints its figures (and ratios against a peer where one exists).

``python -m bench --quick`` runs every benchmark's quick mode, as CI's ``tox -e bench`` does.
"""
