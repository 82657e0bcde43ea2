"""`make bench`: run every benchmark module in bench/ and print one table of measured figures.

Each module `bench/<name>.py` exposes `run() -> list[dict]`; each row has the keys
`benchmark`, `measured`, `target` and `ok` (bool or None), plus optional `notes`.
Select modules with `BENCH=metering,entitlements make bench`.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main() -> int:
    import django

    django.setup()
    wanted = [w for w in os.environ.get("BENCH", "").split(",") if w]
    modules = sorted(
        p.stem for p in HERE.glob("*.py") if p.stem not in {"run", "__init__"} and not p.stem.startswith("_")
    )
    if wanted:
        modules = [m for m in modules if m in wanted]
    rows: list[dict] = []
    failed = False
    for name in modules:
        started = time.monotonic()
        print(f"== bench/{name}.py", flush=True)
        try:
            module = importlib.import_module(f"bench.{name}")
            rows.extend(module.run())
        except Exception as exc:  # a broken benchmark is reported, the others still run
            failed = True
            rows.append({"benchmark": name, "measured": f"ERROR: {exc}", "target": "", "ok": False})
        print(f"   done in {time.monotonic() - started:.1f}s", flush=True)
    print_table(rows)
    return 1 if failed else 0


def print_table(rows: list[dict]) -> None:
    headers = ["benchmark", "measured", "target", "ok", "notes"]
    cells = [
        [
            str(r.get(h, "")) if h != "ok" else {True: "yes", False: "NO", None: "-"}[r.get("ok")]
            for h in headers
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    print()
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for c in cells:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)) + " |")


if __name__ == "__main__":
    sys.exit(main())
