"""The loop structure of a compiled XLA program and the operations each loop body runs.

    python -m experiments.benchmarks.hlo_loops purerl.hlo.txt purejaxrl.hlo.txt [--json OUT]

Input: the text of a compiled executable (``jax.jit(f).lower(...).compile().as_text()``,
which ``speed --hlo-dir`` writes for purerl and PureJaxRL). Output: every while loop,
nested as in the program, with the number of operations its body runs per trip, not counting
those of the loops nested inside it, by kind. On a GPU nearly every counted operation (a fusion,
a library call such as a matrix product, a copy, a sort) is one kernel launch, so in a program
bound by launch overhead, the per-trip count of the innermost loops (the minibatch step, the
environment step) is what its speed follows. Parameters, tuples, tuple elements, constants and
bitcasts are not counted: they launch nothing. Standard library only, so an anchor's
environment can run it too.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter

FREE = {"parameter", "get-tuple-element", "tuple", "constant", "bitcast"}
_HEADER = re.compile(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$")
_OPCODE = re.compile(r"([a-z][\w\-]*)\(")
_BODY = re.compile(r"body=%?([\w.\-]+)")
_CALLED = re.compile(r"(?:calls|to_apply)=%?([\w.\-]+)")
_BRANCHES = re.compile(
    r"(?:branch_computations=\{([^}]*)\}|true_computation=%?([\w.\-]+), "
    r"false_computation=%?([\w.\-]+))"
)
_TRIPS = re.compile(r"known_trip_count[^0-9]*(\d+)")


def computations(text: str) -> tuple[dict[str, list[str]], str]:
    """{computation name: its instruction lines}, and the entry computation's name."""
    comps: dict[str, list[str]] = {}
    entry, current = "", None
    for line in text.splitlines():
        if not line.startswith((" ", "}")):
            match = _HEADER.match(line)
            if match:
                current = match.group(1)
                comps[current] = []
                entry = current if line.startswith("ENTRY") else entry
                continue
        if line.startswith("}"):
            current = None
        elif current is not None and "=" in line:
            comps[current].append(line.strip())
    return comps, entry


def opcode(line: str) -> str:
    """The opcode of one instruction line, `[ROOT] %name = TYPE opcode(operands), ...`;
    TYPE may be a tuple with nested parentheses and `/*index=5*/` comments."""
    rest = line.split("=", 1)[1].lstrip() if "=" in line else line
    if rest.startswith("("):
        depth = 0
        for i, char in enumerate(rest):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0:
                rest = rest[i + 1 :]
                break
    else:
        rest = rest.split(" ", 1)[1] if " " in rest else ""
    match = _OPCODE.match(rest.lstrip())
    return match.group(1) if match else "?"


def branches(line: str) -> list[str]:
    """The branch computations of a conditional line, in either of XLA's two spellings."""
    match = _BRANCHES.search(line)
    if match is None:
        return []
    if match.group(1) is not None:
        return [name.strip().lstrip("%") for name in match.group(1).split(",")]
    return [match.group(2), match.group(3)]


def loop_tree(text: str) -> list[dict]:
    """Every while loop in program order: depth (1 = outermost), per-trip operation count of
    its own body (calls inlined; of a conditional, its largest branch), the count by kind, XLA's
    known trip count where it has one. The entry computation comes first, as depth 0."""
    comps, entry = computations(text)
    rows: list[dict] = []

    def own_ops(name: str, seen: frozenset) -> tuple[Counter, list[tuple[str, str]]]:
        """Operations of one computation with called non-loop computations inlined; and the
        (body, while line) of the loops it starts."""
        counts, loops = Counter(), []
        for line in comps.get(name, []):
            op = opcode(line)
            if op == "while":
                loops.append((_BODY.search(line).group(1), line))
                continue
            if op in ("call", "conditional"):
                # A call runs its computation; a conditional runs one of its branches, counted
                # as the largest (an upper bound per trip). Loops in any branch are listed.
                called = _CALLED.findall(line) if op == "call" else branches(line)
                inlined = [own_ops(c, seen | {c}) for c in called if c in comps and c not in seen]
                if inlined:
                    counts += max((sub for sub, _ in inlined), key=lambda c: sum(c.values()))
                    loops += [loop for _, sub_loops in inlined for loop in sub_loops]
                continue
            if op not in FREE:
                counts[op] += 1
        return counts, loops

    def visit(name: str, depth: int, trips: int | None) -> None:
        counts, loops = own_ops(name, frozenset({name}))
        rows.append(
            {
                "loop": name,
                "depth": depth,
                "trips": trips,
                "ops_per_trip": sum(counts.values()),
                "by_kind": dict(counts.most_common()),
            }
        )
        for body, line in loops:
            match = _TRIPS.search(line)
            visit(body, depth + 1, int(match.group(1)) if match else None)

    visit(entry, 0, 1)
    return rows


def launches_per_update(rows: list[dict], update_depth: int = 1) -> int:
    """Kernels one trip of the loop at `update_depth` launches: its own body's operations and
    every loop's inside it, each times its trips per update (the product of its own and its
    enclosing loops' trip counts below the update loop). An asynchronous fusion's
    `fusion-done` only waits, so it is not counted; a conditional counts its largest branch
    (`loop_tree`). The first loop at that depth is taken, with the loops nested in it; a loop
    whose trip count XLA does not know counts once."""
    start = next(i for i, row in enumerate(rows) if row["depth"] == update_depth)
    total, runs = 0, []  # runs[k]: trips per update of the enclosing loop k levels down
    for row in rows[start:]:
        if row["depth"] < update_depth or (row["depth"] == update_depth and runs):
            break
        del runs[row["depth"] - update_depth :]
        own = 1 if row["depth"] == update_depth else (row["trips"] or 1)
        runs.append(own * (runs[-1] if runs else 1))
        total += (row["ops_per_trip"] - row["by_kind"].get("fusion-done", 0)) * runs[-1]
    return total


def format_tree(rows: list[dict]) -> str:
    lines = []
    for row in rows:
        kinds = ", ".join(f"{k} {v}" for k, v in list(row["by_kind"].items())[:5])
        trips = "?" if row["trips"] is None else row["trips"]
        lines.append(
            f"{'  ' * row['depth']}{row['ops_per_trip']:5d} ops x {trips} trips  ({kinds})"
        )
    return "\n".join(lines)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("programs", nargs="+", help="compiled HLO text files")
    p.add_argument("--json", help="write {file: loop tree} here")
    args = p.parse_args(argv)
    result = {}
    for path in args.programs:
        with open(path) as f:
            result[path] = loop_tree(f.read())
        print(f"== {path}\n{format_tree(result[path])}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
