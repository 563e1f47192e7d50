"""The host's CPU by command name while another command runs: where a burst's CPU goes on the test
bed, every kind node's processes included (they are this host's processes). A profile, not a test.

    .venv/bin/python tests/bench/host_cpu.py -- .venv/bin/python tests/bench/bench_jobs.py \
        --modes sandboxjob-cold --sequential 0 --burst 50 --out /tmp/cold

Needs root and the Debian package `acct` (`accton`, `dump-acct`). Processes alive at the end are
counted by what their /proc/PID/stat gained over the run (all their threads; a PID reused during
the run is told apart by its start time); processes that ended during the run (a sandbox Pod's
Python, runc, `ls`) by the kernel's process accounting, which records each one's CPU as it exits.
A process that was alive at the start and ended during the run is counted whole: negligible for
a burst of short Pods, not for a long-lived daemon that restarts. Interrupt and kernel-thread time
outside any process is not counted; /proc/stat's total is printed beside the sum for comparison.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import tempfile
import time

HZ = os.sysconf("SC_CLK_TCK")
ACCT_HZ = 100  # dump-acct's units for utime and stime


def processes() -> dict[tuple[str, str], tuple[str, float]]:
    """(pid, start time) -> (command name, CPU seconds so far) for every process now alive."""
    seen = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                text = stat.read()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()  # from field 3 (state) on
        seen[(pid, fields[19])] = (name, (int(fields[11]) + int(fields[12])) / HZ)
    return seen


def host_busy_seconds() -> float:
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq, *_ = (int(v) for v in stat.readline().split()[1:])
    return (user + nice + system + irq + softirq) / HZ


def ended(accounting: str) -> collections.Counter[str]:
    by_name: collections.Counter[str] = collections.Counter()
    dump = subprocess.run(["dump-acct", accounting], capture_output=True, text=True, check=True).stdout
    for line in dump.splitlines():
        parts = [part.strip() for part in line.split("|")]
        if len(parts) > 3:
            by_name[parts[0]] += (float(parts[2]) + float(parts[3])) / ACCT_HZ
    return by_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, default=20, help="how many command names to print")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run (after --)")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    with tempfile.NamedTemporaryFile(prefix="host-cpu-", suffix=".acct") as accounting:
        before, busy, start = processes(), host_busy_seconds(), time.monotonic()
        subprocess.run(["accton", accounting.name], check=True, stdout=subprocess.DEVNULL)
        try:
            subprocess.run(command)
        finally:
            subprocess.run(["accton", "off"], check=True, stdout=subprocess.DEVNULL)
        after, busy, seconds = processes(), host_busy_seconds() - busy, time.monotonic() - start
        by_name = ended(accounting.name)
    for key, (name, cpu) in after.items():
        by_name[name] += cpu - before.get(key, (name, 0.0))[1]
    print(f"\nhost CPU over {seconds:.1f} s: {busy:.1f} CPU-s (/proc/stat), "
          f"{sum(by_name.values()):.1f} CPU-s counted by command name:")
    for name, cpu in by_name.most_common(args.top):
        print(f"{cpu:9.2f}  {name}")


if __name__ == "__main__":
    main()
