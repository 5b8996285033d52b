"""Install the Debian packages a dataset draws its audio from, on first use.

No corpus can be downloaded at run time, so melforge's embedded data come from Debian packages
(Asterisk prompts, the FluidSynth piano soundfont). :func:`ensure_debian_packages` installs them
with apt when melforge runs as root, and otherwise says exactly which command to run.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from melforge.core.dataset import DatasetError

#: Waits this long (seconds) for another apt/dpkg process to release its lock.
APT_LOCK_TIMEOUT_S = 300

_apt_updated = False  # ``apt-get update`` runs at most once per process


def _present(needed_path: str | os.PathLike) -> bool:
    """Whether ``needed_path`` (a path, or a glob pattern with ``*``/``**``) matches anything."""
    pattern = str(needed_path)
    if glob.has_magic(pattern):
        return next(glob.iglob(pattern, recursive=True), None) is not None
    return Path(pattern).exists()


def _apt(args: Sequence[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "-o", f"DPkg::Lock::Timeout={APT_LOCK_TIMEOUT_S}", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True)


def install_command(packages: Sequence[str]) -> str:
    """The shell command a user runs to install ``packages`` by hand."""
    return (
        "sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y "
        "--no-install-recommends " + " ".join(packages)
    )


def ensure_debian_packages(packages: Sequence[str], *, needed_path: str | os.PathLike) -> None:
    """Make sure ``packages`` are installed, judged by whether ``needed_path`` exists.

    Args:
        packages: Debian package names, e.g. ``["asterisk-core-sounds-en-g722"]``.
        needed_path: a path, or a glob pattern (``**`` allowed), that exists once the packages
            are installed, e.g. ``/usr/share/asterisk/sounds/en/**/*.g722``.

    If ``needed_path`` is missing and this process is root with ``apt-get`` available, runs
    ``apt-get update`` (once per process) and ``apt-get install -y --no-install-recommends``,
    printing what it does to stderr.

    Raises:
        DatasetError: not root or no apt-get (the message gives the exact command to run), the
            installation failed (names the package and apt's error), or ``needed_path`` is still
            missing after it.
    """
    global _apt_updated
    packages = list(packages)
    if not packages or _present(needed_path):
        return
    names = " ".join(packages)
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if not is_root or shutil.which("apt-get") is None:
        raise DatasetError(
            f"{needed_path} is missing: it comes from the Debian package(s) {names}. "
            f"Install them with:\n    {install_command(packages)}"
        )
    plural = "s" if len(packages) > 1 else ""
    print(f"melforge: installing Debian package{plural} {names} (first use)…", file=sys.stderr)
    if not _apt_updated:
        done = _apt(["update"])
        if done.returncode != 0:
            raise DatasetError(
                f"apt-get update failed while installing {names}:\n{done.stderr.strip()[-2000:]}"
            )
        _apt_updated = True
    done = _apt(["install", "-y", "--no-install-recommends", *packages])
    if done.returncode != 0:
        raise DatasetError(
            f"could not install Debian package(s) {names} "
            f"(apt-get exit {done.returncode}):\n{done.stderr.strip()[-2000:]}"
        )
    if not _present(needed_path):
        raise DatasetError(
            f"installed Debian package(s) {names} but {needed_path} is still missing"
        )
