"""Benchmarks: octoqueue's SQLite store side by side with GigQ and Huey (``python -m bench --help``)."""
