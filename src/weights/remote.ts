// A model folder at a URL: model.safetensors, config.json and the labels file the config names.
// Downloads are kept in the Cache API, so a later visit loads the model offline without
// downloading it again. Only what arrived whole and loaded without error is kept; a cache that
// is missing, full or refused costs the offline copy, never the load: it comes back as a warning.
import { parseJsonText } from './config';
import { fetchWithProgress } from './fetch';
import { checkCheckpointSize, type LoadOptions, type LoadProgress } from './load';
import { rangeSource, type ByteSource } from './source';

/** The Cache API cache that holds downloaded model files. */
export const MODEL_CACHE = 'vitgpu-models';

/** What the model cache did for one load. */
export interface CacheReport {
  /** Every file came from the cache: nothing was downloaded. */
  hit: boolean;
  /** The downloaded files are kept for the next load (false on a hit: nothing new to keep). */
  stored: boolean;
  /** Why the files were not looked up or not kept (no Cache API here, storage full or refused). */
  warning?: string;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function openCache(): Promise<Cache | string> {
  if (typeof caches === 'undefined') return 'the Cache API is not available here (it needs a secure context: https or localhost)';
  try {
    return await caches.open(MODEL_CACHE);
  } catch (e) {
    return `the model cache could not be opened: ${message(e)}`;
  }
}

interface Fetched { url: string; body: Blob; cached: boolean; type: string }

async function get(url: string, cache: Cache | null, type: string, onProgress?: (p: LoadProgress) => void, options?: LoadOptions): Promise<Fetched> {
  const hit = await cache?.match(url).catch(() => undefined);
  if (hit) {
    // The cached Response's Blob: Chromium reads it from the cache on disk as it is sliced.
    const body = await hit.blob();
    onProgress?.({ stage: 'download', loaded: body.size, total: body.size });
    return { url, body, cached: true, type };
  }
  return { url, body: await fetchWithProgress(url, onProgress, options), cached: false, type };
}

/**
 * Downloads (or reads from the cache) the model folder at `baseUrl`, hands the files to `load`,
 * and keeps what was downloaded once `load` has accepted it. A relative URL resolves against the
 * current location (in a worker, the worker script's).
 */
export async function loadModelFolder<T>(
  baseUrl: string,
  load: (name: string, weights: Blob | ByteSource, config: Record<string, unknown>) => Promise<T>,
  onProgress?: (p: LoadProgress) => void,
  options: LoadOptions = {},
): Promise<{ result: T; cache: CacheReport }> {
  const base = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`, globalThis.location?.href).href;
  const opened = options.cache === false ? null : await openCache();
  const cache = typeof opened === 'string' ? null : opened;
  const configFile = await get(`${base}config.json`, cache, 'application/json');
  const config = parseJsonText(await configFile.body.text());
  const files = [configFile];
  if (typeof config.labelsFile === 'string') {
    const url = new URL(config.labelsFile, base).href;
    const labels = await get(url, cache, 'application/json').catch((e: unknown) => {
      throw new Error(`config: its labelsFile ${config.labelsFile}: ${message(e)}`);
    });
    try {
      config.labels = JSON.parse(await labels.body.text());
    } catch (e) {
      throw new Error(`config: its labelsFile ${config.labelsFile} is not valid JSON (${message(e)})`);
    }
    files.push(labels);
  }
  const name = typeof config.architecture === 'string' ? config.architecture : base;
  if (options.cache === false) {
    // Nothing to keep: read by ranges where the server allows, so the file is never downloaded whole.
    const ranges = await rangeSource(`${base}model.safetensors`).catch(() => undefined);
    if (ranges) return { result: await load(name, ranges, config), cache: { hit: false, stored: false } };
  }
  const weights = await get(`${base}model.safetensors`, cache, 'application/octet-stream', onProgress, options);
  // A cached file is checked against the limit in force now, as a download is.
  if (weights.cached) checkCheckpointSize(weights.body.size, options);
  files.push(weights);
  const keep = cache ? files.filter((f) => !f.cached) : [];
  const result = await load(name, weights.body, config);
  const hit = files.every((f) => f.cached);
  if (!cache) return { result, cache: { hit: false, stored: false, ...(options.cache !== false && { warning: opened as string }) } };
  try {
    for (const f of keep) {
      await cache.put(f.url, new Response(f.body, { headers: { 'content-type': f.type, 'content-length': String(f.body.size) } }));
    }
  } catch (e) {
    // Nothing half-kept: a partly stored folder would be downloaded in part on every load.
    await Promise.all(keep.map((f) => cache.delete(f.url).catch(() => false)));
    return { result, cache: { hit, stored: false, warning: `the model could not be kept for offline use: ${message(e)}` } };
  }
  return { result, cache: { hit, stored: keep.length > 0 } };
}
