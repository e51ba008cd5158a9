#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with seeds from the test fixtures (the corpus is not committed; the
# inputs that found bugs are, in fuzz/regressions/<target>/).
#
#   bash fuzz/seed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
C=fuzz/corpus
mkdir -p $C/{gguf,safetensors,config,image,tokenizer}

# The micro model (GGUF q8_0/f32/f16, safetensors) and configs, written by the test that checks
# the micro model loads and captions.
EDGECAP_FUZZ_SEEDS="$PWD/$C" cargo test --release --quiet --test fuzz_regressions the_micro_seed_model >/dev/null

# The small GGUF file gguf-py wrote (tests/gguf.rs).
cp tests/fixtures/gguf/py_written.gguf $C/gguf/
# Every fixture config.json.
for f in tests/fixtures/models/*/config.json; do cp "$f" "$C/config/$(basename "$(dirname "$f")").json"; done

# Images: the fixture PNGs, and small files of every format and pixel layout the decoder takes.
cp tests/fixtures/images/synthetic_64x64.png tests/fixtures/images/synthetic_160x120.png $C/image/
PYTHONPATH=target/python-deps/3.11 python3 - "$C/image" <<'PY'
import sys, struct
from PIL import Image
out = sys.argv[1]
base = Image.open('tests/fixtures/images/synthetic_64x64.png').convert('RGB').resize((24, 16))
base.save(f'{out}/small.jpg', quality=80)
base.save(f'{out}/small-progressive.jpg', quality=70, progressive=True)
base.save(f'{out}/small.gif')
base.save(f'{out}/small.webp', quality=80)
base.save(f'{out}/small-lossless.webp', lossless=True)
base.convert('LA').save(f'{out}/grey-alpha.png')
base.convert('L').save(f'{out}/grey.png')
base.convert('P').save(f'{out}/palette.png')
base.convert('RGBA').save(f'{out}/rgba.png')
base.convert('I;16').save(f'{out}/grey16.png')
Image.new('RGB', (1, 1), (200, 10, 10)).save(f'{out}/1x1.png')
# An RGBA frame for the raw path: width, height (u16 LE), then the pixels.
frame = base.convert('RGBA')
open(f'{out}/frame.rgba', 'wb').write(struct.pack('<HH', *frame.size) + frame.tobytes())
PY

# Token ids the reference captions produced, as u32 LE; and a prompt.
python3 - "$C/tokenizer" <<'PY'
import json, struct, sys
out = sys.argv[1]
cases = json.load(open('tests/fixtures/reference/cases.json'))
cases = cases['cases'] if isinstance(cases, dict) else cases
for i, case in enumerate(cases[:8]):
    open(f'{out}/ids-{i}', 'wb').write(struct.pack(f'<{len(case["token_ids"])}I', *case['token_ids']))
open(f'{out}/prompt', 'wb').write('a picture of'.encode())
PY
for t in gguf safetensors config image tokenizer; do echo "$t: $(ls $C/$t | wc -l) seeds"; done
