#!/usr/bin/env bash
# The test command of README.md: brings what the suite needs on a fresh machine that has only the .NET SDK,
# then runs `dotnet test ShmIpc.sln -c Release` (extra arguments are passed on to it).
#
# The suite needs, besides the SDK:
#   - a C compiler and python3: the interop tests compile and run real C and Python peers;
#   - setpriv (util-linux): the ownership tests run a second, unprivileged user (they need root to do so);
#   - nats-server (Debian's, 2.9.10 here): the NATS pool and queue tests start their own servers on loopback ports.
# As root (or with sudo) the missing Debian packages are installed; otherwise this says what to install.
set -uo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

missing=()
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v setpriv >/dev/null 2>&1 || missing+=(util-linux)
command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)

if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; fi
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || [ -n "$sudo" ]; }; then
    echo "test.sh: installing ${missing[*]} (the interop, ownership and NATS tests need them)"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing[@]}" >/dev/null \
      || { echo "test.sh: could not install ${missing[*]}" >&2; exit 1; }
  else
    echo "test.sh: the suite needs these Debian packages, which are missing: ${missing[*]}" >&2
    echo "         install them (sudo apt-get install ${missing[*]}) and run ./test.sh again." >&2
    exit 1
  fi
fi

exec dotnet test ShmIpc.sln -c Release "$@"
