#!/usr/bin/env bash
# The GPU check, for a Linux x86-64 machine with an NVIDIA GPU and no network: Node, Dawn and
# Vulkan's loader come from gpu-check/carry (npm run gpu-check:pack, on a machine with the
# registry), PyTorch and timm from the machine's Python. It finds the GPU through Vulkan, prints
# the adapter, checks golden outputs there, times DeiT-tiny and ViT-B/16 forward passes, a
# training step and a 4096^3 matmul, the same with PyTorch eager fp32, and prints them side by
# side. Every step prints "[n/N] name ..." when it starts, its output indented, and how it ended,
# so a run that stops shows where. Each step has a time limit, and all of them together stay
# under 4 minutes. Downloads nothing.
#
#   bash scripts/gpu-check.sh [--small]
#
# --small: batch 1 and 2, ViT-B/16 with one block, one timed training step, matmul 512^3 and
# twenty times the time limits (on a 2-core machine others share),
# for a software adapter (SwiftShader). With $OUT set, the log, the table and the figures (JSON)
# are written there too. Exit status 0 when every step passed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SMALL=''
case "${1:-}" in
  '') ;;
  --small) SMALL=--small ;;
  *) echo "usage: bash scripts/gpu-check.sh [--small]" >&2; exit 2 ;;
esac
CARRY=$ROOT/gpu-check/carry
WORK=$ROOT/gpu-check/run
rm -rf "$WORK"
mkdir -p "$WORK"
# The Python with PyTorch and timm (another one than python3 if PYTHON names it).
PYTHON=${PYTHON:-python3}
TEE_PID=''
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  exec > >(tee "$OUT/gpu-check.log") 2>&1
  TEE_PID=$!
fi

# Time limits in seconds; the whole run stops starting steps at its deadline.
SCALE=1
[ -n "$SMALL" ] && SCALE=20
DEADLINE=$(( $(date +%s) + 235 * SCALE ))
N=11
n=0
FAILED=()

# step NAME LIMIT COMMAND...: runs COMMAND with its output indented, within LIMIT seconds (or
# what is left before the deadline), and says how it ended.
step() {
  local name=$1 limit=$(( $2 * SCALE )) start status left
  shift 2
  n=$((n + 1))
  left=$(( DEADLINE - $(date +%s) ))
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -le 0 ]; then
    echo "[$n/$N] $name ... not run: the check's 4 minutes are spent"
    FAILED+=("$name")
    return 1
  fi
  echo "[$n/$N] $name ..."
  start=$(date +%s.%N)
  set +e
  # timeout runs a program: the step's function runs in a bash that has it (export -f below).
  timeout --kill-after=5 "$limit" bash -c '"$@"' step "$@" 2>&1 | sed -u 's/^/      /'
  status=${PIPESTATUS[0]}
  set -e
  local took
  took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  if [ "$status" -eq 0 ]; then
    echo "[$n/$N] $name ... ok (${took} s)"
    return 0
  fi
  if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "[$n/$N] $name ... FAILED: stopped at its time limit of ${limit} s"
  else
    echo "[$n/$N] $name ... FAILED (exit status $status, ${took} s)"
  fi
  FAILED+=("$name")
  return 1
}

skip() {
  n=$((n + 1))
  echo "[$n/$N] $1 ... skipped: $2"
  FAILED+=("$1")
}

# Unpacks a .tar.xz, or a .deb's data, with Python's standard library: Python is on the GPU
# machine for PyTorch, while xz, dpkg-deb and ar may not be.
unpack() {
  "$PYTHON" - "$1" "$2" <<'PY'
import io, sys, tarfile
src, dest = sys.argv[1], sys.argv[2]
def extract(tar):
    # The 'data' filter where this Python has it (3.12+), which keeps archives inside dest.
    tar.extractall(dest, **({'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}))
if src.endswith('.deb'):
    data = open(src, 'rb').read()
    assert data[:8] == b'!<arch>\n', f'{src} is not a Debian package'
    at = 8
    while at < len(data):
        name, size = data[at:at + 16].decode().strip().rstrip('/'), int(data[at + 48:at + 58])
        if name.startswith('data.tar'):
            with tarfile.open(fileobj=io.BytesIO(data[at + 60:at + 60 + size])) as tar:
                extract(tar)
            break
        at += 60 + size + (size & 1)
    else:
        sys.exit(f'{src}: no data.tar member')
else:
    with tarfile.open(src) as tar:
        extract(tar)
PY
}

echo "vitgpu GPU check${SMALL:+ (--small)}, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(uname -m), $(nproc) cores"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/nvidia-smi: /' || true

carry_present() {
  local missing=0
  for f in node-linux-x64.tar.xz webgpu.tar.xz check.mjs; do
    [ -f "$CARRY/$f" ] || { echo "missing $CARRY/$f"; missing=1; }
  done
  ls "$CARRY"/libvulkan1_*.deb >/dev/null 2>&1 || { echo "missing $CARRY/libvulkan1_*.deb"; missing=1; }
  [ "$missing" -eq 0 ] || { echo "pack it first where the npm registry is reachable: npm run gpu-check:pack, then carry gpu-check/carry"; return 1; }
  cat "$CARRY/VERSIONS" 2>/dev/null || true
  command -v "$PYTHON" >/dev/null || { echo "no $PYTHON: it unpacks the archives and runs PyTorch (PYTHON=... names another)"; return 1; }
  "$PYTHON" --version
}

unpack_node() {
  unpack "$CARRY/node-linux-x64.tar.xz" "$WORK/node"
  "$WORK/node/bin/node" --version
}

unpack_dawn() {
  unpack "$CARRY/webgpu.tar.xz" "$WORK"
  # check.mjs finds `webgpu` in the node_modules beside it.
  cp "$CARRY/check.mjs" "$WORK/check.mjs"
  (cd "$ROOT" && ls -l "${WORK#"$ROOT"/}/node_modules/webgpu/dist/linux-x64/dawn.node")
}

# Sets LD_LIBRARY_PATH and VK_DRIVER_FILES for this shell (so not run through `step`'s pipe).
prepare_vulkan() {
  local deb icd='' lib
  deb=$(ls "$CARRY"/libvulkan1_*.deb | head -n 1)
  unpack "$deb" "$WORK/vulkan" || return 1
  lib=$(dirname "$(find "$WORK/vulkan" -name 'libvulkan.so.1' | head -n 1)")
  [ -f "$lib/libvulkan.so.1" ] || { echo "no libvulkan.so.1 in $deb"; return 1; }
  echo "Vulkan loader: $(readlink -f "$lib/libvulkan.so.1" | sed "s|^$ROOT/||")"
  export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # Where NVIDIA's container runtime puts the driver's libraries, when ld.so does not look there.
  for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
    [ -d "$d" ] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d"
  done
  for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.x86_64.json; do
    if [ -f "$icd" ]; then
      export VK_DRIVER_FILES=$icd
      echo "NVIDIA Vulkan driver: VK_DRIVER_FILES=$icd"
      sed 's/^/  /' "$icd"
      lib=$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["ICD"]["library_path"])' "$icd" 2>/dev/null || true)
      if [ -n "$lib" ]; then
        if [ -e "$lib" ] || { [ "${lib#/}" = "$lib" ] && ls /usr/local/nvidia/lib64/"$lib" /usr/lib/x86_64-linux-gnu/"$lib" /usr/lib64/"$lib" 2>/dev/null | grep -q .; }; then
          echo "its library $lib: found"
        else
          echo "its library $lib: not found in /usr/local/nvidia/lib64, /usr/lib/x86_64-linux-gnu or /usr/lib64 (the container may lack the driver's graphics libraries: NVIDIA_DRIVER_CAPABILITIES needs 'graphics')"
        fi
      fi
      break
    fi
  done
  if [ -z "$icd" ] || [ "${VK_DRIVER_FILES:-}" != "$icd" ]; then
    echo "no NVIDIA Vulkan driver file: Vulkan's own search (VK_DRIVER_FILES=${VK_DRIVER_FILES:-}, VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-}, VK_ADD_DRIVER_FILES=${VK_ADD_DRIVER_FILES:-}; without them, SwiftShader where Chromium's is installed)"
  fi
  # Dawn (dawn.node) needs glibc 2.34 and GCC 12's libstdc++ (GLIBCXX_3.4.30); where the system's
  # is older, a Python environment's (conda's, beside PyTorch) often is new enough.
  echo "$(getconf GNU_LIBC_VERSION 2>/dev/null || echo 'glibc (version unknown)'); Dawn needs glibc 2.34 or newer"
  local cxx found=''
  for cxx in /usr/lib/x86_64-linux-gnu/libstdc++.so.6 /usr/lib64/libstdc++.so.6 /lib/x86_64-linux-gnu/libstdc++.so.6; do
    if [ -f "$cxx" ]; then found=$cxx; break; fi
  done
  if [ -n "$found" ] && grep -qa GLIBCXX_3.4.30 "$found"; then
    echo "libstdc++: $found has GLIBCXX_3.4.30"
  else
    echo "libstdc++: ${found:-none found} lacks GLIBCXX_3.4.30, which Dawn needs"
    cxx="$("$PYTHON" -c 'import sys; print(sys.prefix)')/lib/libstdc++.so.6"
    if [ -f "$cxx" ] && grep -qa GLIBCXX_3.4.30 "$cxx"; then
      export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$(dirname "$cxx")"
      echo "libstdc++: using Python's $cxx"
    fi
  fi
  # Dawn warns on stderr when this is unset.
  export XDG_RUNTIME_DIR="$WORK/xdg"
  mkdir -p -m 0700 "$XDG_RUNTIME_DIR"
}

node_step() { "$WORK/node/bin/node" "$WORK/check.mjs" "$1" $SMALL --work "$WORK"; }

# On failure, the loader's own account of which drivers it found and why they failed.
adapter_step() {
  node_step adapter && return 0
  echo "Vulkan loader diagnostics (VK_LOADER_DEBUG=error,warn,driver):"
  VK_LOADER_DEBUG=error,warn,driver timeout 20 "$WORK/node/bin/node" "$WORK/check.mjs" adapter $SMALL --work "$WORK" 2>&1 | head -n 60
  return 1
}

torch_step() { "$PYTHON" scripts/gpu-check/torch_check.py "$WORK" $SMALL; }

export ROOT CARRY WORK SMALL PYTHON
export -f unpack carry_present unpack_node unpack_dawn node_step adapter_step torch_step

have_node=0
have_gpu=0
if step 'carried files' 10 carry_present && step 'unpack Node' 20 unpack_node && step 'unpack Dawn (webgpu)' 10 unpack_dawn; then
  have_node=1
else
  while [ "$n" -lt 3 ]; do skip 'unpack' 'an earlier step failed'; done
fi

# Not through `step`: it sets this shell's environment for the steps after it.
if [ "$have_node" -eq 0 ]; then
  skip 'libraries: Vulkan loader and driver, libstdc++' 'no Node'
else
  n=$((n + 1))
  echo "[$n/$N] libraries: Vulkan loader and driver, libstdc++ ..."
  vstart=$(date +%s)
  if prepare_vulkan > "$WORK/vulkan.log" 2>&1; then
    sed 's/^/      /' "$WORK/vulkan.log"
    echo "[$n/$N] libraries: Vulkan loader and driver, libstdc++ ... ok ($(( $(date +%s) - vstart )) s)"
  else
    [ -f "$WORK/vulkan.log" ] && sed 's/^/      /' "$WORK/vulkan.log"
    echo "[$n/$N] libraries: Vulkan loader and driver, libstdc++ ... FAILED"
    FAILED+=('Vulkan')
    have_node=0
  fi
fi

if [ "$have_node" -eq 1 ] && step 'adapter (Dawn on Vulkan)' 20 adapter_step; then
  have_gpu=1
elif [ "$have_node" -eq 0 ]; then
  skip 'adapter (Dawn on Vulkan)' 'no Node or Vulkan'
fi
if [ "$have_gpu" -eq 1 ]; then
  step 'golden outputs (DeiT-tiny F16, micro timm fixtures F32)' 25 node_step golden || true
  step 'forward ms/image (DeiT-tiny, ViT-B/16)' 45 node_step forward || true
  step 'training step images/s (DeiT-tiny)' 25 node_step train || true
  step 'matmul GFLOP/s' 15 node_step matmul || true
else
  for s in golden forward training matmul; do skip "$s" 'no adapter'; done
fi
step 'PyTorch eager fp32 (timm)' 60 torch_step || true
if [ "$have_node" -eq 1 ]; then
  step 'report' 5 node_step report || true
else
  skip 'report' 'no Node'
fi

if [ -n "${OUT:-}" ]; then
  cp "$WORK"/*.json "$OUT/" 2>/dev/null || true
  cp "$WORK/table.txt" "$OUT/" 2>/dev/null || true
fi
status=0
if [ "${#FAILED[@]}" -gt 0 ]; then
  echo "gpu check: ${#FAILED[@]} of $N steps failed or did not run: ${FAILED[*]}"
  status=1
else
  echo "gpu check: all $N steps ok"
fi
# The log in $OUT is whole only once tee has written the last line.
if [ -n "$TEE_PID" ]; then
  exec >&- 2>&-
  wait "$TEE_PID" || true
fi
exit "$status"
