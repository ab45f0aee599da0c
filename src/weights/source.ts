// Byte sources for checkpoints: the loader reads a file's header, then one tensor at a time, so a
// file is never held whole in memory. A Blob (a picked File, a download or a cached Response,
// which Chromium keeps on disk once large) is read by slices; bytes already in memory are a
// source too, so both take one code path. Node reads files from disk (src/node/model.ts).
import type { ByteSource } from './safetensors';

export type { ByteSource } from './safetensors';

/** Bytes already in memory. */
export function bytesSource(input: ArrayBuffer | Uint8Array): ByteSource {
  const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
  return { size: bytes.byteLength, read: async (begin, end) => bytes.subarray(begin, end) };
}

/**
 * A Blob or File, read by slices. A File changed, moved or deleted after it was chosen fails to
 * read (Chromium's NotReadableError speaks of "permission problems"): the message says what happened.
 */
export function blobSource(blob: Blob, name = 'the file'): ByteSource {
  return {
    size: blob.size,
    async read(begin, end) {
      try {
        return new Uint8Array(await blob.slice(begin, end).arrayBuffer());
      } catch (e) {
        const why = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
        throw new Error(`checkpoint: ${name} could not be read at bytes ${begin} to ${end} (${why}); it may have been changed, moved or deleted since it was chosen`);
      }
    },
  };
}

/** Whatever the engine loads a checkpoint from. */
export type CheckpointInput = ArrayBuffer | Uint8Array | Blob | ByteSource;

export function toByteSource(input: CheckpointInput): ByteSource {
  if (input instanceof ArrayBuffer || input instanceof Uint8Array) return bytesSource(input);
  if (typeof Blob !== 'undefined' && input instanceof Blob) return blobSource(input, typeof File !== 'undefined' && input instanceof File ? input.name : undefined);
  return input as ByteSource;
}

/**
 * A file at a URL read by byte ranges (HTTP Range requests), when its server answers them: a
 * checkpoint is then read a tensor at a time, never downloaded whole, and read again after a
 * device loss. Undefined when the server sends the whole file instead (no range support). Each
 * range is asked If-Range the probe's validator (its strong ETag, else its Last-Modified), and a
 * changed file (a whole body, or another validator) fails: ranges of two versions are not one file.
 * A cross-origin server must allow the If-Range header, as it must expose Content-Range.
 */
export async function rangeSource(url: string): Promise<ByteSource | undefined> {
  const probe = await fetch(url, { headers: { range: 'bytes=0-0' } });
  const total = /^bytes 0-0\/(\d+)$/.exec(probe.headers.get('content-range') ?? '');
  await probe.body?.cancel();
  if (probe.status !== 206 || !total) return undefined;
  const etag = probe.headers.get('etag');
  const lastModified = probe.headers.get('last-modified');
  const validator = etag && !etag.startsWith('W/') ? etag : lastModified;
  return {
    size: Number(total[1]),
    async read(begin, end) {
      if (end <= begin) return new Uint8Array(0);
      const range = `bytes=${begin}-${end - 1}`;
      const res = await fetch(url, { headers: validator ? { range, 'if-range': validator } : { range } });
      if (res.status === 200 || (res.status === 206 && (res.headers.get('etag') !== etag || res.headers.get('last-modified') !== lastModified))) {
        await res.body?.cancel();
        throw new Error(`could not download ${url}: bytes ${begin} to ${end} came back from another version of the file (HTTP ${res.status}); it may have been changed, moved or deleted since it was loaded`);
      }
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (res.status !== 206 || bytes.byteLength !== end - begin) {
        throw new Error(`could not download ${url}: bytes ${begin} to ${end} came back as HTTP ${res.status} with ${bytes.byteLength} bytes`);
      }
      return bytes;
    },
  };
}
