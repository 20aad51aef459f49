#!/usr/bin/env bash
# The local development and test stack for pushpool.
#
#   stack.sh venv             create (or reuse) the pinned virtualenv, print its path
#   stack.sh version          print the pinned Prefect version installed in it
#   stack.sh prefect [PORT]   run a throwaway Prefect server on 127.0.0.1 in the
#                             foreground (fresh SQLite database, UI and telemetry off)
#                             until Ctrl-C; the database is removed afterwards
#
# The virtualenv lives outside the source tree, in
#   ${PUSHPOOL_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/pushpool/venv-<hash of requirements.txt>}
# and is reused while requirements.txt is unchanged. Go tests start their own
# servers through internal/localstack, which calls `stack.sh venv`.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
req="$here/requirements.txt"

die() { printf 'stack.sh: %s\n' "$*" >&2; exit 1; }

venv_path() {
  if [ -n "${PUSHPOOL_VENV:-}" ]; then printf '%s\n' "$PUSHPOOL_VENV"; return; fi
  local hash
  hash=$(sha256sum "$req" | cut -c1-12)
  printf '%s\n' "${XDG_CACHE_HOME:-$HOME/.cache}/pushpool/venv-$hash"
}

ensure_venv() {
  local venv stamp
  venv=$(venv_path)
  stamp="$venv/.pushpool-requirements"
  if [ -x "$venv/bin/prefect" ] && [ -f "$stamp" ] && cmp -s "$stamp" "$req"; then
    printf '%s\n' "$venv"; return
  fi
  command -v python3 >/dev/null || die "python3 is required (3.10 or newer) to install Prefect; install it and retry"
  python3 -c 'import venv, ensurepip' 2>/dev/null \
    || die "python3 cannot create virtualenvs; install the venv module (Debian: apt-get install python3-venv) and retry"
  printf 'stack.sh: installing %s into %s (once; about a minute)\n' \
    "$(grep -v '^#' "$req" | tr '\n' ' ')" "$venv" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2 \
    || die "pip could not install $req into $venv (see the output above)"
  cp "$req" "$stamp"
  printf '%s\n' "$venv"
}

case "${1:-}" in
  venv)
    ensure_venv ;;
  version)
    venv=$(ensure_venv)
    "$venv/bin/python" -c 'import prefect; print(prefect.__version__)' ;;
  prefect)
    venv=$(ensure_venv)
    port=${2:-4200}
    home=$(mktemp -d "${TMPDIR:-/tmp}/pushpool-prefect.XXXXXX")
    trap 'rm -rf "$home"' EXIT
    export PREFECT_HOME="$home"
    export PREFECT_API_DATABASE_CONNECTION_URL="sqlite+aiosqlite:///$home/prefect.db"
    export PREFECT_SERVER_ANALYTICS_ENABLED=false PREFECT_UI_ENABLED=false
    printf 'stack.sh: Prefect server on http://127.0.0.1:%s/api (Ctrl-C stops it)\n' "$port" >&2
    "$venv/bin/prefect" server start --host 127.0.0.1 --port "$port" ;;
  *)
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2 ;;
esac
