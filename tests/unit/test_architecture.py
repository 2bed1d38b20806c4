"""The rooms of docs/ARCHITECTURE.md and the rule for each arrow, checked on the source.

Every module of ``python/relgate`` belongs to one room; an import from one room into another is
allowed only where the table below (the same as the document's) says so, and no module may take
part in an import circle (type-only imports count: move the type instead).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "python" / "relgate"

# Top-level modules and packages that hold domain values and pure decisions.
DOMAIN = {
    "access", "answers", "attest", "canonical", "data", "datasets", "documents", "engines",
    "errors", "gate", "intoto", "judge", "manifest", "merkle", "prompt", "receipts", "rollout",
    "routing", "stats", "suite", "traces", "_native",
}  # fmt: skip
FACES = {"cli", "dashboard", "demo", "bench", "worker", "scale", "testing", "__main__"}
# room -> the rooms it may import (besides itself).
ALLOWED: dict[str, set[str]] = {
    "domain": set(),
    "store": {"domain"},
    "gateway": {"domain"},
    "app": {"domain", "store", "gateway"},
    "wire": {"domain", "_proto"},
    "client": {"domain", "wire", "_proto"},
    "service": {"domain", "store", "gateway", "app", "wire", "_proto"},
    "face": {"domain", "store", "gateway", "app", "wire", "service", "client", "_proto", "face"},
    "package": {"domain"},
}


def room(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "package"
    head = parts[1]
    if head in DOMAIN:
        return "domain"
    if head in FACES:
        return "face"
    return head


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        if "_proto" in rel.parts:
            continue
        name = ".".join(rel.parts)
        out[name.removesuffix(".__init__")] = path
    return out


def imports(path: Path, module: str, known: dict[str, Path]) -> set[str]:
    """The relgate modules ``module`` imports (from-imports resolved to the module named)."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                native = full == "relgate._native"  # the extension module (not a .py file)
                found.add(full if full in known or native else base)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.startswith("relgate")}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {m: imports(p, m, known) for m, p in known.items()}


def test_every_arrow_is_allowed() -> None:
    bad = []
    for module, targets in graph().items():
        mine = room(module)
        for target in targets:
            # The package itself exports domain values only (its version, the manifest, ...).
            theirs = "_proto" if "._proto" in target else room(target).replace("package", "domain")
            if theirs != mine and theirs not in ALLOWED[mine]:
                bad.append(f"{module} ({mine}) -> {target} ({theirs})")
    assert not bad, "arrows the architecture does not allow:\n" + "\n".join(sorted(bad))


def test_no_import_circle() -> None:
    edges = graph()
    packages = {m for m in edges if any(k.startswith(m + ".") for k in edges)}
    # A package's __init__ re-exporting its own modules is not a circle between rooms.
    deps = {
        m: {t for t in ts if t in edges and t not in packages and t != m} for m, ts in edges.items()
    }
    state: dict[str, int] = {}
    circles: list[str] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(deps[node]):
            if state.get(nxt) == 1:
                circles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for module in sorted(deps):
        if module not in state:
            visit(module, [module])
    assert not circles, "import circles:\n" + "\n".join(circles[:10])


def test_the_rooms_are_the_documented_ones() -> None:
    # A new top-level module or package must be given a room here and in the document.
    tops = {p.stem for p in PACKAGE.glob("*.py")} | {
        p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()
    }
    rooms = DOMAIN | FACES | set(ALLOWED) | {"__init__", "_proto"}
    assert tops <= rooms, sorted(tops - rooms)
    doc = (PACKAGE.parents[1] / "docs" / "ARCHITECTURE.md").read_text()
    for name in sorted(tops - {"__init__", "__main__", "_native", "_proto"}):
        placed = f"`{name}" in doc or f"**{name}**" in doc
        assert placed, f"docs/ARCHITECTURE.md does not place {name}"
