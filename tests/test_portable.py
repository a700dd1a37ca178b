"""Nothing platform-specific at import: every module of every package imports in a process that has no
``/proc`` (an empty tmpfs over it, in a mount namespace of its own) and in which our modules cannot import
the POSIX-only ``fcntl``, ``resource`` or ``termios`` (third-party libraries may: they choose per platform).

As root the namespace is made with ``unshare --mount``; as anyone else with ``--map-root-user`` as well.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

from tests.conftest import ROOT

PROBE = textwrap.dedent('''
    import builtins, importlib, os, pkgutil, sys
    assert os.listdir("/proc") == [], "the probe must run with an empty /proc"
    OURS = ("workflows", "bots", "orchestrator", "monitoring", "demo_portal")
    POSIX_ONLY = ("fcntl", "resource", "termios")
    real_import = builtins.__import__

    def guarded(name, globals=None, locals=None, fromlist=(), level=0):
        importer = (globals or {}).get("__name__") or ""
        if level == 0 and name.split(".")[0] in POSIX_ONLY and importer.split(".")[0] in OURS:
            raise ImportError(f"{importer} imports {name}, which only POSIX systems have")
        return real_import(name, globals, locals, fromlist, level)

    builtins.__import__ = guarded
    imported, failed = 0, []
    for package in OURS:
        for info in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
            if info.name.endswith("__main__") or info.name == "orchestrator.migrations.env":
                continue  # the command line when run, and Alembic's script (it needs Alembic's context)
            try:
                importlib.import_module(info.name)
                imported += 1
            except Exception as exc:
                failed.append(f"{info.name}: {type(exc).__name__}: {exc}")
    print(imported)
    print("\\n".join(failed))
''')


def test_every_module_imports_without_proc_and_without_posix_only_modules() -> None:
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is needed to hide /proc"
    namespace = [unshare, "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        namespace[1:1] = ["--user", "--map-root-user"]
    script = f"mount -t tmpfs none /proc && exec {sys.executable} -c \"$PROBE\""
    done = subprocess.run([*namespace, "sh", "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "PROBE": PROBE, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    imported, *failed = done.stdout.strip().splitlines()
    assert [line for line in failed if line] == []
    assert int(imported) > 100  # every module of every package, not a handful
