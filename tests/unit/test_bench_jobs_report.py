"""The pure parts of `make bench-jobs` (tests/bench/jobs_report.py, and the bare Pod of
tests/bench/bench_jobs.py): percentiles, per-run summaries, the JSON shape, the table, the plot,
and that the bare Pod it compares against is a sandbox Pod's twin."""

from __future__ import annotations

import json

import pytest

from safeagent import builders
from safeagent.config import parse_config
from safeagent.models import SandboxJob
from tests.bench import bench_jobs, jobs_report
from tests.bench.jobs_report import Timeline


@pytest.mark.parametrize(("values", "fraction", "expected"), [
    ([float(v) for v in range(1, 21)], 0.50, 10.0),
    ([float(v) for v in range(1, 21)], 0.90, 18.0),
    ([float(v) for v in range(1, 21)], 0.99, 20.0),  # 20 samples: p99 is the maximum
    ([float(v) for v in range(1, 101)], 0.99, 99.0),
    ([3.0, 1.0, 2.0], 0.50, 2.0),  # order does not matter
    ([7.0], 0.99, 7.0),
    ([1.0, 2.0], 1.0, 2.0),
])
def test_percentile_is_nearest_rank(values, fraction, expected):
    assert jobs_report.percentile(values, fraction) == expected


def test_percentile_refuses_no_values_and_fractions_out_of_range():
    with pytest.raises(ValueError):
        jobs_report.percentile([], 0.5)
    for fraction in (0.0, 1.5):
        with pytest.raises(ValueError):
            jobs_report.percentile([1.0], fraction)


def test_stats_round_to_milliseconds_and_say_none_for_nothing():
    assert jobs_report.stats([]) is None
    assert jobs_report.stats([0.12345, 2.0]) == {"n": 2, "p50": 0.123, "p90": 2.0, "p99": 2.0, "max": 2.0}


def test_a_timeline_measures_from_its_apply():
    timeline = Timeline(applied=100.0, applied_wall=1000.0, pod=100.2, started=101.5, final=104.0,
                        started_stamp_wall=1001.0, egress_ms=250)
    assert timeline.durations() == pytest.approx(
        {"pod": 0.2, "started": 1.5, "final": 4.0, "startedStamp": 1.0, "egressWait": 0.25})
    assert Timeline(applied=1.0, applied_wall=1.0).durations() == dict.fromkeys(jobs_report.PHASES)


def job(applied: float, final: float | None, pods: int = 1, outcome: str = "Succeeded") -> Timeline:
    return Timeline(applied=applied, applied_wall=applied, pod=applied + 0.1, started=applied + 1,
                    final=final, outcome=outcome if final is not None else None, egress_ms=5,
                    pod_uids={f"uid-{n}" for n in range(pods)})


def test_a_run_counts_lost_and_duplicated_and_spans_first_apply_to_last_final():
    run = jobs_report.summarize_run("sandboxjob-cold", "burst of 4", [
        job(0.0, 3.0), job(0.1, 5.5, pods=2), job(0.2, None), job(0.3, 4.0, outcome="Failed"),
    ], counts_pods=True, extra={"perJob": {"apiserverRequests": 12.0}})
    assert run["jobs"] == 4 and run["lost"] == 1 and run["duplicated"] == 1
    assert run["makespanSeconds"] == 5.5
    assert run["outcomes"] == {"Succeeded": 2, "Failed": 1}
    assert run["phases"]["final"]["n"] == 3 and run["phases"]["final"]["max"] == 5.4
    assert run["phases"]["egressWait"]["p50"] == 0.005
    assert run["perJob"] == {"apiserverRequests": 12.0}


def test_a_mode_without_a_pod_per_job_reports_no_duplicates_and_missing_phases_as_null():
    exec_run = Timeline(applied=0.0, applied_wall=0.0, final=0.1, outcome="Succeeded")
    run = jobs_report.summarize_run("exec", "sequential", [exec_run], counts_pods=False)
    assert run["duplicated"] is None
    assert run["phases"]["pod"] is None and run["phases"]["final"]["p50"] == 0.1
    assert "pod" not in run["samples"]
    with pytest.raises(ValueError):
        jobs_report.summarize_run("warm", "sequential", [exec_run], counts_pods=False)


def test_nothing_finished_has_no_makespan():
    run = jobs_report.summarize_run("bare-pod", "sequential", [job(0.0, None)], counts_pods=True)
    assert run["makespanSeconds"] is None and run["lost"] == 1


METRICS = """\
# HELP apiserver_request_total Counter of apiserver requests.
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",resource="pods",verb="GET"} 10
apiserver_request_total{code="201",component="apiserver",resource="pods",verb="POST"} 2
apiserver_request_total{code="200",component="apiserver",resource="sandboxjobs",verb="LIST"} 5
apiserver_request_total_other 99
process_cpu_seconds_total 2.31
process_resident_memory_bytes 1.0271e+08
"""


def test_sample_sum_adds_the_samples_of_one_metric_whose_labels_match():
    assert jobs_report.sample_sum(METRICS, "apiserver_request_total") == 17
    assert jobs_report.sample_sum(METRICS, "apiserver_request_total", {"resource": "pods"}) == 12
    assert jobs_report.sample_sum(METRICS, "process_cpu_seconds_total") == 2.31
    assert jobs_report.sample_sum(METRICS, "process_resident_memory_bytes") == 1.0271e8
    assert jobs_report.sample_sum(METRICS, "absent_total") is None
    assert jobs_report.sample_sum(METRICS, "apiserver_request_total", {"resource": "nodes"}) is None


def runs() -> list[dict]:
    return [
        jobs_report.summarize_run("bare-pod", "sequential", [job(0.0, 2.0), job(3.0, 5.1)], counts_pods=True),
        jobs_report.summarize_run("sandboxjob-cold", "sequential", [job(0.0, 4.0)], counts_pods=True,
                                  extra={"perJob": {"apiserverRequests": 31.5, "operatorRequests": 9.0,
                                                    "operatorCpuMs": 120.0}}),
        jobs_report.summarize_run("exec", "sequential",
                                  [Timeline(applied=0.0, applied_wall=0.0, final=0.09, outcome="Succeeded")],
                                  counts_pods=False),
    ]


def test_the_table_has_one_row_per_run_with_p50_p90_p99_and_dashes_for_what_a_mode_lacks():
    table = jobs_report.format_table(runs()).splitlines()
    assert len(table) == 2 + 3
    assert all(line.startswith("| ") and line.endswith(" |") for line in table)
    assert len({line.count("|") for line in table}) == 1  # every row has every column
    bare, cold, exec_row = table[2:]
    assert "| 2.00 / 2.10 / 2.10 |" in bare  # apply → final
    assert "31.5 / 9.0, 120.0 ms" in cold
    assert exec_row.split(" | ")[3] == "–" and "| 0.09 / 0.09 / 0.09 |" in exec_row


def test_the_operator_line_says_what_was_not_measured():
    assert jobs_report.format_operator({}) == "operator over the run: not measured"
    line = jobs_report.format_operator({"cpuSeconds": 12.34, "peakRssMiB": 98.2,
                                        "cgroup": {"cpuSeconds": 12.5, "maxUsageMiB": 130.0}})
    assert "CPU 12.3 s" in line and "peak RSS 98.2 MiB" in line and "cgroup CPU 12.5 s" in line


def test_the_json_document_has_a_schema_and_round_trips():
    document = jobs_report.report({"cpus": 2}, {"sequential": 1}, runs(), {"cpuSeconds": 1.0}, [{"policy": "x"}])
    assert list(document) == ["schema", "machine", "options", "runs", "operator", "policy"]
    assert document["schema"] == jobs_report.SCHEMA
    assert json.loads(json.dumps(document)) == document
    for run in document["runs"]:
        assert set(run["phases"]) == set(jobs_report.PHASES)
        assert {"mode", "scenario", "jobs", "makespanSeconds", "lost", "duplicated", "outcomes", "samples"} <= set(run)


def test_the_plot_is_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "latest.png"
    jobs_report.plot(jobs_report.report({"cpus": 2, "kubernetes": "v1.36.3"}, {}, runs(), {}, []), str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


PLACED = parse_config({"sandbox": {
    "nodeSelector": {"safeagent.ca/sandbox": "true"},
    "tolerations": [{"key": "safeagent.ca/sandbox", "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
}})


def test_the_bare_pod_is_a_sandbox_pods_twin_with_one_container_and_only_the_source():
    pod = bench_jobs.bare_pod(PLACED, "bench-ns", "repo", "abc123", "bare-s-0", ["ls", "-la", "/source"], 300)
    job = SandboxJob.model_validate({"metadata": {"name": "j", "namespace": "bench-ns", "uid": "u"},
                                     "spec": {"command": "ls -la", "source": {"configMap": {"name": "repo"}}}})
    sandbox = builders.build_sandbox_pod(job, ["ls", "-la"], 64, PLACED)
    runner = next(c for c in sandbox["spec"]["containers"] if c["name"] == builders.RUNNER_CONTAINER)
    (main,) = pod["spec"]["containers"]
    assert "initContainers" not in pod["spec"]
    assert main["command"] == ["ls", "-la", "/source"] and main["imagePullPolicy"] == "Never"
    assert main["image"] == runner["image"] and main["resources"] == runner["resources"]
    security = {key: value for key, value in runner["securityContext"].items() if key != "runAsUser"}
    assert {key: value for key, value in main["securityContext"].items() if key != "runAsUser"} == security
    for key in ("nodeSelector", "tolerations", "automountServiceAccountToken", "enableServiceLinks", "hostNetwork"):
        assert pod["spec"][key] == sandbox["spec"][key], key
    assert pod["spec"]["securityContext"]["runAsUser"] == main["securityContext"]["runAsUser"]
    assert PLACED.sandbox.uidRange.first <= main["securityContext"]["runAsUser"] <= PLACED.sandbox.uidRange.last
    assert pod["spec"]["volumes"] == [{"name": "source", "configMap": {"name": "repo", "defaultMode": 0o444,
                                                                      "optional": False}}]
    assert pod["metadata"] == {"name": "bare-s-0", "namespace": "bench-ns", "labels": {bench_jobs.BENCH_LABEL: "abc123"}}


def test_the_bare_pod_builds_under_an_installed_egress_check_and_keeps_no_runner_arguments():
    from tests.support.jobs import CHECKED

    pod = bench_jobs.bare_pod(CHECKED, "bench-ns", "repo", "abc123", "bare-s-0", ["ls", "-la", "/source"], 300)
    (main,) = pod["spec"]["containers"]
    assert "args" not in main and main["command"] == ["ls", "-la", "/source"]


def test_a_warm_run_says_how_many_of_its_jobs_went_warm():
    run = jobs_report.summarize_run(jobs_report.WARM, "burst of 2", [job(0.0, 0.3), job(0.0, 2.5)],
                                    counts_pods=True, extra={"warmJobs": 1})
    (row,) = jobs_report.format_table([run]).splitlines()[2:]
    assert row.startswith("| sandboxjob-warm (1 warm) | burst of 2 | 2 |")
