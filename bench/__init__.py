"""Benchmarks of the app as it really runs (never imported by the app):

    python -m bench [--models DIR] [--repeats N] [--quick]

bench.harness (the real server and headless Chromium) is shared with tests/test_browser.py.
"""
