#!/usr/bin/env bash
# Load configs/nftables-agent.conf on a node that runs safeagent sandbox Pods.
#
# Usage: configs/apply-nftables.sh [--dry-run] [--remove] [--file PATH]
#   --dry-run   print the ruleset with your values and check it with `nft -c`; change nothing
#   --remove    delete the safeagent_egress table (with --dry-run: only say so)
#   --file      the ruleset to load (default: nftables-agent.conf beside this script)
#
# Every `define NAME = ...` in the file can be overridden by an environment variable
# SAFEAGENT_NFT_NAME, e.g.
#   SAFEAGENT_NFT_POD_CIDR=10.244.3.0/24 configs/apply-nftables.sh --dry-run
# Values may contain only addresses, prefixes, port numbers, protocol names, `.`, `,`, braces and
# spaces; anything else is refused, so a value cannot smuggle extra rules into the ruleset.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
file="$here/nftables-agent.conf"
dry_run=0
remove=0
table="inet safeagent_egress"

while (($#)); do
    case "$1" in
        --dry-run) dry_run=1 ;;
        --remove) remove=1 ;;
        --file) file="${2:?--file needs a path}"; shift ;;
        -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "apply-nftables: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

command -v nft >/dev/null || { echo "apply-nftables: nft not found (install the nftables package)" >&2; exit 2; }

if ((remove)); then
    if ((dry_run)); then
        echo "apply-nftables: would delete table $table"
    else
        nft delete table $table 2>/dev/null || true
        echo "apply-nftables: table $table removed"
    fi
    exit 0
fi

[[ -r "$file" ]] || { echo "apply-nftables: cannot read $file" >&2; exit 2; }

# Render: replace the right-hand side of each overridden define. A define may span several lines
# (a brace block); the renderer swallows the old block up to its closing brace.
render() {
    local name value
    local -a overrides=()
    while IFS='=' read -r name value; do
        name=${name#SAFEAGENT_NFT_}
        if [[ ! "$value" =~ ^[][0-9A-Za-z.:/,{}\ _-]+$ ]]; then
            echo "apply-nftables: SAFEAGENT_NFT_$name has characters outside addresses, ports and braces" >&2
            return 2
        fi
        if ! grep -Eq "^define $name = " "$file"; then
            echo "apply-nftables: SAFEAGENT_NFT_$name does not match any define in $file" >&2
            return 2
        fi
        overrides+=("$name=$value")
    done < <(env | grep -E '^SAFEAGENT_NFT_[A-Z0-9_]+=' || true)
    python3 - "$file" "${overrides[@]}" <<'PY'
import re, sys
path, overrides = sys.argv[1], dict(arg.split("=", 1) for arg in sys.argv[2:])
out, skipping = [], False
for line in open(path, encoding="utf-8"):
    if skipping:
        skipping = "}" not in line
        continue
    match = re.match(r"define (\w+) = (.*)", line)
    if match and match.group(1) in overrides:
        out.append(f"define {match.group(1)} = {overrides[match.group(1)]}\n")
        skipping = match.group(2).strip() == "{"
        continue
    out.append(line)
sys.stdout.write("".join(out))
PY
}

rendered=$(mktemp)
trap 'rm -f "$rendered"' EXIT
render >"$rendered"

if ((dry_run)); then
    cat "$rendered"
    nft -c -f "$rendered"
    echo "apply-nftables: dry run: the ruleset above passed \`nft -c\`; nothing was changed" >&2
    exit 0
fi

nft -c -f "$rendered"
nft -f "$rendered"
echo "apply-nftables: table $table loaded" >&2
nft list table $table
