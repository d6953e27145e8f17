"""Build minidl's Cython kernels (one extension per minidl/_kernels/*.pyx).

Metadata lives in pyproject.toml.  OpenMP is switched on only if the compiler can
build *and run* a small OpenMP program (build_tools/openmp_helpers.py); otherwise the
kernels are built without it and run on one thread.  Extra compile flags may be given
with MINIDL_EXTRA_CFLAGS (e.g. "-march=native"; not used by default so the build runs
on any CPU of the same architecture).  The .pyx files are translated to C in parallel
and the extensions compile in parallel (one job per CPU unless ``-j`` says otherwise);
each step prints one line (``pip install -v .`` shows them).  Release builds compile
without debug information (``-g0``): the machine code is the same, the build faster.

MINIDL_DEBUG_KERNELS=1 builds every kernel with Cython's bounds, wraparound and
initialisation checks, Python division semantics and ``-O0 -g`` (for the kernel tests:
tools/test_debug_kernels.sh).  Switching between the two builds regenerates everything.
"""

import glob
import os
import sys

import Cython
import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_tools.openmp_helpers import check_openmp

DEBUG = os.environ.get("MINIDL_DEBUG_KERNELS", "") not in ("", "0")

# The one place the Cython directives are set (no file sets its own).
DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
}

# Which build the generated C and the compiled extensions belong to: a switch
# between the normal and the debug build must rebuild everything.
_MODE_STAMP = os.path.join("build", "minidl_kernels_mode")
_MODE = "debug" if DEBUG else "release"


def _mode_changed():
    try:
        with open(_MODE_STAMP) as f:
            return f.read().strip() != _MODE
    except OSError:
        return DEBUG  # no stamp: a tree never built in debug mode


def _write_mode():
    os.makedirs(os.path.dirname(_MODE_STAMP), exist_ok=True)
    with open(_MODE_STAMP, "w") as f:
        f.write(_MODE + "\n")


class BuildExtWithOpenMP(build_ext):
    """build_ext that probes OpenMP with the real compiler before compiling, and
    compiles the extensions in parallel."""

    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1
        if FORCE:
            self.force = True

    def build_extensions(self):
        if self.compiler.compiler_type == "msvc":
            extra_cflags = ["/Od", "/Zi"] if DEBUG else []
        else:
            extra_cflags = ["-O0", "-g"] if DEBUG else ["-O3", "-g0"]
        extra_cflags += os.environ.get("MINIDL_EXTRA_CFLAGS", "").split()
        link_args = []
        omp = check_openmp(self.compiler)
        if omp is not None:
            extra_cflags += omp[0]
            link_args += omp[1]
        flags_text = " ".join(extra_cflags) or "none"
        for ext in self.extensions:
            ext.extra_compile_args = list(ext.extra_compile_args or []) + extra_cflags
            ext.extra_link_args = list(ext.extra_link_args or []) + link_args
            ext.define_macros = list(ext.define_macros or []) + [
                ("MINIDL_BUILD_FLAGS", f'"{flags_text}"'),
            ]
        print(
            f"minidl: compiling {len(self.extensions)} extensions, {self.parallel} at a time, "
            f"with {flags_text}",
            flush=True,
        )
        super().build_extensions()
        _write_mode()

    def build_extension(self, ext):
        target = self.get_ext_fullpath(ext.name)
        stale = self.force or _newer_group(list(ext.sources) + list(ext.depends), target)
        if stale:
            _say(f"minidl: compiling {ext.name}")
        super().build_extension(ext)
        if stale:
            _say(f"minidl: compiled {ext.name}")


def _say(line):
    # one write per line: the extensions compile in threads
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _newer_group(sources, target):
    try:
        from setuptools.modified import newer_group
    except ImportError:  # setuptools < 69
        from distutils.dep_util import newer_group
    return newer_group(sources, target, missing="newer")


# Cython >= 3.1 can put the code every module would repeat (memoryviews, fused-type
# dispatch, type conversions) into one shared extension: half the C per module to compile.
SHARED_UTILITY = "minidl._kernels._cyutility"
USE_SHARED_UTILITY = tuple(int(p) for p in Cython.__version__.split(".")[:2]) >= (3, 1)


def kernel_extensions():
    sources = sorted(glob.glob(os.path.join("minidl", "_kernels", "*.pyx")))
    # the C headers, so that editing one rebuilds the extensions
    headers = sorted(glob.glob(os.path.join("minidl", "_kernels", "*.h")))
    modules = [
        ("minidl._kernels." + os.path.splitext(os.path.basename(src))[0], src, headers)
        for src in sources
    ]
    if USE_SHARED_UTILITY:  # first: the largest, so it does not compile alone at the end
        modules.insert(0, (SHARED_UTILITY, os.path.join("minidl", "_kernels", "_cyutility.c"), []))
    return [
        Extension(
            name,
            [src],
            depends=depends,
            include_dirs=[np.get_include(), os.path.join("minidl", "_kernels")],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")],
        )
        for name, src, depends in modules
    ]


FORCE = _mode_changed()

setup(
    ext_modules=cythonize(
        kernel_extensions(),
        compiler_directives=DIRECTIVES,
        include_path=["."],
        force=FORCE,
        nthreads=os.cpu_count() or 1,
        **({"shared_utility_qualified_name": SHARED_UTILITY} if USE_SHARED_UTILITY else {}),
    ),
    cmdclass={"build_ext": BuildExtWithOpenMP},
)
