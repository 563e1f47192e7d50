"""The test bed's base image finds the host's Debian mirror in either apt format, quietly.

`tests/cluster/base-image.sh` reads the mirror that debootstrap and the image's apt use from the
host's apt sources: one-line `sources.list` files, deb822 `.sources` files (all that some fresh
Debian machines have), or both. These tests source the script (sourced, it only defines its functions) with its
`APT_DIR` pointed at a directory of their own, so nothing is built and no Docker is needed. A
successful run must print no `ERROR`: a newcomer reads one as a failure.
"""

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests/cluster/base-image.sh"
LIB = REPO / "tests/cluster/lib.sh"

DEBIAN_SOURCES = """\
Types: deb
# a comment inside a stanza
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://source-only.example/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

SOURCES_LIST = """\
# the classic format
deb-src http://source-only.example/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://classic.example/debian bookworm main
deb [ arch=amd64 ] http://classic.example/debian bookworm-updates main   # a comment after the entry
deb http://classic.example/debian-security bookworm-security main
"""

# A third-party repository whose file sorts before Debian's, with a key written into the stanza.
THIRD_PARTY_SOURCES = """\
Types: deb
URIs: https://vendor.example/apt
Suites: nodistro
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBGVendorKeyNotReal
 -----END PGP PUBLIC KEY BLOCK-----
"""


def apt_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "apt"
    (root / "sources.list.d").mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def run(tmp_path: Path, apt: Path, script: str) -> subprocess.CompletedProcess[str]:
    """Source base-image.sh under bash and run `script`, as `build` would, inside a `step`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("DEBIAN_")}
    env.update(SAFEAGENT_CACHE=str(tmp_path / "cache"), APT_DIR=str(apt))
    program = f"source {SCRIPT}\n{script}"
    return subprocess.run(["bash", "-c", program], env=env, capture_output=True, text=True, timeout=60)


MIRRORS = textwrap.dedent("""\
    show() {
      local mirror=${DEBIAN_MIRROR:-$(host_mirror main)}
      local security=${DEBIAN_SECURITY_MIRROR:-$(host_mirror security)}
      echo "main=$mirror"
      echo "security=$security"
    }
    step "mirrors" show
""")


@pytest.mark.parametrize(
    ("files", "main", "security"),
    [
        pytest.param({"sources.list.d/debian.sources": DEBIAN_SOURCES},
                     "http://mirror.example/debian", "http://mirror.example/debian-security", id="deb822-only"),
        pytest.param({"sources.list": SOURCES_LIST},
                     "http://classic.example/debian", "http://classic.example/debian-security", id="sources.list-only"),
        pytest.param({"sources.list.d/debian.list": SOURCES_LIST},
                     "http://classic.example/debian", "http://classic.example/debian-security", id="list-file-only"),
        pytest.param({"sources.list": SOURCES_LIST, "sources.list.d/debian.sources": DEBIAN_SOURCES},
                     "http://classic.example/debian", "http://classic.example/debian-security", id="both-list-first"),
        pytest.param({"sources.list.d/a-vendor.sources": THIRD_PARTY_SOURCES,
                      "sources.list.d/debian.sources": DEBIAN_SOURCES},
                     "http://mirror.example/debian", "http://mirror.example/debian-security", id="vendor-sorted-first"),
        pytest.param({"sources.list.d/debian.sources": DEBIAN_SOURCES.replace("bookworm", "trixie")},
                     "http://mirror.example/debian", "http://mirror.example/debian-security", id="other-release"),
        pytest.param({"sources.list.d/debian.sources": DEBIAN_SOURCES.replace("Types: deb\nURIs: http://mirror.example/debian-security",
                                                                            "Types: deb\nEnabled: no\nURIs: http://mirror.example/debian-security")},
                     "http://mirror.example/debian", "", id="security-disabled"),
    ],
)
def test_the_hosts_mirror_is_found_in_either_format_without_an_error(tmp_path, files, main, security):
    result = run(tmp_path, apt_dir(tmp_path, files), MIRRORS)
    assert result.returncode == 0, result.stderr
    assert f"main={main}\nsecurity={security}\n" == result.stdout
    assert "ERROR" not in result.stderr, result.stderr


def test_apt_sources_lists_binary_sources_in_the_order_apt_reads_them(tmp_path):
    files = {"sources.list": SOURCES_LIST, "sources.list.d/debian.sources": DEBIAN_SOURCES,
             "sources.list.d/a-vendor.sources": THIRD_PARTY_SOURCES, "sources.list.d/old.list.disabled": SOURCES_LIST}
    result = run(tmp_path, apt_dir(tmp_path, files), 'apt_sources "$APT_DIR"')
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "http://classic.example/debian bookworm",
        "http://classic.example/debian bookworm-updates",
        "http://classic.example/debian-security bookworm-security",
        "https://vendor.example/apt nodistro",
        "http://mirror.example/debian bookworm",
        "http://mirror.example/debian bookworm-updates",
        "http://mirror.example/debian-security bookworm-security",
    ]


def test_no_apt_sources_at_all_stops_the_build_with_one_clear_error(tmp_path):
    result = run(tmp_path, apt_dir(tmp_path, {}), "build")
    assert result.returncode == 1
    assert "no Debian mirror found in the host's apt sources; set DEBIAN_MIRROR" in result.stderr
    assert result.stderr.count("ERROR") == 1, result.stderr


def test_debian_mirror_overrides_the_hosts_sources(tmp_path):
    script = "DEBIAN_MIRROR=http://chosen.example/debian\n" + MIRRORS
    result = run(tmp_path, apt_dir(tmp_path, {"sources.list.d/debian.sources": DEBIAN_SOURCES}), script)
    assert "main=http://chosen.example/debian\n" in result.stdout


def run_with_lib(tmp_path: Path, script: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SAFEAGENT_CACHE=str(tmp_path / "cache"))
    return subprocess.run(["bash", "-c", f"source {LIB}\n{script}"], env=env, capture_output=True, text=True, timeout=60)


def test_a_failure_the_script_survives_prints_no_error(tmp_path):
    """The pattern behind the four spurious lines: a pipeline that fails inside a command
    substitution (where `set -e` is off) whose status the caller does not look at."""
    script = textwrap.dedent("""\
        lookup() { local found; found=$(cat /nonexistent 2>/dev/null | awk '{print}'); echo "found=[$found]"; }
        quiet() { local value=$(lookup); echo "$value"; }
        step "lookup" quiet
    """)
    result = run_with_lib(tmp_path, script)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "found=[]\n"
    assert "ERROR" not in result.stderr, result.stderr


def test_a_failure_that_ends_the_script_still_says_where(tmp_path):
    result = run_with_lib(tmp_path, 'fails() { cat /nonexistent 2>/dev/null; echo not reached; }\nstep "fails" fails\n')
    assert result.returncode == 1
    assert "not reached" not in result.stdout
    assert "ERROR: exit status 1 from: cat /nonexistent" in result.stderr
