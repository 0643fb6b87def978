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
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
}

ensure_venv() {
  # uv (pinned) installs the locked dependencies into .venv; "$@" goes to `uv sync`.
  if ! command -v uv >/dev/null 2>&1 || [ "$(uv --version | awk '{print $2}')" != "$UV_VERSION" ]; then
    python3 -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
  fi
  (cd "$ROOT" && uv sync --frozen --quiet "$@")
}
