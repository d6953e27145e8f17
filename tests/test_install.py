"""A minidl source tree without compiled kernels says so on import, and what to do."""

import shutil
import subprocess
import sys
from pathlib import Path

import minidl


def test_unbuilt_source_tree_import_error_says_what_to_do(tmp_path):
    source = Path(minidl.__file__).parent
    shutil.copytree(
        source, tmp_path / "minidl", ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__")
    )
    assert not list((tmp_path / "minidl").rglob("*.so"))
    proc = subprocess.run(
        [sys.executable, "-c", "import minidl"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: minidl's compiled kernels are not built in")
    assert str(tmp_path / "minidl" / "_kernels") in last
    assert "pip install -e ." in last and "build_ext --inplace" in last
    assert "another folder" in last
    assert "No module named" not in proc.stderr
