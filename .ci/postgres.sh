#!/usr/bin/env bash
# Start a throwaway PostgreSQL for the store tests and print the line that points them at it:
#
#   eval "$(.ci/postgres.sh)"    # sets RELGATE_TEST_POSTGRES_URL and RELGATE_TEST_POSTGRES_STOP
#   trap 'eval "$RELGATE_TEST_POSTGRES_STOP"' EXIT
#
# Installs PostgreSQL from Debian packages when no server binaries are found, initializes a
# cluster in a temporary directory (as the invoking user, or as the `postgres` user when run
# as root: initdb refuses root), listens on 127.0.0.1 only, on a free port, with trust auth
# for local TCP (the cluster lives and dies with the CI run). Everything but the final
# `export` lines goes to stderr so `eval` sees only those.
set -euo pipefail

log() { echo "postgres.sh: $*" >&2; }

find_bindir() {
  local candidate
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v pg_ctl)")"
    return 0
  fi
  for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [[ -x "$candidate/pg_ctl" && -x "$candidate/initdb" ]]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

BINDIR="$(find_bindir || true)"
if [[ -z "$BINDIR" ]]; then
  log "no PostgreSQL server found; installing it from Debian packages"
  if [[ "$(id -u)" -ne 0 ]]; then
    log "need root to apt-get install postgresql"
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  BINDIR="$(find_bindir)"
fi
log "using $BINDIR"

# Run the server as an unprivileged user.
RUN=()
OWNER="$(id -un)"
if [[ "$(id -u)" -eq 0 ]]; then
  if ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
  fi
  OWNER=postgres
  RUN=(runuser -u postgres --)
fi

BASE="$(mktemp -d "${TMPDIR:-/tmp}/relgate-pg.XXXXXX")"
chown "$OWNER" "$BASE"
chmod 700 "$BASE"
PGDATA="$BASE/data"

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"

"${RUN[@]}" "$BINDIR/initdb" -D "$PGDATA" -U relgate --auth=trust --encoding=UTF8 \
  --no-instructions >"$BASE/initdb.log" 2>&1 || { cat "$BASE/initdb.log" >&2; exit 1; }
"${RUN[@]}" "$BINDIR/pg_ctl" -D "$PGDATA" -l "$BASE/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $PORT -k $BASE -c fsync=off -c max_connections=200" \
  start >&2 || { cat "$BASE/server.log" >&2; exit 1; }
"${RUN[@]}" "$BINDIR/psql" -h 127.0.0.1 -p "$PORT" -U relgate -d postgres -qc \
  "CREATE DATABASE relgate_test" >&2

log "PostgreSQL $("$BINDIR/pg_ctl" --version | awk '{print $3}') on 127.0.0.1:$PORT, data in $PGDATA"
STOP="${RUN[*]} $BINDIR/pg_ctl -D $PGDATA -m fast stop >/dev/null; rm -rf $BASE"
echo "export RELGATE_TEST_POSTGRES_URL=postgresql+psycopg://relgate@127.0.0.1:$PORT/relgate_test"
echo "export RELGATE_TEST_POSTGRES_STOP=$(printf '%q' "$STOP")"
