"""Regenerate the Python code for every .proto under protos/ into libs/protos/src.

One script, so the generated code committed in libs/protos is reproducible; the test
`tests/test_protos_up_to_date.py` runs it into a temporary folder and fails on any diff.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"


def generate(out: Path) -> None:
    protos = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    package_root = out / "agentloom"
    if package_root.exists():
        shutil.rmtree(package_root)
    out.mkdir(parents=True, exist_ok=True)
    well_known = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for folder in [package_root, *[p for p in package_root.rglob("*") if p.is_dir()]]:
        (folder / "__init__.py").touch()
    (package_root / "py.typed").touch()


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "libs" / "protos" / "src")
