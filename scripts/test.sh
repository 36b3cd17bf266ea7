#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh Debian machine, then run it.
#   bash scripts/test.sh [extra pytest args]
# Installs Debian packages (Docker engine, registry, mmdebstrap, Chromium), the
# package with its dev extra, starts a private Docker engine + registry (stopped
# again on exit), and runs pytest. moto_server, the Cloud Functions fake and
# JupyterLab are started by the tests themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

need_apt=()
for pkg in docker.io docker-registry mmdebstrap ca-certificates chromium docker-compose; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ "$(id -u)" = 0 ] && [ ${#need_apt[@]} -gt 0 ]; then
  echo "--- installing Debian packages: ${need_apt[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

echo "--- installing weave-nb with the dev extra"
python3 -m pip install -q --disable-pip-version-check -e '.[dev]'

# checkov (the export tests' security scanner) pins many packages that conflict with moto and boto:
# it gets its own virtualenv, found by tests/export_tools.py at the same path
tools_venv="${WEAVE_TOOLS_VENV:-$HOME/.cache/weave-nb/tools-venv}"
if [ ! -x "$tools_venv/bin/checkov" ]; then
  echo "--- installing checkov into $tools_venv"
  python3 -m venv "$tools_venv"
  "$tools_venv/bin/python" -m pip install -q --disable-pip-version-check checkov
fi
export WEAVE_TOOLS_VENV="$tools_venv"

echo "--- starting the private Docker engine and registry"
if bash scripts/docker-env.sh status >/dev/null 2>&1; then
  echo "(already running: left running afterwards)"
else
  bash scripts/docker-env.sh stop >/dev/null 2>&1 || true  # clears what a killed engine left behind
  bash scripts/docker-env.sh start >/dev/null
  trap 'bash scripts/docker-env.sh stop || true' EXIT
fi
eval "$(bash scripts/docker-env.sh env)"

echo "--- running the tests"
python3 -m pytest -ra "$@"
