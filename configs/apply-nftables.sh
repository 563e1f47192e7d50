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
# spaces, or be a set of quoted interface names with an optional trailing `*`; anything else is
# refused, so a value cannot smuggle extra rules into the ruleset.
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
# (a brace block opened at the end of its first line); the old block is dropped up to its closing
# brace.
render() {
    local var name value
    local -a overrides=()
    for var in $(compgen -v SAFEAGENT_NFT_ || true); do
        name=${var#SAFEAGENT_NFT_}
        value=${!var}
        # Interface names may be quoted with a trailing wildcard ("cali*"); nothing else.
        if [[ ! "$value" =~ ^[][0-9A-Za-z.:/,{}\ _-]+$ && ! "$value" =~ ^\{?(\ *\"[0-9A-Za-z._-]+\*?\"\ *,?)+\}?$ ]]; then
            echo "apply-nftables: $var has characters outside addresses, ports and braces" >&2
            return 2
        fi
        if ! grep -Eq "^define $name = " "$file"; then
            echo "apply-nftables: $var does not match any define in $file" >&2
            return 2
        fi
        overrides+=("$name=$value")
    done
    # awk, not a scripting language the node may lack. The overrides arrive as NAME=VALUE
    # arguments and are removed from ARGV before awk would read them as files or assignments.
    awk '
        BEGIN {
            for (i = 2; i < ARGC; i++) {
                split_at = index(ARGV[i], "=")
                override[substr(ARGV[i], 1, split_at - 1)] = substr(ARGV[i], split_at + 1)
                delete ARGV[i]
            }
        }
        skipping { if (index($0, "}")) skipping = 0; next }
        /^define [A-Za-z0-9_]+ = / && ($2 in override) {
            print "define " $2 " = " override[$2]
            skipping = ($4 == "{" && NF == 4)
            next
        }
        { print }
    ' "$file" "${overrides[@]}"
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
