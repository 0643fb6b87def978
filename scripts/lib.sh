# Shared helpers for the scripts in this folder (sourced, not run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UV_VERSION="0.13.9"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  # Install Debian packages that are missing; `apt-get update` once per run.
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ -z "${SHIPYARD_APT_UPDATED:-}" ]; then
    as_root apt-get update -q >/dev/null
    export SHIPYARD_APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 \
    apt-get install -y -q "${missing[@]}" >/dev/null
}

uv_bin() {
  # The pinned uv: on PATH if it is that version, else in .tools/ (a private venv, because
  # Debian's own Python refuses `pip install` outside a venv).
  if command -v uv >/dev/null 2>&1 && [ "$(uv --version | awk '{print $2}')" = "$UV_VERSION" ]; then
    command -v uv
    return
  fi
  local tools="$ROOT/.tools"
  if [ ! -x "$tools/bin/uv" ] || [ "$("$tools/bin/uv" --version | awk '{print $2}')" != "$UV_VERSION" ]; then
    python3 -m venv --help >/dev/null 2>&1 && python3 -c "import ensurepip" 2>/dev/null \
      || apt_install python3-venv >&2
    python3 -m venv "$tools" >&2
    "$tools/bin/pip" install -q --disable-pip-version-check "uv==$UV_VERSION" >&2
  fi
  echo "$tools/bin/uv"
}

ensure_venv() {
  # The locked dependencies in .venv; "$@" goes to `uv sync`.
  local uv
  uv="$(uv_bin)"
  (cd "$ROOT" && "$uv" sync --frozen --quiet "$@")
}
