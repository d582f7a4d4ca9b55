"""The project's C kernels: built on first use with the system's C compiler, cached on disk, loaded with ctypes.

A kernel is a plain C file beside this module. It includes no torch header, so it builds in about a second,
and its callers hand it tensors' data pointers. It is built for the CPU it runs on (-march=native; the
cache key names the CPU, so a cache shared between machines never hands one machine another's
instructions), with OpenMP where the compiler has it: on Linux the libgomp that torch loaded serves the
kernel too, so its threads are torch's threads. Where nothing builds it, `load` warns once and returns None,
and the caller keeps to its pure-torch path.

The cache lives in $MINBERT_KERNEL_CACHE, else $XDG_CACHE_HOME/hf_minbert/kernels (~/.cache/...).
"""
import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from functools import cache
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent
# Tried in turn: the fast build, then one any C compiler takes (Apple's clang has no -fopenmp).
FLAG_SETS = (("-O3", "-march=native", "-fopenmp"), ("-O3",))
# Each operation of the formulas rounds to float32 on its own, as in torch's op-by-op update: no contraction
# into fused multiply-adds. sqrt vectorizes only when it need not set errno.
COMMON_FLAGS = ("-shared", "-fPIC", "-ffp-contract=off", "-fno-math-errno")
BUILD_TIMEOUT_S = 120


class KernelBuildError(RuntimeError):
    """The C compiler rejected a kernel or could not run."""


@cache
def load(name):
    """The ctypes library of kernels/<name>.c, built if its cache has none; None (with one warning) where no
    compiler builds it."""
    source = SOURCE_DIR / f"{name}.c"
    compiler = c_compiler()
    if compiler is None:
        return _unavailable(source, "no C compiler found (set CC)")
    failures = []
    for flags in FLAG_SETS:
        flags = (*flags, *COMMON_FLAGS)
        library = cache_dir() / f"{name}-{_build_key(source, compiler, flags)}.so"
        try:
            if not library.exists():
                _build(compiler, source, flags, library)
            return ctypes.CDLL(str(library))
        except (KernelBuildError, OSError) as error:
            failures.append(str(error))
    return _unavailable(source, failures[-1])


def c_compiler():
    return os.environ.get("CC") or next((found for found in map(shutil.which, ("cc", "gcc", "clang")) if found), None)


def cache_dir():
    root = os.environ.get("MINBERT_KERNEL_CACHE")
    if root is None:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hf_minbert" / "kernels"
    path = Path(root)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home: build where this process may write
        path = Path(tempfile.gettempdir()) / f"hf_minbert-kernels-{os.getuid() if hasattr(os, 'getuid') else 0}"
        path.mkdir(parents=True, exist_ok=True)
    return path


def _build_key(source, compiler, flags):
    identity = "\0".join([source.read_text(), compiler, " ".join(flags), _cpu_identity()])
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def _cpu_identity():
    """What -march=native builds for: the CPU's model and feature flags."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            lines = [line for line in cpuinfo if line.startswith(("model name", "flags", "Features", "CPU part"))]
        return "".join(sorted(set(lines)))
    except OSError:
        return f"{platform.machine()} {platform.processor()}"


def _build(compiler, source, flags, library):
    """Compile into a temporary file beside `library` and rename it into place, so that processes building
    the same kernel at once (test workers) never load a half-written one."""
    with tempfile.NamedTemporaryFile(dir=library.parent, suffix=".so", delete=False) as partial:
        partial_path = Path(partial.name)
    command = [compiler, *flags, str(source), "-o", str(partial_path), "-lm"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as error:
        partial_path.unlink(missing_ok=True)
        raise KernelBuildError(f"{' '.join(command)}: {error}") from error
    if result.returncode != 0:
        partial_path.unlink(missing_ok=True)
        first_error = next((line for line in result.stderr.splitlines() if "error" in line), result.stderr.strip())
        raise KernelBuildError(f"{compiler} {' '.join(flags)} failed: {first_error}")
    os.replace(partial_path, library)


def _unavailable(source, reason):
    warnings.warn(f"hf_minbert: cannot build the C kernel {source.name} ({reason}); using the pure-torch path",
                  stacklevel=3)
    return None
