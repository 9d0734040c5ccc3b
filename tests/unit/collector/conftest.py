"""Collector unit tests; this directory (with storehelp.py) is on sys.path through this conftest."""
