#!/usr/bin/env bash
# The router Pythons: run the unit tests, the python3-light tests (tests/routerpy:
# flowtop under an import blocker that hides what OpenWrt's python3-light lacks)
# and the kernel snapshot tests under Python 3.9 and 3.13 (CI_PYTHONS="3.9 3.13"),
# and the python3-light tests alone under 3.10 and 3.12 (CI_PYTHONS_LIGHT="3.10 3.12":
# what those lack differs, e.g. their pathlib imports urllib; ~30 s each).
#
#   sh scripts/test-deps.sh && bash scripts/ci-pythons.sh      # as root, like .ci/run
#
# Each version: a pyenv build (~/.pyenv/versions/X.Y.*) or pythonX.Y on PATH;
# when neither is there, one line says it is skipped.  pytest and hypothesis come
# from that Python if it has them, else from a venv in build/routerpy/venv-X.Y;
# maxminddb 2.x (the one python3-light can load) goes into build/routerpy/site-X.Y
# (pip --target), which only the blocked flowtop runs put on their path.  Nothing
# outside build/ (gitignored) is changed.  The last line is pytest's summary;
# the exit status is non-zero if any run failed.
set -uo pipefail
cd "$(dirname "$0")/.."

VERSIONS=${CI_PYTHONS:-"3.9 3.13"}
LIGHT_VERSIONS=${CI_PYTHONS_LIGHT-"3.10 3.12"}
BUILD=build/routerpy
PYENV_VERSIONS=${PYENV_ROOT:-$HOME/.pyenv}/versions
TESTS=(tests/routerpy tests/test_*.py
       tests/kernel/test_routerpy_kernel.py
       tests/kernel/test_snapshot_kernel.py::test_json_once_matches_conntrack)
LIGHT_TESTS=(tests/routerpy tests/kernel/test_routerpy_kernel.py)
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

is_version() {      # is_version PYTHON X.Y: that interpreter runs and is X.Y
    [ -x "$1" ] || command -v "$1" >/dev/null 2>&1 || return 1
    [ "$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$2" ]
}

find_python() {     # the newest pyenv X.Y.Z build, else pythonX.Y on PATH
    local v=$1 d
    for d in $(ls -d "$PYENV_VERSIONS/$v".* 2>/dev/null | sort -V -r); do
        case ${d##*/} in "$v".[0-9]*) ;; *) continue ;; esac     # not 3.13t, 3.13-dev
        case ${d##*/} in *[!0-9.]*) continue ;; esac
        if is_version "$d/bin/python" "$v"; then echo "$d/bin/python"; return 0; fi
    done
    # (a pyenv shim for a version that is not installed fails is_version)
    if is_version "python$v" "$v"; then command -v "python$v"; return 0; fi
    return 1
}

test_python() {     # a Python X.Y with pytest and hypothesis; builds the venv if needed
    local v=$1 py=$2 venv=$BUILD/venv-$1
    if "$py" -c 'import pytest, hypothesis' >/dev/null 2>&1; then
        echo "$py"; return 0
    fi
    if ! "$venv/bin/python" -c 'import pytest, hypothesis' >/dev/null 2>&1; then
        echo "Python $v: no pytest/hypothesis; making $venv" >&2
        "$py" -m venv --clear "$venv" >&2 || return 1
        "$venv/bin/python" -m pip install -q 'pytest>=7' 'hypothesis>=6' 'maxminddb>=2' >&2 \
            || return 1
    fi
    echo "$venv/bin/python"
}

geo_site() {        # maxminddb<3 for the blocked runs, in build/routerpy/site-X.Y
    local v=$1 py=$2 site=$BUILD/site-$1
    if [ -f "$site/maxminddb/__init__.py" ]; then return 0; fi
    "$py" -m pip install -q --no-compile --target "$site" 'maxminddb<3' >&2 \
        || echo "Python $v: could not install maxminddb<3 into $site: GeoIP tests skip" >&2
}

mkdir -p "$BUILD"
runs=()
for v in $VERSIONS $LIGHT_VERSIONS; do
    if ! base=$(find_python "$v"); then
        echo "skipping Python $v: not installed"
        continue
    fi
    if ! py=$(test_python "$v" "$base"); then
        echo "Python $v ($base): cannot get pytest and hypothesis" >&2
        exit 1
    fi
    geo_site "$v" "$py"
    runs+=("$v=$py")
done

# The versions run one after the other, so timing tests stay calm
# (CI_PYTHONS_JOBS=2: side by side), each into its log; the logs are
# printed in order when all are done.
jobs=${CI_PYTHONS_JOBS:-1}
pids=() rcs=()
cleanup() {                         # only on an early exit: stop our own runs
    local pid
    for pid in "${pids[@]}"; do
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
finish() {                          # finish N: wait for run N, keep its status
    wait "${pids[$1]}"
    rcs[$1]=$?
    pids[$1]=""
}
n=0
for run in "${runs[@]}"; do
    v=${run%%=*} py=${run#*=}
    tests=("${TESTS[@]}")
    case " $VERSIONS " in *" $v "*) ;; *) tests=("${LIGHT_TESTS[@]}") ;; esac
    {
        echo "== Python $("$py" -c 'import platform; print(platform.python_version())') ($py)"
        exec "$py" -m pytest -q -p no:cacheprovider "${tests[@]}"
    } >"$BUILD/pytest-$v.log" 2>&1 &
    pids[n]=$!
    if [ $((n + 1)) -ge "$jobs" ]; then
        finish $((n + 1 - jobs))    # at most $jobs at a time
    fi
    n=$((n + 1))
done
status=0
n=0
for run in "${runs[@]}"; do
    [ -n "${pids[n]}" ] && finish "$n"
    [ "${rcs[n]}" -eq 0 ] || status=1
    cat "$BUILD/pytest-${run%%=*}.log"
    n=$((n + 1))
done
trap - EXIT
exit $status
