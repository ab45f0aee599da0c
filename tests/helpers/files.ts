// Project files read from disk, for tests that run in Node (the browser tests fetch them instead).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseSafetensors, type SafetensorsFile } from '../../src/weights/safetensors';

export const ROOT = resolve(import.meta.dirname, '../..');
export const DEIT_TINY_DIR = resolve(ROOT, 'public/models/deit-tiny');
export const SAMPLES_DIR = resolve(ROOT, 'public/samples');
export const GOLDEN_PATH = resolve(ROOT, 'tests/fixtures/deit_tiny_golden.safetensors');

export function readSafetensors(path: string): SafetensorsFile {
  return parseSafetensors(readFileSync(path));
}
