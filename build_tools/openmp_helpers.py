"""Decide at build time whether the kernels can be compiled with OpenMP.

The test is practical rather than declarative: with the very compiler setuptools is
about to use for the extensions, build a tiny OpenMP program, link it and run it.
Only if all three steps succeed (and the program reports it ran in parallel regions)
are the OpenMP flags added.  Otherwise the kernels are built without them -- the
``prange`` loops then run serially and ``minidl.info`` reports "OpenMP: no".

Set ``MINIDL_NO_OPENMP=1`` to force a build without OpenMP.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

_TEST_PROGRAM = textwrap.dedent(
    """\
    #include <omp.h>
    #include <stdio.h>

    int main(void) {
        int seen = 0;
        #pragma omp parallel reduction(+:seen)
        seen += 1;
        printf("openmp threads=%d\\n", seen);
        return seen >= 1 ? 0 : 1;
    }
    """
)


def openmp_flags(compiler):
    """Compile and link flags that switch OpenMP on for this compiler."""
    if sys.platform == "win32" and compiler.compiler_type == "msvc":
        return ["/openmp"], []
    if sys.platform == "darwin" and "openmp" in os.environ.get("CPPFLAGS", ""):
        # Apple clang: the user passes -Xpreprocessor -fopenmp through CPPFLAGS and
        # -lomp through LDFLAGS themselves; nothing to add here.
        return [], []
    return ["-fopenmp"], ["-fopenmp"]


def check_openmp(compiler, verbose=True):
    """Return (compile_args, link_args) for OpenMP, or None when it does not work.

    ``compiler`` is a distutils/setuptools CCompiler already customised for this
    Python (build_ext.compiler inside build_ext.build_extensions).
    """
    if os.environ.get("MINIDL_NO_OPENMP", "") not in ("", "0"):
        _warn("MINIDL_NO_OPENMP is set: building the kernels without OpenMP.")
        return None
    compile_args, link_args = openmp_flags(compiler)
    extra_cppflags = os.environ.get("CPPFLAGS", "").split()
    extra_ldflags = os.environ.get("LDFLAGS", "").split()
    workdir = tempfile.mkdtemp(prefix="minidl_openmp_check_")
    old_cwd = os.getcwd()
    try:
        os.chdir(workdir)
        with open("check_openmp.c", "w") as f:
            f.write(_TEST_PROGRAM)
        objects = compiler.compile(
            ["check_openmp.c"],
            output_dir="objs",
            extra_postargs=compile_args + extra_cppflags,
        )
        exe = os.path.join(workdir, "check_openmp" + (".exe" if sys.platform == "win32" else ""))
        compiler.link_executable(
            objects,
            "check_openmp",
            output_dir=workdir,
            extra_postargs=link_args + extra_ldflags,
        )
        out = subprocess.run([exe], capture_output=True, text=True, timeout=60)
        ok = out.returncode == 0 and "openmp threads=" in out.stdout
    except Exception as exc:  # CompileError, LinkError, OSError, timeouts: all mean "no"
        ok = False
        reason = f"{type(exc).__name__}: {exc}"
    else:
        reason = "" if ok else f"test program failed (exit {out.returncode}): {out.stderr.strip()}"
    finally:
        os.chdir(old_cwd)
        shutil.rmtree(workdir, ignore_errors=True)

    if ok:
        if verbose:
            print(f"minidl: OpenMP works with this compiler; building with {compile_args}")
        return compile_args, link_args
    _warn(
        "This compiler could not build and run an OpenMP test program "
        f"({reason.splitlines()[0] if reason else 'unknown reason'}).\n"
        "minidl's kernels are built WITHOUT OpenMP and will run on one thread.\n"
        "On macOS with Apple clang, install libomp (brew install libomp) and set e.g.\n"
        "  CPPFLAGS='-Xpreprocessor -fopenmp -I$(brew --prefix libomp)/include'\n"
        "  LDFLAGS='-L$(brew --prefix libomp)/lib -lomp'\n"
        "then reinstall."
    )
    return None


def _warn(message):
    bar = "*" * 78
    print(f"\n{bar}\nminidl WARNING: {message}\n{bar}\n", file=sys.stderr)
