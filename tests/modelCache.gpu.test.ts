// A model folder loaded from a URL: kept in the Cache API and read from there the second time
// (no second download), and bad downloads (404, unreachable or refused by CORS, stopped half-way)
// refused with the URL named and nothing kept. The network is a stand-in for fetch, so each case
// is exact; the cache is the browser's own. Last, the real DeiT-tiny from the test server through
// the core Engine on a device the app created, as the README shows it.
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { Engine, MODEL_CACHE, decodeImage, loadModelFolder, type ByteSource } from '../src/index';
import { messageOf } from './helpers/errors';

const BASE = `${location.origin}/models/cache-test/`;
const CONFIG = JSON.stringify({ architecture: 'test-model', labelsFile: 'labels.json' });
const LABELS = JSON.stringify(['a', 'b']);
const WEIGHTS = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7) & 255);

type Serve = (url: string) => Response | Promise<Response>;
let requests: string[];
/** The Range header of each request, and of the last one. */
let ranges: (string | undefined)[];
let lastRange: string | undefined;

/** Stands in for the network: `serve` answers each request by URL. */
function network(serve: Serve): void {
  requests = [];
  ranges = [];
  vi.stubGlobal('fetch', async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    requests.push(url.slice(BASE.length));
    lastRange = new Headers(init?.headers).get('range') ?? undefined;
    ranges.push(lastRange);
    return serve(url);
  });
}

/** The folder as a server holding it whole answers. */
const whole: Serve = (url) => {
  const file = url.slice(BASE.length);
  const body = { 'config.json': CONFIG, 'labels.json': LABELS, 'model.safetensors': WEIGHTS }[file];
  if (body === undefined) return new Response('not here', { status: 404, statusText: 'Not Found' });
  return new Response(body, { headers: { 'content-length': String(typeof body === 'string' ? new TextEncoder().encode(body).length : body.length) } });
};

/** The weights' first `sent` bytes under a Content-Length of them all, then the end or a network error. */
function truncated(sent: number, fail: boolean): Serve {
  return (url) => {
    if (!url.endsWith('model.safetensors')) return whole(url);
    let pulls = 0;
    const body = new ReadableStream<Uint8Array>({
      // The bytes on the first read, the end (or the error) on the next: an error discards what is queued.
      pull(c) {
        if (pulls++ === 0) c.enqueue(WEIGHTS.slice(0, sent));
        else if (fail) c.error(new TypeError('network error'));
        else c.close();
      },
    });
    return new Response(body, { headers: { 'content-length': String(WEIGHTS.length) } });
  };
}

/** What `load` received, or a load that refuses the files. */
let loaded: { name: string; bytes: Uint8Array; labels: unknown }[];
async function accept(name: string, weights: Blob | ByteSource, config: Record<string, unknown>): Promise<string> {
  loaded.push({ name, bytes: weights instanceof Blob ? new Uint8Array(await weights.arrayBuffer()) : await weights.read(0, weights.size), labels: config.labels });
  return name;
}

async function kept(): Promise<string[]> {
  const cache = await caches.open(MODEL_CACHE);
  return (await cache.keys()).map((r) => r.url.slice(BASE.length)).sort();
}

beforeEach(async () => {
  await caches.delete(MODEL_CACHE);
  loaded = [];
});
afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

describe('the model cache', () => {
  test('the second load reads every file from the cache: no request, the same bytes', async () => {
    network(whole);
    const progress: number[] = [];
    const first = await loadModelFolder(BASE, accept, (p) => progress.push(p.loaded));
    expect(first).toEqual({ result: 'test-model', cache: { hit: false, stored: true } });
    expect(requests).toEqual(['config.json', 'labels.json', 'model.safetensors']);
    expect(progress.at(-1)).toBe(WEIGHTS.length);
    expect(await kept()).toEqual(['config.json', 'labels.json', 'model.safetensors']);

    network(() => {
      throw new TypeError('Failed to fetch'); // offline
    });
    const second = await loadModelFolder(BASE.slice(0, -1), accept); // the same folder, without its slash
    expect(second).toEqual({ result: 'test-model', cache: { hit: true, stored: false } });
    expect(requests).toEqual([]);
    expect(loaded[1]!.bytes).toEqual(WEIGHTS);
    expect(loaded[1]!.labels).toEqual(['a', 'b']);
  });

  test('cache: false downloads every time and keeps nothing', async () => {
    network(whole);
    await loadModelFolder(BASE, accept, undefined, { cache: false });
    const again = await loadModelFolder(BASE, accept, undefined, { cache: false });
    expect(again.cache).toEqual({ hit: false, stored: false });
    // Each load asks for a byte range of the weights first; this server sends them whole instead.
    expect(requests).toHaveLength(8);
    expect(loaded.map((l) => l.bytes)).toEqual([WEIGHTS, WEIGHTS]);
    expect(await kept()).toEqual([]);
  });

  test('cache: false from a server that answers ranges reads the weights by ranges, as they are asked for', async () => {
    network((url) => {
      if (!url.endsWith('model.safetensors')) return whole(url);
      const range = /^bytes=(\d+)-(\d+)$/.exec(lastRange ?? '');
      if (!range) return whole(url);
      const [begin, end] = [Number(range[1]), Math.min(Number(range[2]), WEIGHTS.length - 1)];
      return new Response(WEIGHTS.slice(begin, end + 1), { status: 206, headers: { 'content-range': `bytes ${begin}-${end}/${WEIGHTS.length}` } });
    });
    const { cache } = await loadModelFolder(BASE, accept, undefined, { cache: false });
    expect(cache).toEqual({ hit: false, stored: false });
    expect(loaded.map((l) => l.bytes)).toEqual([WEIGHTS]);
    // config, labels, the probe (bytes=0-0), then the read of the whole file as `accept` asked.
    expect(ranges).toEqual([undefined, undefined, 'bytes=0-0', `bytes=0-${WEIGHTS.length - 1}`]);
    expect(await kept()).toEqual([]);
  });

  test('the size limit holds for a cached checkpoint too', async () => {
    network(whole);
    await loadModelFolder(BASE, accept);
    expect(await messageOf(loadModelFolder(BASE, accept, undefined, { maxBytes: 1000 })))
      .toBe('checkpoint: 2.9 KiB (3,000 bytes) is over the limit of 1,000 bytes for one checkpoint');
  });

  test('a cache that refuses to store is a warning: the model still loads, nothing is half-kept', async () => {
    network(whole);
    const put = Cache.prototype.put;
    let puts = 0;
    vi.spyOn(Cache.prototype, 'put').mockImplementation(async function (this: Cache, ...args) {
      // The first file goes in, the second finds the storage full.
      if (puts++ === 0) return put.apply(this, args);
      throw new DOMException('the quota has been exceeded', 'QuotaExceededError');
    });
    const { result, cache } = await loadModelFolder(BASE, accept);
    expect(result).toBe('test-model');
    expect(cache).toEqual({ hit: false, stored: false, warning: 'the model could not be kept for offline use: the quota has been exceeded' });
    vi.restoreAllMocks();
    expect(await kept()).toEqual([]);
  });
});

describe('bad downloads: the URL named, nothing kept', () => {
  test('a folder that is not there (HTTP 404)', async () => {
    network(() => new Response('', { status: 404, statusText: 'Not Found' }));
    expect(await messageOf(loadModelFolder(BASE, accept))).toBe(`could not download ${BASE}config.json: HTTP 404 Not Found`);
    expect(await kept()).toEqual([]);
  });

  test('weights missing beside their config (HTTP 404)', async () => {
    network((url) => (url.endsWith('model.safetensors') ? new Response('', { status: 404, statusText: 'Not Found' }) : whole(url)));
    expect(await messageOf(loadModelFolder(BASE, accept))).toBe(`could not download ${BASE}model.safetensors: HTTP 404 Not Found`);
    expect(await kept()).toEqual([]);
  });

  test('a server on another origin without CORS headers (fetch rejects)', async () => {
    const other = 'https://models.example.org/deit/';
    network(() => {
      throw new TypeError('Failed to fetch');
    });
    expect(await messageOf(loadModelFolder(other, accept)))
      .toBe(`could not download ${other}config.json: Failed to fetch (the server is unreachable, or it is on another origin and its CORS headers do not allow this one)`);
  });

  test('a download that ends before its Content-Length', async () => {
    network(truncated(1200, false));
    expect(await messageOf(loadModelFolder(BASE, accept, () => undefined)))
      .toBe(`could not download ${BASE}model.safetensors: the download stopped after 1200 of 3000 bytes (the server announced 3000 bytes)`);
    expect(loaded).toEqual([]);
    expect(await kept()).toEqual([]);
  });

  test('a download cut by a network error half-way', async () => {
    network(truncated(1200, true));
    expect(await messageOf(loadModelFolder(BASE, accept)))
      .toBe(`could not download ${BASE}model.safetensors: the download stopped after 1200 of 3000 bytes (network error)`);
    expect(await kept()).toEqual([]);
  });

  test('files the engine refuses are not kept', async () => {
    network(whole);
    expect(await messageOf(loadModelFolder(BASE, async () => {
      throw new Error('safetensors: header length 1e9 is past the end of the file');
    }))).toBe('safetensors: header length 1e9 is past the end of the file');
    expect(await kept()).toEqual([]);
  });
});

describe('the core Engine on the app\'s device', () => {
  test('DeiT-tiny from its URL: chelsea.png is an Egyptian Mau with rollout; the second load comes from the cache', async () => {
    // As in the README: the app asks for the adapter's limits, which the kernels use.
    const adapter = (await navigator.gpu.requestAdapter())!;
    const { maxStorageBuffersPerShaderStage, maxStorageBufferBindingSize, maxBufferSize } = adapter.limits;
    const device = await adapter.requestDevice({ requiredLimits: { maxStorageBuffersPerShaderStage, maxStorageBufferBindingSize, maxBufferSize } });
    const engine = Engine.fromDevice(device);
    try {
      const model = await engine.loadModelFromUrl('/models/deit-tiny/');
      const image = await decodeImage(await (await fetch('/samples/chelsea.png')).blob());
      const [result] = await engine.classifyImages([image], { topK: 3, rollout: true });
      expect(result!.top[0]!.label).toBe('Egyptian Mau');
      expect(result!.rollout).toHaveLength(196);
      expect(model.cache).toEqual({ hit: false, stored: true });

      const fetchSpy = vi.spyOn(globalThis, 'fetch');
      const again = await engine.loadModelFromUrl('/models/deit-tiny/');
      expect(again.cache).toEqual({ hit: true, stored: false });
      expect(fetchSpy).not.toHaveBeenCalled();
    } finally {
      engine.destroy();
    }
  });
});
