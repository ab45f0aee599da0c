"""Makes the repository's two DeiT-tiny files from the originals (see NOTICE.md), once:

- public/models/deit-tiny/model.safetensors: timm's F32 weights rounded to F16 (half the download;
  the engine computes in f32 and widens F16 at load);
- tests/fixtures/deit_tiny_golden.safetensors: the float64 golden file's input, logits and features,
  and the attention probabilities of three layers (first, middle, last) instead of all twelve.

Usage: python3 scripts/make-deit-tiny-files.py DIR  (DIR holds deit_tiny_patch16_224.safetensors and
deit_tiny_golden.safetensors). Needs numpy only.
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GOLDEN_ATTENTION_LAYERS = [0, 6, 11]
DTYPES = {'F32': np.float32, 'F16': np.float16}


def read(path):
    data = Path(path).read_bytes()
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + n])
    metadata = header.pop('__metadata__', None)
    tensors = {}
    for name, e in header.items():
        begin, end = e['data_offsets']
        tensors[name] = np.frombuffer(data, DTYPES[e['dtype']], offset=8 + n + begin, count=(end - begin) // np.dtype(DTYPES[e['dtype']]).itemsize).reshape(e['shape'])
    return tensors, metadata


def write(path, tensors, metadata=None):
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        dtype = {np.dtype(np.float32): 'F32', np.dtype(np.float16): 'F16'}[t.dtype]
        blob = np.ascontiguousarray(t).astype(t.dtype.newbyteorder('<')).tobytes()
        header[name] = {'dtype': dtype, 'shape': list(t.shape), 'data_offsets': [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    if metadata:
        header['__metadata__'] = metadata
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)  # the data section starts 8-byte aligned
    Path(path).write_bytes(struct.pack('<Q', len(text)) + text + b''.join(blobs))


def main(source):
    weights, metadata = read(Path(source) / 'deit_tiny_patch16_224.safetensors')
    # Round to nearest even, as numpy's cast does; every DeiT-tiny weight is far inside f16's range.
    assert all(np.abs(t).max() < 60000 for t in weights.values())
    write(ROOT / 'public/models/deit-tiny/model.safetensors', {k: v.astype(np.float16) for k, v in weights.items()}, metadata)

    golden, golden_metadata = read(Path(source) / 'deit_tiny_golden.safetensors')
    trimmed = {k: golden[k] for k in ('input', 'logits', 'features')}
    trimmed['attention'] = np.ascontiguousarray(golden['attention'][:, GOLDEN_ATTENTION_LAYERS])
    trimmed['attention_layers'] = np.array(GOLDEN_ATTENTION_LAYERS, np.float32)
    golden_metadata = dict(golden_metadata or {}, attention='layers ' + ','.join(map(str, GOLDEN_ATTENTION_LAYERS)) + ' of 12 (attention_layers)')
    write(ROOT / 'tests/fixtures/deit_tiny_golden.safetensors', trimmed, golden_metadata)


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit('usage: python3 scripts/make-deit-tiny-files.py DIR')
    main(sys.argv[1])
