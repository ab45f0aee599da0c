"""The GPU check's PyTorch side: timm's DeiT-tiny and ViT-B/16 in eager fp32 on the same GPU, for
the figures ours are set beside, and timm's DeiT-tiny logits of the repository's weights on the
golden input, computed there independently of our engine.

Usage: python3 torch_check.py WORK_DIR [--small]. Writes WORK_DIR/torch.json; without torch, timm
or CUDA it writes why ("skipped") and exits 0, so the check goes on. Needs numpy, torch and timm;
downloads nothing (pretrained=False; the weights are the repository's).
"""
import json
import struct
import sys
import time
from pathlib import Path

WORK = Path(sys.argv[1])
SMALL = '--small' in sys.argv[2:]
BATCHES = [1, 2] if SMALL else [1, 8, 32]
TRAIN_BATCH = 2 if SMALL else 32
MATMUL_N = 512 if SMALL else 4096
# --small times ViT-B/16 with one block, as the Node side does.
MODELS = [('deit_tiny_patch16_224', {}), ('vit_base_patch16_224', {'depth': 1} if SMALL else {})]


def save(result):
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / 'torch.json').write_text(json.dumps(result))


def read_safetensors(path):
    """Tensors of a safetensors file as float32 numpy arrays (F32 and F16 only)."""
    import numpy as np
    data = Path(path).read_bytes()
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + n])
    header.pop('__metadata__', None)
    out = {}
    for name, e in header.items():
        dtype = {'F32': np.float32, 'F16': np.float16}[e['dtype']]
        begin, end = e['data_offsets']
        out[name] = np.frombuffer(data[8 + n + begin:8 + n + end], dtype='<' + np.dtype(dtype).str[1:]).reshape(e['shape']).astype(np.float32)
    return out


def timed(fn, seconds, torch):
    """Milliseconds per call: three calls to warm up, then as many as fit in about `seconds` (three
    at least), queued back to back as a model's calls are, timed from the first to the end of the last."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < seconds:
        fn()
        calls += 1
        if calls % 10 == 0:
            torch.cuda.synchronize()  # so the clock above sees the GPU's time, not the queue's
    torch.cuda.synchronize()
    return 1000 * (time.perf_counter() - start) / calls


def main():
    try:
        import numpy as np
        import torch
        import timm
    except ImportError as e:
        save({'skipped': f'no {e.name}'})
        print(f'skipped: no {e.name}')
        return
    if not torch.cuda.is_available():
        save({'skipped': 'torch sees no CUDA device'})
        print('skipped: torch sees no CUDA device')
        return
    # Plain fp32, as our kernels compute: no TF32 in matmuls or convolutions.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision('highest')
    device = torch.device('cuda')
    name = torch.cuda.get_device_name(0)
    result = {'device': f'{name}, torch {torch.__version__}, timm {timm.__version__}', 'forward': []}
    print(f'device: {result["device"]}', flush=True)

    # Golden: the repository's DeiT-tiny weights (F16, widened to f32) on the golden input. A failure
    # here is reported and the timings still run.
    try:
        model = timm.create_model('deit_tiny_patch16_224', pretrained=False).to(device).eval()
        weights = read_safetensors('public/models/deit-tiny/model.safetensors')
        model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
        golden_input = torch.from_numpy(read_safetensors('tests/fixtures/deit_tiny_golden.safetensors')['input']).to(device)
        with torch.no_grad():
            logits = model(golden_input).float().cpu().numpy()
        result['golden_logits'] = [float(v) for v in logits.reshape(-1)]
        print(f'timm DeiT-tiny on the golden input: top-1 {[int(i) for i in logits.argmax(1)]}', flush=True)
        del model
    except Exception as e:
        result['golden_error'] = f'{type(e).__name__}: {e}'
        print(f'golden: error: {result["golden_error"]}', flush=True)
    save(result)

    seconds = 0.5 if SMALL else 1.0
    for arch, kwargs in MODELS:
        model = timm.create_model(arch, pretrained=False, **kwargs).to(device).eval()
        for batch in BATCHES:
            x = torch.randn(batch, 3, 224, 224, device=device)
            with torch.no_grad():
                ms = timed(lambda: model(x), seconds, torch)
            result['forward'].append({'timm': arch, 'batch': batch, 'ms_per_image': ms / batch})
            print(f'{arch} batch {batch}: {ms / batch:.3f} ms/image', flush=True)
            save(result)
        del model
        torch.cuda.empty_cache()

    # A training step as ours: forward, cross-entropy, backward, AdamW, from fresh weights.
    model = timm.create_model('deit_tiny_patch16_224', pretrained=False).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    x = torch.randn(TRAIN_BATCH, 3, 224, 224, device=device)
    y = torch.arange(TRAIN_BATCH, device=device) % 1000

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y, label_smoothing=0.1)
        loss.backward()
        optimizer.step()

    ms = timed(step, seconds, torch)
    result['train'] = {'batch': TRAIN_BATCH, 'images_per_second': 1000 * TRAIN_BATCH / ms}
    print(f'training step, DeiT-tiny batch {TRAIN_BATCH}: {1000 * TRAIN_BATCH / ms:.1f} images/s', flush=True)
    save(result)
    del model, optimizer

    a = torch.randn(MATMUL_N, MATMUL_N, device=device)
    b = torch.randn(MATMUL_N, MATMUL_N, device=device)
    ms = timed(lambda: torch.matmul(a, b), seconds, torch)
    result['matmul'] = {'n': MATMUL_N, 'gflops': 2 * MATMUL_N ** 3 / (ms * 1e6)}
    print(f'matmul {MATMUL_N}^3: {result["matmul"]["gflops"]:.0f} GFLOP/s', flush=True)
    save(result)


if __name__ == '__main__':
    try:
        main()
    except Exception as e:  # one line for the log, and the figures saved so far stay
        print(f'error: {type(e).__name__}: {e}', file=sys.stderr)
        sys.exit(1)
