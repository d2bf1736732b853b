"""The project's own configuration makes Prefect work offline, whoever runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_prefect_reads_offline_settings_from_pyproject() -> None:
    """Analytics off, a 90 s start-up timeout and a project-local home, from pyproject.toml alone."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    code = (
        "import json; from prefect.settings import get_current_settings as g; s = g(); "
        "print(json.dumps([s.server.analytics_enabled, str(s.home), "
        "s.server.ephemeral.startup_timeout_seconds]))"
    )
    out = subprocess.run(  # noqa: S603 - fixed interpreter and code
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    analytics, home, timeout_s = json.loads(out.stdout.strip().splitlines()[-1])
    assert analytics is False
    assert Path(home).name == ".prefect"
    assert timeout_s == 90
