// Downloads with progress (streamed, so a large checkpoint reports as it arrives), refusing one
// over the caller's size limit before reading it (Content-Length) or as soon as it passes the
// limit, and refusing one that arrives incomplete: every error names the URL. What arrives goes
// into a Blob as it comes, never one ArrayBuffer: Chromium moves large blobs to disk, so a
// download of gigabytes does not have to fit in the tab's memory.
import { formatBytes } from '../limits';
import { checkCheckpointSize, checkpointLimit, type LoadOptions, type LoadProgress } from './load';

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export async function fetchWithProgress(url: string, onProgress?: (p: LoadProgress) => void, options: LoadOptions = {}): Promise<Blob> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    // The browser tells a page no more than this: an unreachable server and a missing CORS header look alike.
    throw new Error(`could not download ${url}: ${message(e)} (the server is unreachable, or it is on another origin and its CORS headers do not allow this one)`);
  }
  if (!res.ok) throw new Error(`could not download ${url}: HTTP ${res.status} ${res.statusText}`.trimEnd());
  // A compressed response announces its compressed size, not the size of the bytes read here.
  const encoded = (res.headers.get('content-encoding') ?? 'identity') !== 'identity';
  const total = encoded ? undefined : Number(res.headers.get('content-length')) || undefined;
  if (total !== undefined) {
    try {
      checkCheckpointSize(total, options);
    } catch (e) {
      await res.body?.cancel();
      throw e;
    }
  }
  if (!res.body) return res.blob();
  const reader = res.body.getReader();
  // Chunks join the Blob every BLOB_PART bytes: a Blob made of Blobs refers to them, not copies them.
  let blob = new Blob([]);
  let chunks: Uint8Array[] = [];
  let pending = 0;
  let loaded = 0;
  const stopped = (why: string) => new Error(`could not download ${url}: the download stopped after ${loaded}${total === undefined ? '' : ` of ${total}`} bytes (${why})`);
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch (e) {
      throw stopped(message(e));
    }
    if (chunk.done) break;
    chunks.push(chunk.value);
    pending += chunk.value.byteLength;
    loaded += chunk.value.byteLength;
    // Without a Content-Length (or with a false one) the size is known only as the bytes come.
    if (loaded > checkpointLimit(options)) {
      await reader.cancel();
      throw new Error(`checkpoint: the download passed the limit of ${formatBytes(checkpointLimit(options))} for one checkpoint (its size was not announced)`);
    }
    if (pending >= BLOB_PART) {
      blob = new Blob([blob, ...(chunks as BlobPart[])]);
      chunks = [];
      pending = 0;
    }
    onProgress?.({ stage: 'download', loaded, total });
  }
  if (total !== undefined && loaded !== total) throw stopped(`the server announced ${total} bytes`);
  return new Blob([blob, ...(chunks as BlobPart[])]);
}

/** Bytes of a download held as chunks before they join its Blob. */
const BLOB_PART = 16 << 20;
