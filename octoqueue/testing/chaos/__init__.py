"""``python -m octoqueue.testing.chaos`` (``make chaos``): jobs through a real server and real worker processes
while workers are SIGKILLed, the server is restarted and the GitHub emulator misbehaves; then a check that no job
was lost, none completed twice and every one finished. See docs/reliability.md.

Modules: :mod:`.ledger` (the per-job record every process appends to, and its verdict), :mod:`.processes` (the
worker and server process entry points), :mod:`.harness` (one run: start, disturb, drain, check),
:mod:`.__main__` (the command line).
"""
