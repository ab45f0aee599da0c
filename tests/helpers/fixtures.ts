// Project files the browser tests fetch from the Vite server (public/ is served at /).
import { parseSafetensors, type SafetensorsFile } from '../../src/weights/safetensors';
import type { HostWeights } from '../../src/graph/model';

export async function fetchBytes(url: string): Promise<ArrayBuffer> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`fetch ${url}: HTTP ${res.status}`);
  return res.arrayBuffer();
}

export async function fetchSafetensors(url: string): Promise<SafetensorsFile> {
  return parseSafetensors(await fetchBytes(url));
}

/** Every tensor of a file as host weights (names as stored). */
export function hostWeights(file: SafetensorsFile): HostWeights {
  return new Map(file.names().map((n) => [n, { shape: file.entries.get(n)!.shape, data: file.get(n) }]));
}

export const DEIT_TINY_URL = '/models/deit-tiny/model.safetensors';
export const GOLDEN_URL = '/tests/fixtures/deit_tiny_golden.safetensors';
