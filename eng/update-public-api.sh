#!/usr/bin/env bash
# Adds every public symbol the build reports as undeclared (RS0016) to the PublicAPI.Unshipped.txt of its
# project, and removes the ones it reports as declared but gone (RS0017). Run it after a deliberate change
# to the public surface, then review the diff of the PublicAPI files: that diff is the API change.
set -uo pipefail
cd "$(dirname "$0")/.."
for round in 1 2 3; do
  log=$(mktemp)
  dotnet build ShmIpc.sln -c Release 2>&1 > "$log"
  python3 - "$log" <<'PY'
import re, sys, collections
added, removed = collections.defaultdict(set), collections.defaultdict(set)
for line in open(sys.argv[1], encoding="utf-8"):
    m = re.search(r"error (RS001[67]): Symbol '(.+?)' is (?:not part of the declared (?:public )?API|part of the declared API, but is either not public or could not be found).*\[(.+?)\.csproj\]", line)
    if not m:
        continue
    code, symbol, project = m.groups()
    folder = project.rsplit("/", 1)[0]
    (added if code == "RS0016" else removed)[folder].add(symbol)
for folder in set(added) | set(removed):
    path = folder + "/PublicAPI.Unshipped.txt"
    lines = [l.rstrip("\n") for l in open(path, encoding="utf-8") if l.strip() and not l.startswith("#")]
    lines = sorted((set(lines) | added[folder]) - removed[folder], key=lambda s: s.replace("~", ""))
    with open(path, "w", encoding="utf-8") as f:
        f.write("#nullable enable\n" + "".join(l + "\n" for l in lines))
    print(f"{path}: +{len(added[folder])} -{len(removed[folder])}")
PY
  if ! grep -qE "error RS001[67]" "$log"; then rm -f "$log"; break; fi
  rm -f "$log"
done
