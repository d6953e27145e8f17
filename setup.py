"""Build minidl's Cython kernels (one extension per minidl/_kernels/*.pyx).

Metadata lives in pyproject.toml.  OpenMP is switched on only if the compiler can
build *and run* a small OpenMP program (build_tools/openmp_helpers.py); otherwise the
kernels are built without it and run on one thread.  Extra compile flags may be given
with MINIDL_EXTRA_CFLAGS (e.g. "-march=native"; not used by default so the build runs
on any CPU of the same architecture).
"""

import glob
import os
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_tools.openmp_helpers import check_openmp


class BuildExtWithOpenMP(build_ext):
    """build_ext that probes OpenMP with the real compiler before compiling."""

    def build_extensions(self):
        extra_cflags = [] if self.compiler.compiler_type == "msvc" else ["-O3"]
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
        super().build_extensions()


def kernel_extensions():
    sources = sorted(glob.glob(os.path.join("minidl", "_kernels", "*.pyx")))
    # the C headers, so that editing one rebuilds the extensions
    headers = sorted(glob.glob(os.path.join("minidl", "_kernels", "*.h")))
    return [
        Extension(
            "minidl._kernels." + os.path.splitext(os.path.basename(src))[0],
            [src],
            depends=headers,
            include_dirs=[np.get_include(), os.path.join("minidl", "_kernels")],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")],
            language="c",
        )
        for src in sources
    ]


setup(
    ext_modules=cythonize(
        kernel_extensions(),
        compiler_directives={"language_level": 3},
        include_path=["."],
    ),
    cmdclass={"build_ext": BuildExtWithOpenMP},
)
