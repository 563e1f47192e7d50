"""configs/nftables-agent.conf parses and checks with `nft -c`; the apply script renders safely.

`nft -c` sends the ruleset to the kernel in check mode, which needs CAP_NET_ADMIN and nf_tables in
the kernel; without them the tests are skipped and say so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

from tests.support.chart_render import CHART, REPO

CONF = REPO / "configs" / "nftables-agent.conf"
APPLY = REPO / "configs" / "apply-nftables.sh"


def nft_check(path) -> subprocess.CompletedProcess[str]:
    nft = shutil.which("nft") or next(
        (p for p in ("/usr/sbin/nft", "/sbin/nft") if os.access(p, os.X_OK)), None
    )
    if nft is None:
        pytest.skip("nft is not installed (Debian package nftables)")
    result = subprocess.run([nft, "-c", "-f", str(path)], capture_output=True, text=True, timeout=60)
    if result.returncode != 0 and re.search(r"Operation not permitted|Permission denied|Protocol not supported", result.stderr):
        pytest.skip(f"`nft -c` needs CAP_NET_ADMIN and nf_tables in the kernel here: {result.stderr.strip()}")
    return result


def apply(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SAFEAGENT_NFT_")}
    environ["PATH"] = environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return subprocess.run(
        [str(APPLY), *args], capture_output=True, text=True, timeout=60, env={**environ, **env}
    )


def test_nft_accepts_the_ruleset():
    result = nft_check(CONF)
    assert result.returncode == 0, result.stderr


def test_nft_check_is_not_a_rubber_stamp(tmp_path):
    broken = tmp_path / "broken.conf"
    broken.write_text(CONF.read_text().replace("counter drop", "counter dorp", 1))
    assert nft_check(broken).returncode != 0


def test_dry_run_renders_overrides_and_checks_them():
    nft_check(CONF)
    result = apply("--dry-run", SAFEAGENT_NFT_POD_CIDR="10.244.3.0/24",
                   SAFEAGENT_NFT_ALLOWED_EGRESS="{ 192.0.2.1/32 . tcp . 443 }")
    assert result.returncode == 0, result.stderr
    assert "define POD_CIDR = 10.244.3.0/24\n" in result.stdout
    assert "define ALLOWED_EGRESS = { 192.0.2.1/32 . tcp . 443 }\n" in result.stdout
    assert "198.51.100.20/32" not in result.stdout, "the old multi-line block must be replaced whole"
    assert "passed `nft -c`" in result.stderr


@pytest.mark.parametrize(
    "env",
    [
        {"SAFEAGENT_NFT_POD_CIDR": "10.0.0.0/8; flush ruleset"},
        {"SAFEAGENT_NFT_POD_CIDR": "10.0.0.0/8\ntable ip x {}"},
        {"SAFEAGENT_NFT_POD_CIDR": '10.0.0.0/8 comment "$(id)"'},
        {"SAFEAGENT_NFT_NO_SUCH_DEFINE": "10.0.0.0/8"},
        {"SAFEAGENT_NFT_POD_IFACES": '{ "veth*"; flush ruleset }'},
        {"SAFEAGENT_NFT_POD_IFACES": '{ "veth*" } accept'},
    ],
)
def test_bad_overrides_are_refused(env):
    if not shutil.which("nft", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
        pytest.skip("nft is not installed (Debian package nftables)")
    result = apply("--dry-run", **env)
    assert result.returncode == 2, result.stdout
    assert "SAFEAGENT_NFT_" in result.stderr


def nft_elements() -> set[tuple[str, str, int]]:
    block = re.search(r"define ALLOWED_EGRESS = \{(.*?)\}", CONF.read_text(), re.S).group(1)
    return {
        (cidr, proto.upper(), int(port))
        for cidr, proto, port in re.findall(r"([0-9a-f.:/]+) \. (\w+) \. (\d+)", block)
    }


def test_node_filter_and_chart_defaults_allow_the_same_destinations():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = {
        (rule["cidr"], port["protocol"], port["port"])
        for profile in values["networkProfiles"].values()
        for rule in profile["egress"]
        for port in rule["ports"]
    }
    assert chart and nft_elements() == chart


def test_node_filter_and_operator_refuse_the_same_metadata_ranges():
    """Issue 10: the ranges no profile may reach are dropped by the node filter too (IPv4 and IPv6)."""
    from safeagent.config import NEVER_EGRESS

    text = CONF.read_text()
    dropped = set()
    for name in ("NEVER_EGRESS", "NEVER_EGRESS6"):
        block = re.search(rf"define {name} = \{{(.*?)\}}", text, re.S).group(1)
        dropped |= {item.strip() for item in block.split(",")}
    assert {str(network) for network in NEVER_EGRESS} <= dropped


def test_traffic_to_the_node_is_matched_by_interface_too():
    """A Pod's automatic fe80:: address is outside the pod ranges: the input hook must not rely on
    source addresses alone."""
    text = CONF.read_text()
    assert re.search(r"iifname \$POD_IFACES jump sandbox_to_node", text)
