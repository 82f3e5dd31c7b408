"""The report of `make mutants`: kill rate per module and every surviving mutant, from mutmut's results.

Reads what ``mutmut run`` left in ``mutants/`` (``<module>.py.meta``: the exit code of each mutant's
tests; ``<module>.py.spans``: where each mutant's function lies in the mutated copy) and the list of
mutants judged equivalent, ``tools/mutants-equivalent.txt`` (one per line: the mutant's name, ``|``,
a one-line reason; ``#`` starts a comment). Writes ``mutants/report.md`` and prints it:

* per module: mutants, killed (a failing test, a timeout), equivalent, survived (a surviving mutant
  not listed as equivalent; a mutant no test reaches counts as survived), and the kill rate
  killed / (mutants - equivalent - not run);
* every survivor with the changed line (original -> mutant), to kill with a test or to list as
  equivalent;
* entries of the equivalent list that no longer match a surviving mutant (killed now, or renamed
  after a change to the code), to remove.

Usage: ``python tools/mutation_report.py [--mutants DIR] [--equivalent FILE] [--fail-under PCT]``.
With ``--fail-under`` the exit status is 1 when a module's kill rate is below it or a survivor is
unexplained.
"""
from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path

#: mutmut's exit codes of a mutant's test run (mutmut/stats.py), grouped for the report
KILLED = {1, 3, 24, -24, 36, 37, 152, 255}  # a failing test, pytest's internal error, timeouts, type check
SURVIVED = {0}
NO_TESTS = {5, 33}


def read_equivalent(path: Path) -> dict[str, str]:
    """``{mutant name: reason}`` from the equivalent list (missing file: none)."""
    out = {}
    if not path.exists():
        return out
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, reason = (part.strip() for part in line.partition("|"))
        if not sep or not reason:
            raise SystemExit(f"{path}:{number}: expected 'mutant name | reason', got {line!r}")
        out[name] = reason
    return out


def changed_lines(source: list[str], spans: dict, function: str) -> str:
    """The lines that differ between a mutant's function and the original, as ``old -> new``."""
    orig_key = function.rsplit("__mutmut_", 1)[0] + "__mutmut_orig"
    if function not in spans or orig_key not in spans:
        return "(source not found)"
    (a0, a1), (b0, b1) = spans[orig_key], spans[function]
    old, new = source[a0 - 1:a1], [line.replace(function, orig_key) for line in source[b0 - 1:b1]]
    removed, added = [], []
    for line in difflib.unified_diff(old, new, lineterm="", n=0):
        if line.startswith(("---", "+++", "@@")):
            continue
        (removed if line.startswith("-") else added).append(line[1:].strip())
    return f"`{' / '.join(removed)}` -> `{' / '.join(added)}`"


def collect(mutants: Path) -> dict[str, list[tuple[str, int | None, str]]]:
    """``{module path: [(mutant name, exit code, changed lines)]}`` for every mutated module."""
    out = {}
    for meta in sorted(mutants.rglob("*.py.meta")):
        module = meta.relative_to(mutants).as_posix()[: -len(".meta")]
        codes = json.loads(meta.read_text("utf-8")).get("exit_code_by_key", {})
        if not codes:
            continue
        spans_file = meta.with_name(meta.name[: -len(".meta")] + ".spans")
        spans = json.loads(spans_file.read_text("utf-8")).get("spans", {}) if spans_file.exists() else {}
        source = meta.with_name(meta.name[: -len(".meta")]).read_text("utf-8").splitlines()
        out[module] = [
            (name, code, changed_lines(source, spans, name.rsplit(".", 1)[-1]) if code in SURVIVED | NO_TESTS else "")
            for name, code in codes.items()
        ]
    return out


def report(results, equivalent: dict[str, str], fail_under: float | None):
    """The markdown report and whether it passes ``fail_under``."""
    lines = ["# Mutation testing report", "",
             "| module | mutants | killed | equivalent | survived | not run | kill rate |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    survivors, explained, ok = [], [], True
    total = {"n": 0, "killed": 0, "equivalent": 0, "survived": 0, "not run": 0}
    for module, mutants in results.items():
        c = dict.fromkeys(total, 0)
        for name, code, change in mutants:
            c["n"] += 1
            if code in KILLED:
                c["killed"] += 1
            elif code in SURVIVED | NO_TESTS and name in equivalent:
                c["equivalent"] += 1
                explained.append((name, change, equivalent[name]))
            elif code in SURVIVED | NO_TESTS:
                c["survived"] += 1
                survivors.append((name, "no test reaches it" if code in NO_TESTS else "survived", change))
            else:  # not checked, skipped, interrupted, suspicious, segfault
                c["not run"] += 1
        judged = c["n"] - c["equivalent"] - c["not run"]
        rate = 100.0 * c["killed"] / judged if judged else 100.0
        ok &= fail_under is None or rate >= fail_under
        lines.append(f"| {module} | {c['n']} | {c['killed']} | {c['equivalent']} | {c['survived']} | "
                     f"{c['not run']} | {rate:.1f} % |")
        for k in total:
            total[k] += c[k]
    judged = total["n"] - total["equivalent"] - total["not run"]
    rate = 100.0 * total["killed"] / judged if judged else 100.0
    lines.append(f"| **all** | {total['n']} | {total['killed']} | {total['equivalent']} | {total['survived']} | "
                 f"{total['not run']} | {rate:.1f} % |")
    lines += ["", f"## Survivors ({len(survivors)})", ""]
    lines += [f"- `{name}` ({why}): {change}" for name, why, change in survivors] or ["None."]
    lines += ["", f"## Equivalent ({len(explained)}, from the equivalent list)", ""]
    lines += [f"- `{name}`: {reason} ({change})" for name, change, reason in explained] or ["None."]
    seen = {name for mutants in results.values() for name, code, _ in mutants if code in SURVIVED | NO_TESTS}
    stale = sorted(set(equivalent) - seen)
    if stale:
        lines += ["", "## Stale entries of the equivalent list (killed now, or no such mutant)", ""]
        lines += [f"- `{name}`" for name in stale]
    ok &= fail_under is None or not survivors
    return "\n".join(lines) + "\n", ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--mutants", type=Path, default=Path("mutants"), help="mutmut's folder (default: mutants)")
    parser.add_argument("--equivalent", type=Path, default=Path("tools/mutants-equivalent.txt"),
                        help="mutants judged equivalent (default: tools/mutants-equivalent.txt)")
    parser.add_argument("--fail-under", type=float, default=None,
                        help="exit 1 if a module's kill rate is below this percentage or a survivor is unexplained")
    args = parser.parse_args(argv)
    results = collect(args.mutants)
    if not results:
        print(f"no mutmut results under {args.mutants}/: run `mutmut run` first", file=sys.stderr)
        return 1
    text, ok = report(results, read_equivalent(args.equivalent), args.fail_under)
    (args.mutants / "report.md").write_text(text, "utf-8")
    print(text, end="")
    print(f"(written to {args.mutants / 'report.md'})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
