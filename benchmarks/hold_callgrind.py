"""Instructions per call of hold_reserve.lua variants, under callgrind:
`python -m benchmarks.hold_callgrind [--variant fn:work ...] [-n 500]`.

Deterministic where benchmarks/hold_profile.py's times are not (the machine is shared): the
embedded store (fsync always, `harness.configure()`) runs under `valgrind --tool=callgrind`
with instrumentation off; for each variant in turn (the variants of hold_profile.py: `fn:work`,
`fn:git:REV`, `keyed:fn:work`, `floor`, a file, ...) it is switched on, `-n` holds are sent
pipelined, and it is switched off again, each variant's profile dumped on its own. Prints the
instructions per call (the server's whole work for a call: reading the request, the script,
its commands, the AOF write; not the fsync's kernel time) and, with `--annotate`,
callgrind_annotate's inclusive breakdown of each. Needs valgrind.
"""

from __future__ import annotations

import argparse
import os
import re
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from app import keys
from app.store.embedded import EmbeddedStore, find_server_binary
from benchmarks import harness as h
from benchmarks.hold_profile import _ok, floor_argv, hold_argv_of, load


def _wrapper(tmp: Path, out: Path) -> str:
    """A `valkey-server` that runs the real one under callgrind, instrumentation off."""
    path = tmp / "valkey-server-callgrind"
    path.write_text(
        "#!/bin/sh\n"
        f"exec valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file={out} "
        f'--dump-instr=no "{find_server_binary()}" "$@"\n'
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def _total(profile: Path) -> int:
    """The instructions of a callgrind dump (its `totals:` line)."""
    text = profile.read_text()
    found = re.search(r"^totals: (\d+)", text, re.M)
    return int(found.group(1)) if found else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", dest="variants", action="append")
    parser.add_argument("-n", type=int, default=500, help="calls per variant")
    parser.add_argument("--annotate", action="store_true", help="print each inclusive profile")
    parser.add_argument("--keep", type=Path, help="directory to keep the dumps in")
    args = parser.parse_args()
    variants = args.variants or ["fn:work", "floor"]
    with tempfile.TemporaryDirectory(prefix="omnistock-callgrind-") as tmp_name:
        tmp = args.keep or Path(tmp_name)
        tmp.mkdir(parents=True, exist_ok=True)
        out = tmp / "callgrind.out"
        s = EmbeddedStore(tmp / "data", binary=_wrapper(tmp, out), supervise=False)
        s.start(timeout=120)
        pid = s.pid
        assert pid is not None
        dumps: dict[str, Path] = {}
        try:
            r = h.client(s)
            h.configure(r)
            for k, v in enumerate(variants):
                command, sha = load(r, v)
                sku = f"SKU-CALLGRIND-{k}"
                p = keys.partition_of(sku)
                mapping: dict[Any, Any] = {
                    loc: f"1000000000:0:0:{j % 2}" for j, loc in enumerate(h.LOCATIONS)
                }
                r.hset(keys.position(p, sku), mapping=mapping)
                # the floor, or a file named floor*.lua: a cut of it (floor_argv's arguments)
                floor = Path(v.removeprefix("fn:")).name.startswith("floor")
                make = floor_argv if floor else hold_argv_of(v)
                for i in range(50):  # warm: the keys exist, the stream has entries
                    assert _ok(r.execute_command(command, *make(sha, sku, f"w{k}-{i}")))
                before = set(tmp.glob("callgrind.out*"))
                _control(pid, "--instr=on")
                pipe = r.pipeline(transaction=False)
                for i in range(args.n):
                    pipe.execute_command(command, *make(sha, sku, f"c{k}-{i}"))
                    if len(pipe) == 50:
                        assert all(_ok(x) for x in pipe.execute())
                pipe.execute()
                _control(pid, "--instr=off")
                _control(pid, "--dump")
                new = sorted(set(tmp.glob("callgrind.out*")) - before, key=os.path.getmtime)
                dumps[v] = new[-1]
            r.close()
        finally:
            s.stop(timeout=120)
        for v, dump in dumps.items():
            print(f"{v:40s} {_total(dump) / args.n:12,.0f} instructions a call")
        if args.annotate:
            for v, dump in dumps.items():
                print(f"\n==== {v}")
                annotated = subprocess.run(
                    ["callgrind_annotate", "--inclusive=yes", "--threshold=99", str(dump)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                print(annotated.stdout)


if __name__ == "__main__":
    main()
