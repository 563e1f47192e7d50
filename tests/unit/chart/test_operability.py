"""The chart's metrics Service, optional ServiceMonitor and the operator Pod's own NetworkPolicy."""

from __future__ import annotations

import yaml

from tests.support.chart_render import CHART, find, one, render
from safeagent.config import parse_config

OPERATOR = "safeagent-operator"


def operator_container(objects):
    return one(objects, "Deployment", OPERATOR)["spec"]["template"]["spec"]["containers"][0]


def test_metrics_port_service_and_configuration_agree():
    objects = render("--set", "metrics.port=9100")
    container = operator_container(objects)
    assert {"name": "metrics", "containerPort": 9100, "protocol": "TCP"} in container["ports"]
    assert "--log-format=json" in container["args"]
    env = {item["name"]: item for item in container["env"]}
    assert env["SAFEAGENT_OPERATOR_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    service = one(objects, "Service", f"{OPERATOR}-metrics")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9100, "targetPort": "metrics", "protocol": "TCP"}]
    pod_labels = one(objects, "Deployment", OPERATOR)["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    config = parse_config(yaml.safe_load(one(objects, "ConfigMap", "safeagent-config")["data"]["config.yaml"]))
    assert (config.metrics.enabled, config.metrics.port) == (True, 9100)
    assert not find(objects, "ServiceMonitor"), "the ServiceMonitor is off by default"


def test_metrics_off_means_no_port_no_service_no_ingress():
    objects = render("--set", "metrics.enabled=false")
    assert [port["name"] for port in operator_container(objects)["ports"]] == ["health"]
    assert [service["metadata"]["name"] for service in find(objects, "Service")] == ["safeagent-canary"]
    policy = one(objects, "NetworkPolicy", OPERATOR)
    assert [rule["ports"] for rule in policy["spec"]["ingress"]] == [[{"port": 8080, "protocol": "TCP"}]]
    config = parse_config(yaml.safe_load(one(objects, "ConfigMap", "safeagent-config")["data"]["config.yaml"]))
    assert config.metrics.enabled is False


def test_service_monitor_only_when_enabled_and_it_selects_the_metrics_service():
    objects = render("--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.serviceMonitor.labels.release=prom")
    monitor = one(objects, "ServiceMonitor", OPERATOR)
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s"}]
    service = one(objects, "Service", f"{OPERATOR}-metrics")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["safeagent-system"]}


def test_operator_network_policy_opens_only_health_metrics_api_server():
    objects = render()
    policy = one(objects, "NetworkPolicy", OPERATOR)
    spec = policy["spec"]
    pod_labels = one(objects, "Deployment", OPERATOR)["spec"]["template"]["metadata"]["labels"]
    assert spec["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    ingress_ports = [port for rule in spec["ingress"] for port in rule["ports"]]
    assert ingress_ports == [{"port": 8080, "protocol": "TCP"}, {"port": 9090, "protocol": "TCP"}]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    api_server = values["operator"]["networkPolicy"]["apiServer"]
    assert [rule["to"] for rule in spec["egress"]] == [[{"ipBlock": {"cidr": rule["cidr"]}}] for rule in api_server]
    assert [rule["ports"] for rule in spec["egress"]] == [rule["ports"] for rule in api_server]
    for rule in spec["egress"]:
        assert all(port["port"] != 53 for port in rule["ports"]), "DNS is off unless asked for"


def test_operator_network_policy_options():
    objects = render(
        "--set", "operator.networkPolicy.allowDns=true",
        "--set", "operator.networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.team=monitoring",
        "--set", "operator.networkPolicy.apiServer[0].cidr=203.0.113.7/32",
        "--set", "operator.networkPolicy.apiServer[0].ports[0].port=443",
        "--set", "operator.networkPolicy.apiServer[0].ports[0].protocol=TCP",
    )
    spec = one(objects, "NetworkPolicy", OPERATOR)["spec"]
    assert spec["ingress"][1]["from"] == [{"namespaceSelector": {"matchLabels": {"team": "monitoring"}}}]
    assert spec["egress"][0] == {"to": [{"ipBlock": {"cidr": "203.0.113.7/32"}}], "ports": [{"port": 443, "protocol": "TCP"}]}
    dns = spec["egress"][-1]
    assert dns["to"][0]["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}
    assert {port["port"] for port in dns["ports"]} == {53}
    remaining = find(render("--set", "operator.networkPolicy.enabled=false"), "NetworkPolicy")
    assert [policy["metadata"]["name"] for policy in remaining] == ["safeagent-canary"]
