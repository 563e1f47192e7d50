"""The pure half of `make bench-jobs` (tests/bench/bench_jobs.py): from what was observed per job
to percentiles, the JSON report, the printed table and the plot. Nothing here talks to a cluster,
so tests/unit/test_bench_jobs_report.py checks it all.

A job's timeline is a handful of instants on this machine's monotonic clock, each the moment a watch
event arrived here (not the API server's one-second timestamps), plus the kubelet's own `startedAt`
of the command's container, kept beside it because it is what the cluster itself says:

    applied      the create request was sent
    pod          the first Pod watch event of the job's Pod (bare Pod: of the Pod itself)
    started      the first Pod event whose command container (runner / main) is running or has ended
    final        the SandboxJob event whose status.phase is final (bare Pod: the Pod's Succeeded or
                 Failed; exec: the exec call returned)
    startedStamp the container's state.*.startedAt, one-second resolution, on the wall clock
    egressWait   status.egressCheckMs: the runner's own wait for the egress proof, part of
                 started → final

Percentiles are nearest-rank (the smallest value with at least that fraction of samples at or
below it): with 20 samples p99 is the maximum, and no value is ever interpolated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

SCHEMA = "safeagent.ca/bench-jobs/v1"
MODES = ("bare-pod", "sandboxjob-cold", "sandboxjob-warm", "sandboxjob-approved", "exec")
WARM = "sandboxjob-warm"
# A mode whose instants count from a person's approval, not from the apply (bench_jobs.py).
FROM_APPROVAL = "sandboxjob-approved"
# The phases every run reports, in the table's order; a mode without one reports null.
PHASES = ("pod", "started", "final", "startedStamp", "egressWait")
PHASE_TITLES = {
    "pod": "apply → Pod",
    "started": "apply → started",
    "final": "apply → final",
    "startedStamp": "apply → started (kubelet stamp)",
    "egressWait": "egress proof wait",
}
QUANTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    if not values:
        raise ValueError("no values")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction {fraction} not in (0, 1]")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def stats(values: list[float]) -> dict[str, Any] | None:
    """n, p50, p90, p99 and max in seconds (millisecond precision), or None for no values."""
    if not values:
        return None
    summary: dict[str, Any] = {"n": len(values)}
    for name, fraction in QUANTILES:
        summary[name] = round(percentile(values, fraction), 3)
    summary["max"] = round(max(values), 3)
    return summary


def sample_sum(text: str, name: str, labels: dict[str, str] | None = None) -> float | None:
    """The sum of every sample of metric `name` in Prometheus text exposition whose labels include
    `labels` (None: no such sample). Timestamps after the value are not expected (neither the API
    server nor prometheus_client writes them)."""
    total, found = 0.0, False
    wanted = [f'{key}="{value}"' for key, value in (labels or {}).items()]
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, label_text = head.partition("{")
        if metric != name or not all(pair in label_text for pair in wanted):
            continue
        try:
            total += float(value)
        except ValueError:
            continue
        found = True
    return total if found else None


@dataclass
class Timeline:
    """What was observed of one job (see the module docstring); None: never observed."""

    applied: float
    applied_wall: float
    pod: float | None = None
    started: float | None = None
    final: float | None = None
    started_stamp_wall: float | None = None
    egress_ms: int | None = None
    outcome: str | None = None
    pod_uids: set[str] = field(default_factory=set)

    def durations(self) -> dict[str, float | None]:
        def since(instant: float | None) -> float | None:
            return None if instant is None else instant - self.applied

        stamp = None if self.started_stamp_wall is None else self.started_stamp_wall - self.applied_wall
        return {
            "pod": since(self.pod),
            "started": since(self.started),
            "final": since(self.final),
            "startedStamp": stamp,
            "egressWait": None if self.egress_ms is None else self.egress_ms / 1000,
        }


def summarize_run(mode: str, scenario: str, timelines: list[Timeline], counts_pods: bool,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One run (a mode and a scenario): percentiles per phase over the jobs that finished, the
    makespan (first apply to last final), the lost (never final) and the duplicated (more than one
    Pod seen for one job; null where the mode creates no Pod per job)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode}")
    finished = [timeline for timeline in timelines if timeline.final is not None]
    samples: dict[str, list[float]] = {phase: [] for phase in PHASES}
    for timeline in finished:
        for phase, value in timeline.durations().items():
            if value is not None:
                samples[phase].append(value)
    makespan = None
    if finished:
        makespan = round(max(t.final for t in finished if t.final is not None)
                         - min(t.applied for t in timelines), 3)
    outcomes: dict[str, int] = {}
    for timeline in finished:
        outcomes[timeline.outcome or "unknown"] = outcomes.get(timeline.outcome or "unknown", 0) + 1
    return {
        "mode": mode,
        "scenario": scenario,
        "jobs": len(timelines),
        "makespanSeconds": makespan,
        "lost": len(timelines) - len(finished),
        "duplicated": sum(1 for t in timelines if len(t.pod_uids) > 1) if counts_pods else None,
        "outcomes": outcomes,
        "phases": {phase: stats(values) for phase, values in samples.items()},
        "samples": {phase: [round(value, 3) for value in values] for phase, values in samples.items() if values},
        **(extra or {}),
    }


def report(machine: dict[str, Any], options: dict[str, Any], runs: list[dict[str, Any]],
           operator: dict[str, Any], policy: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole JSON document (docs/bench/latest.json)."""
    return {"schema": SCHEMA, "machine": machine, "options": options, "runs": runs,
            "operator": operator, "policy": policy}


def _cell(summary: dict[str, Any] | None, keys: tuple[str, ...] = ("p50", "p90", "p99")) -> str:
    if summary is None:
        return "–"
    return " / ".join(f"{summary[key]:.2f}" for key in keys)


def _milliseconds(summary: dict[str, Any] | None) -> str:
    if summary is None:
        return "–"
    return f"{summary['p50'] * 1000:.0f} / {summary['p99'] * 1000:.0f} ms"


def _number(value: float | int | None, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.1f}{unit}"
    return f"{value}{unit}"


def format_table(runs: list[dict[str, Any]]) -> str:
    """The runs as a Markdown table: seconds, p50 / p90 / p99 per phase."""
    header = ["mode", "run", "jobs", "apply → Pod", "apply → started", "apply → final",
              "egress wait p50 / p99", "makespan", "lost", "dup.", "per job: API requests (all / operator), operator CPU"]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] * len(header)) + " |"]
    for run in runs:
        phases = run["phases"]
        per_job = run.get("perJob") or {}
        costs = "–"
        if per_job:
            costs = (f"{_number(per_job.get('apiserverRequests'))} / {_number(per_job.get('operatorRequests'))}, "
                     f"{_number(per_job.get('operatorCpuMs'), ' ms')}")
        mode = run["mode"] + (f" ({run['warmJobs']} warm)" if "warmJobs" in run else "")
        lines.append("| " + " | ".join([
            mode, run["scenario"], str(run["jobs"]),
            _cell(phases["pod"]), _cell(phases["started"]), _cell(phases["final"]),
            _milliseconds(phases["egressWait"]),
            _number(run["makespanSeconds"], " s"), str(run["lost"]),
            "–" if run["duplicated"] is None else str(run["duplicated"]), costs,
        ]) + " |")
    return "\n".join(lines)


def format_operator(operator: dict[str, Any]) -> str:
    """One line on the operator's own cost over the run."""
    parts = []
    if operator.get("cpuSeconds") is not None:
        parts.append(f"CPU {operator['cpuSeconds']:.1f} s")
    if operator.get("peakRssMiB") is not None:
        parts.append(f"peak RSS {operator['peakRssMiB']:.1f} MiB")
    if operator.get("cgroup"):
        cgroup = operator["cgroup"]
        parts.append(f"cgroup CPU {cgroup.get('cpuSeconds', 0):.1f} s, cgroup peak memory "
                     f"{cgroup.get('maxUsageMiB', 0):.1f} MiB since the container started")
    return "operator over the run: " + (", ".join(parts) if parts else "not measured")


def plot(document: dict[str, Any], path: str) -> None:
    """Per-phase latency distributions per mode, one panel per scenario, log scale (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    scenarios = list(dict.fromkeys(run["scenario"] for run in document["runs"]))
    figure, axes = pyplot.subplots(1, max(1, len(scenarios)), figsize=(6 * max(1, len(scenarios)), 5.5),
                                   squeeze=False, sharex=True)
    colours = {"bare-pod": "#4c72b0", "sandboxjob-cold": "#dd8452", "sandboxjob-warm": "#8172b3",
               "sandboxjob-approved": "#c44e52", "exec": "#55a868"}
    for axis, scenario in zip(axes[0], scenarios, strict=False):
        data, labels, colour_of = [], [], []
        for run in document["runs"]:
            if run["scenario"] != scenario:
                continue
            for phase in ("pod", "started", "final", "egressWait"):
                values = run["samples"].get(phase)
                if values:
                    data.append([max(value, 0.001) for value in values])
                    labels.append(f"{run['mode']}\n{PHASE_TITLES[phase]}")
                    colour_of.append(colours[run["mode"]])
        if not data:
            continue
        boxes = axis.boxplot(data, orientation="horizontal", patch_artist=True, whis=(1, 99), showfliers=True)
        for patch, colour in zip(boxes["boxes"], colour_of, strict=True):
            patch.set_facecolor(colour)
        axis.set_yticks(range(1, len(labels) + 1), labels, fontsize=7)
        axis.invert_yaxis()  # the first mode on top
        axis.set_xscale("log")
        axis.set_xlabel("seconds (log)")
        axis.set_title(scenario)
        axis.grid(axis="x", which="both", alpha=0.3)
    machine = document.get("machine", {})
    figure.suptitle(f"`ls -la` per command: bare Pod, SandboxJob (cold), exec into a running Pod\n"
                    f"{machine.get('cpus', '?')} cores, Kubernetes {machine.get('kubernetes', '?')}, "
                    f"{machine.get('date', '')}; boxes p25-p75, whiskers p1-p99", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
