"""The generated code committed in libs/protos is exactly what scripts/gen_protos.py makes."""

from __future__ import annotations

import filecmp
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "libs" / "protos" / "src" / "agentloom"


def _load_generator() -> object:
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _files(root: Path) -> set[str]:
    return {
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_generated_code_matches_the_protos(tmp_path: Path) -> None:
    generator = _load_generator()
    generator.generate(tmp_path)  # type: ignore[attr-defined]
    fresh = tmp_path / "agentloom"
    assert _files(fresh) == _files(COMMITTED), "run `make protos` and commit the result"
    changed = [
        name
        for name in sorted(_files(fresh))
        if not filecmp.cmp(fresh / name, COMMITTED / name, shallow=False)
    ]
    assert changed == [], f"stale generated code, run `make protos`: {changed}"


def test_every_proto_has_generated_code() -> None:
    protos = sorted((ROOT / "protos").rglob("*.proto"))
    assert protos
    for proto in protos:
        module = proto.relative_to(ROOT / "protos").with_suffix("")
        assert (COMMITTED.parent / f"{module}_pb2.py").exists(), module
        assert (COMMITTED.parent / f"{module}_pb2_grpc.py").exists(), module
