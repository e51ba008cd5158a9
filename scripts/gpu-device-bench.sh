#!/usr/bin/env bash
# GPU speed on the lent GPU machine: edgecap's wgpu backend (Vulkan) against Hugging Face
# transformers fp32 on CUDA, same shapes (BLIP-base, 384x384, 20 forced tokens).
# Prepare here first (bash scripts/gpu-device-prepare.sh), then through the `device` tool:
#   run(command="bash scripts/gpu-device-bench.sh", carry=[".device"], timeout_s=540)
# It finishes within 8 minutes (each part has a timeout, from one overall budget) and writes its
# logs and the side-by-side table under $OUT (target/device-out when OUT is unset).
#
# LOCAL=1 (for a check on a machine without the GPU machine's setup): no loaders unpacked into /
# (checked in a temporary folder instead), no nvidia-smi, no HF peer (its column reads n/a).
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
DEV=$ROOT/.device
OUT=${OUT:-$ROOT/target/device-out}
LOCAL=${LOCAL:-0}
BUDGET=${BUDGET:-480}          # seconds for the whole script
RUNS=${RUNS:-5}
mkdir -p "$OUT"
rm -f "$OUT"/{device-bench.log,nvidia-smi.txt,gpu_speed.txt,gpu_speed_iphone.txt,cli.txt,cli_q4.txt,hf_peer.txt,table.txt}
t0=$SECONDS
exec > >(tee "$OUT/device-bench.log") 2>&1

left() { echo $((BUDGET - (SECONDS - t0))); }
# part NAME CAP CMD...: runs CMD with a timeout of min(CAP, time left - 10 s), never below 5 s.
part() {
    local name=$1 cap=$2; shift 2
    local t=$(($(left) - 10)); [ "$t" -gt "$cap" ] && t=$cap; [ "$t" -lt 5 ] && t=5
    echo "== $name (timeout ${t}s, $(left)s of ${BUDGET}s left)"
    local s=$SECONDS
    timeout -k 5 "$t" "$@"
    local rc=$?
    echo "== $name: exit $rc after $((SECONDS - s)) s"
    return $rc
}

# Binaries: carried xz-compressed, unpacked outside the repository (so that a later carry of
# .device stays small) with Python's lzma (every python3 has it; xz may be missing there).
BIN=${BIN:-/tmp/edgecap-device-bin}
mkdir -p "$BIN"
unpack() {
    local name=$1
    [ -f "$DEV/$name.xz" ] || { echo "missing $DEV/$name.xz: run scripts/gpu-device-prepare.sh and carry .device" >&2; return 1; }
    python3 -c 'import lzma,shutil,sys
with lzma.open(sys.argv[1]) as f, open(sys.argv[2], "wb") as o: shutil.copyfileobj(f, o)' "$DEV/$name.xz" "$BIN/$name" &&
        chmod +x "$BIN/$name"
}
unpack gpu_speed || exit 1
unpack edgecap || echo "(no CLI; the CLI check is skipped)"

if [ "$LOCAL" = 1 ]; then
    tmp=$(mktemp -d)
    for f in "$DEV"/gl/*.deb; do dpkg -x "$f" "$tmp" || echo "bad package $f"; done
    echo "LOCAL=1: loaders checked in $tmp (not installed): $(find "$tmp" -name 'lib*.so*' | wc -l) libraries"
    rm -rf "$tmp"
else
    for f in "$DEV"/gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
    nv_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$nv_icd" ]; then
        export VK_DRIVER_FILES=$nv_icd
        export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
    fi
    ldconfig -p | grep -q libvulkan || echo "warning: no libvulkan after unpacking the loaders"
    { nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv; } 2>&1 | tee "$OUT/nvidia-smi.txt"
fi

export EDGECAP_ROOT=$ROOT   # the bench finds the fixtures and target/bench-models/ here
export RUNS

# Parts in order of importance, each capped (sum = 480 s), and never past the overall budget.
# 1. edgecap, adapter limits (builds the random BLIP-base on first use: see the log's "built in").
part "edgecap gpu_speed RUNS=$RUNS" 200 "$BIN/gpu_speed" 2>&1 | tee "$OUT/gpu_speed.txt"

# 2. The HF peer: transformers fp32 on CUDA, random init at BLIP-base shapes, median of 5.
if [ "$LOCAL" = 1 ]; then
    echo "== HF peer: skipped (LOCAL=1)"
else
    PYTHONUNBUFFERED=1 part "HF transformers fp32 CUDA" 150 \
        python3 benches/peers/hf-peer/hf_peer.py --random --device cuda --runs 5 --tokens 20 2>&1 | tee "$OUT/hf_peer.txt"
fi

# 3. iPhone-like: WebGPU default limits, a submit every 64 dispatches; no second profile.
part "edgecap gpu_speed RUNS=$RUNS SUBMIT_EVERY=64 GPU_LIMITS=default" 90 \
    env SUBMIT_EVERY=64 GPU_LIMITS=default PROFILE=0 "$BIN/gpu_speed" 2>&1 | tee "$OUT/gpu_speed_iphone.txt"

# 4. The CLI on the same model, one caption (that it runs there, and its JSON timings).
model=$(sed -n 's/^model: \(.*\.gguf\) (random.*/\1/p' "$OUT/gpu_speed.txt" | head -1)
if [ -x "$BIN/edgecap" ]; then
    if [ -n "$model" ] && [ -f "$model" ]; then
        part "edgecap caption --backend gpu (random BLIP-base)" 40 \
            "$BIN/edgecap" caption --model "$model" --backend gpu --json --min-tokens 20 --max-tokens 20 \
            tests/fixtures/images/synthetic_384x384.png 2>&1 | tee "$OUT/cli.txt"
    else
        m=tests/fixtures/models/blip-tiny-random
        part "edgecap caption --backend gpu (tiny model)" 40 \
            "$BIN/edgecap" caption --model $m --config $m/config.json --tokenizer tests/fixtures/models/tokenizer.json \
            --backend gpu --json tests/fixtures/images/synthetic_64x64.png 2>&1 | tee "$OUT/cli.txt"
    fi
fi

# 4b. 4-bit next to q8_0 (issue 16): the same model converted to q4_k and q4_0, one image four
# times in one process per dtype; the timings of the last three are the figures (cli_q4.txt).
if [ -x "$BIN/edgecap" ] && [ -n "$model" ] && [ -f "$model" ]; then
    img=tests/fixtures/images/synthetic_384x384.png
    : > "$OUT/cli_q4.txt"
    for d in q8_0 q4_k q4_0; do
        part "edgecap caption --backend gpu, $d (4 captions)" 40 bash -c '
            set -e
            file=$1
            if [ "$2" != q8_0 ]; then "$3" convert --from "$1" --to "$4/blip-base-$2.gguf" --dtype "$2" >/dev/null; file="$4/blip-base-$2.gguf"; fi
            echo "== $2"
            "$3" caption --model "$file" --backend gpu --json --min-tokens 20 --max-tokens 20 "$5" "$5" "$5" "$5"
        ' _ "$model" "$d" "$BIN/edgecap" "$OUT" "$img" 2>&1 | tee -a "$OUT/cli_q4.txt"
        rm -f "$OUT/blip-base-$d.gguf"
    done
fi

# 5. One side-by-side table.
python3 - "$OUT" <<'PY' | tee "$OUT/table.txt"
import json, os, re, sys
out = sys.argv[1]

def summary(name):
    try:
        text = open(os.path.join(out, name)).read()
    except OSError:
        return None
    m = re.findall(r"^SUMMARY (.*)$", text, re.M)
    if not m:
        return None
    return {k: v for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', m[-1])}

def hf():
    try:
        for line in open(os.path.join(out, "hf_peer.txt")):
            if line.startswith("{") and '"median"' in line:
                return json.loads(line)
    except OSError:
        pass
    return None

e, ei, h = summary("gpu_speed.txt"), summary("gpu_speed_iphone.txt"), hf()
num = lambda d, k: float(d[k]) if d and k in d else None
rows = [
    ("vision ms (vision + cross K/V)", "vision_ms", "vision_kv_ms"),
    ("ms per token", "token_ms", "per_token_kv_ms"),
    ("20-token caption ms", "caption_ms", "caption_ms"),
]
def f(x, p=2):
    if x is None:
        return "n/a"
    if 0 < abs(x) < 10 ** (2 - p):  # small figures (the tiny model on a software adapter): 3 significant digits
        return f"{x:.3g}"
    return f"{x:.{p}f}"
print()
print("edgecap " + (json.loads(e["adapter"]) + " (wgpu)" if e and "adapter" in e else "(no result)"))
print("HF      " + (h["peer"] if h else "n/a"))
head = ("", "edgecap", "edgecap iPhone-like", "HF fp32 CUDA", "speed-up vs HF")
print(f"{head[0]:<32} {head[1]:>10} {head[2]:>20} {head[3]:>13} {head[4]:>15}")
for label, ek, hk in rows:
    a, b = num(e, ek), num(ei, ek)
    c = h["median"].get(hk) if h else None
    s = f"{c / a:.2f}x" if a and c else "n/a"
    print(f"{label:<32} {f(a):>10} {f(b):>20} {f(c):>13} {s:>15}")
# HF does the same vision FLOPs (fp32); its decoder reads f32 weights, so no GB/s is given for it.
gflop = num(e, "vision_gflop")
hf_gflops = gflop / h["median"]["vision_kv_ms"] * 1e3 if gflop and h else None
print(f"{'vision GFLOP/s':<32} {f(num(e, 'vision_gflops'), 1):>10} {f(num(ei, 'vision_gflops'), 1):>20} {f(hf_gflops, 1):>13} {'':>15}")
print(f"{'decoder step GB/s':<32} {f(num(e, 'step_gbps'), 1):>10} {f(num(ei, 'step_gbps'), 1):>20} {'':>13} {'':>15}")
if e and "vision_gflop" in e:
    print(f"vision pass {e['vision_gflop']} GFLOP (vision + cross K/V); decoder step {e['step_mb']} MB read (q8_0 weights + cross K/V).")
print("iPhone-like: GPU_LIMITS=default SUBMIT_EVERY=64. speed-up = HF ms / edgecap ms (>1: edgecap faster).")
if h:
    print(f"HF vision alone (no cross K/V): {h['median']['vision_ms']:.2f} ms; HF ms per token counted as edgecap's: "
          f"(caption - vision - cross K/V) / {h['tokens']}.")
PY
echo "== total $((SECONDS - t0)) s of ${BUDGET}s; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
sleep 1  # let tee finish the log
