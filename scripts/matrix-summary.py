#!/usr/bin/env python3
"""Summarises the console logs of scripts/kernel-matrix.sh.

Each log contains `pidwatch check --json` documents between marker lines:
one run on the kernel's own regime ("auto") and one per forced regime.
With --line, prints one line for one log. Otherwise prints a table of all
logs and exits 1 if pidwatch failed a scenario anywhere, or if a log has
no usable run on the kernel's own regime.
"""

import json
import os
import re
import sys

BEGIN = re.compile(r"=== pidwatch-matrix begin (\S+)\s*$")
END = re.compile(r"=== pidwatch-matrix end (\S+) (\d+)\s*$")

# pidwatch exits 2 when a forced regime is newer than the kernel offers.
UNSUPPORTED = 2


def parse(path):
    """Returns {label: (exit code, document or None)} for one log."""
    runs = {}
    label, lines = None, []
    with open(path, encoding="utf-8", errors="replace") as log:
        for raw in log:
            line = raw.rstrip("\r\n")
            begin, end = BEGIN.search(line), END.search(line)
            if begin:
                label, lines = begin.group(1), []
            elif end and label == end.group(1):
                text = "\n".join(lines)
                start = text.find("{")
                try:
                    document = json.loads(text[start:]) if start >= 0 else None
                except json.JSONDecodeError:
                    document = None
                runs[label] = (int(end.group(2)), document)
                label = None
            elif label is not None:
                lines.append(line)
    return runs


def verdicts(document, layer):
    """Returns one letter per scenario: P pass, F fail, S skip."""
    letters = {"pass": "P", "fail": "F", "skip": "S"}
    return "".join(letters.get(s[layer]["verdict"], "?") for s in document["scenarios"])


def summarise(path):
    """Returns (row, ok) for one log."""
    name = os.path.basename(path)
    name = name[: -len(".log")] if name.endswith(".log") else name
    runs = parse(path)
    auto = runs.get("auto")
    if auto is None or auto[1] is None:
        return [name, "?", "?", "no result", "no result", "-"], False

    code, document = auto
    ok = code == 0 and "F" not in verdicts(document, "pidwatch")
    forced = []
    for label, (forced_code, forced_doc) in runs.items():
        if label == "auto":
            continue
        if forced_code == UNSUPPORTED:
            continue
        if forced_doc is None:
            forced.append(f"{label}: no result")
            ok = False
            continue
        letters = verdicts(forced_doc, "pidwatch")
        forced.append(f"{label}: {letters}")
        ok = ok and forced_code == 0 and "F" not in letters
    row = [
        name,
        document["kernel"],
        document["regime"]["detected"],
        verdicts(document, "kernel"),
        verdicts(document, "pidwatch"),
        ", ".join(forced) or "-",
    ]
    return row, ok


def main(argv):
    if len(argv) == 2 and argv[0] == "--line":
        row, ok = summarise(argv[1])
        print(f"{row[0]}: {row[1]}, regime {row[2]}, kernel {row[3]}, "
              f"pidwatch {row[4]}; forced regimes: {row[5]}"
              f"{'' if ok else '  << pidwatch FAILED'}")
        return 0 if ok else 1

    header = ["kernel", "release", "regime", "raw kernel", "pidwatch", "pidwatch, forced regimes"]
    rows, all_ok = [], True
    for path in argv:
        row, ok = summarise(path)
        rows.append(row)
        all_ok = all_ok and ok
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    print()
    print("Verdicts per scenario (P pass, F fail, S skip), in this order:")
    print("premature-leader-exit, exec-after-leader-exit, exec-while-leader-alive,")
    print("subthread-exit, plain-exit, plain-signal.")
    print()
    for line in [header, ["-" * w for w in widths]] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip())
    print()
    print("pidwatch matches the fixed semantics everywhere" if all_ok
          else "pidwatch departs from the fixed semantics on at least one kernel")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
