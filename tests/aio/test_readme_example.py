"""The README's asyncio example runs as printed (in a fresh interpreter) and prints what its comment says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_asyncio_example_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("```python\nimport asyncio\nfrom octoqueue.aio import")
    code = readme[start + len("```python\n") : readme.index("```", start + 3)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "{'status': 200}"
