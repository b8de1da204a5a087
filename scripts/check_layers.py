#!/usr/bin/env python3
"""No import cycle in src/: the modules stand in floors, each importing only from floors below it.

Two graphs are checked, both built from the paths the code names (`use crate::…`, `crate::x::…`,
`use super::…`), test modules left out:
  1. between the crate's top-level modules (src/x.rs or src/x/), so that, for instance, nothing below the
     command layer imports `exit`, which imports the typed errors of the floors below it;
  2. within each folder, between its files other than mod.rs (a folder's mod.rs re-exporting its rooms, and
     the rooms using what mod.rs defines, is how a Rust module is built, not a cycle).
Exit 1 naming each cycle and the names that tie it.
"""

import re
import sys
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PATH = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super)::\{([^;]*)\};", re.S)


def without_tests(text: str) -> str:
    """The code before the test module, which may import anything."""
    match = re.search(r"#\[cfg\(test\)\]\s*mod tests\b", text)
    return text[: match.start()] if match else text


def module_of(path: Path) -> list[str]:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def paths_named(text: str, module: list[str]) -> list[list[str]]:
    """Every module path the text names, made absolute (from the crate's root)."""
    named = []

    def absolute(root: str, rest: list[str]) -> list[str]:
        return rest if root == "crate" else module[:-1] + rest

    for root, group in USE_GROUP.findall(text):
        for item in re.split(r",(?![^{]*\})", group):
            item = re.sub(r"\{.*\}", "", item, flags=re.S).strip()
            if item:
                named.append(absolute(root, [p for p in item.split("::") if p]))
    for root, rest in PATH.findall(text):
        named.append(absolute(root, rest.strip(":").split("::")))
    return named


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for other in sorted(graph.get(node, ())):
            if state.get(other) == 1:
                return stack[stack.index(other) :] + [other]
            if other not in state and (found := visit(other)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def main() -> int:
    files = {tuple(module_of(p)): p for p in SRC.rglob("*.rs") if p.parent.name != "bin"}
    top: dict[str, set[str]] = defaultdict(set)
    folder: dict[str, set[str]] = defaultdict(set)
    why: dict[tuple[str, str], set[str]] = defaultdict(set)
    for module, path in files.items():
        if not module:
            continue
        for named in paths_named(without_tests(path.read_text()), list(module)):
            # The longest prefix of the path that is a file of the crate is the module depended on.
            target = next(
                (tuple(named[:n]) for n in range(len(named), 0, -1) if tuple(named[:n]) in files), None
            )
            if target is None or target == module:
                continue
            if target[0] != module[0]:
                top[module[0]].add(target[0])
                why[(module[0], target[0])].add("::".join(named))
            elif len(module) == len(target) >= 2 and module[:-1] == target[:-1]:
                a, b = "/".join(module), "/".join(target)
                folder[a].add(b)
                why[(a, b)].add("::".join(named))
    failed = False
    for name, graph in (("top-level modules", top), ("files of one folder", folder)):
        cycle = find_cycle(graph)
        if cycle:
            failed = True
            print(f"check_layers: an import cycle between {name}:", file=sys.stderr)
            for a, b in zip(cycle, cycle[1:]):
                print(f"  {a} -> {b}: {', '.join(sorted(why[(a, b)]))}", file=sys.stderr)
    if failed:
        print("check_layers: move what both need to a lower floor, or the decision up", file=sys.stderr)
        return 1
    print(f"check_layers: no import cycle among {len(top)} top-level modules and the files of each folder")
    return 0


if __name__ == "__main__":
    sys.exit(main())
