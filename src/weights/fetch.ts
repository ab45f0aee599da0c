// Downloads with progress (streamed, so a large checkpoint reports as it arrives), refusing one
// over the size limit before reading it (Content-Length) or as soon as it passes the limit.
import { formatBytes } from '../limits';
import { checkCheckpointSize, checkpointLimit, type LoadOptions, type LoadProgress } from './load';

export async function fetchWithProgress(url: string, onProgress?: (p: LoadProgress) => void, options: LoadOptions = {}): Promise<ArrayBuffer> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`could not download ${url}: HTTP ${res.status} ${res.statusText}`);
  const total = Number(res.headers.get('content-length')) || undefined;
  if (total !== undefined) {
    try {
      checkCheckpointSize(total, options);
    } catch (e) {
      await res.body?.cancel();
      throw e;
    }
  }
  if (!res.body || (!onProgress && total !== undefined)) return res.arrayBuffer();
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.byteLength;
    // Without a Content-Length (or with a false one) the size is known only as the bytes come.
    if (loaded > checkpointLimit(options)) {
      await reader.cancel();
      throw new Error(`checkpoint: the download passed the limit of ${formatBytes(checkpointLimit(options))} for one checkpoint (its size was not announced)`);
    }
    onProgress?.({ stage: 'download', loaded, total });
  }
  const out = new Uint8Array(loaded);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out.buffer;
}
