"""Fast commands (issue 20, item 6), checked by behaviour, not by timing: ``--help`` and a
cached ``melforge-plugins`` never import torch (its import alone is 1.5–2 s); the timings are
``benchmarks/startup.py``'s, in ``benchmarks/RESULTS.md``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = ("import sys\nsys.argv = {argv!r}\nfrom melforge.core.cli.{app} import main\n"
         "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
         "heavy = [m for m in ('torch', 'scipy.signal', 'numba', 'librosa') if m in sys.modules]\n"
         "print('HEAVY', heavy)\n")


@pytest.mark.parametrize("app, argv", [
    ("train", ["melforge-train", "--help"]),
    ("train", ["melforge-train", "--help", "experiment=wavenet_speech_tiny"]),
    ("sample", ["melforge-sample", "--help"]),
    ("invert", ["melforge-invert", "--help"]),
    ("plugins", ["melforge-plugins"]),
])
def test_help_and_a_cached_listing_import_no_torch(app, argv, tmp_path):
    env = dict(os.environ, PYTHONWARNINGS="ignore", MELFORGE_CACHE=str(tmp_path))
    for _ in range(2):  # the first melforge-plugins fills the listing cache, the second reads it
        proc = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv, app=app)], capture_output=True,
                              text=True, timeout=300, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert "HEAVY []" in proc.stdout, proc.stdout[-500:]
