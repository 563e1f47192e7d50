#!/bin/bash
# Runs inside a sandbox node: loads safeagent's egress wall (configs/nftables-agent.conf) for the
# pod CIDR in SAFEAGENT_NFT_POD_CIDR. up.sh copies it to /etc/safeagent/ with the ruleset, its
# loader and egress-wall.env, and runs it; the node image's safeagent-egress-wall unit runs it
# again at every boot, before the kubelet, because the wall lives in the node's network namespace,
# which a restarted node container gets anew. The kubelet requires that unit: if the wall cannot
# be loaded, no Pod starts on the node.
set -euo pipefail
# IPv6 on, as on most hosts: Pod interfaces get link-local addresses, which the wall covers.
sysctl -q -w net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0
exec /etc/safeagent/apply-nftables.sh
