// `npm run classify` end to end: a real headless Chromium, the engine's worker, JSON lines out.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';

const run = promisify(execFile);

test('classify prints one JSON line per image, in input order, and nothing else on stdout', async () => {
  const files = ['public/samples/chelsea.png', 'tests/fixtures/deit_tiny_golden.safetensors', 'README.md', 'public/samples/coffee.png'];
  const result = await run('node', ['scripts/classify.js', '--top', '3', '--logits', ...files]).catch((e: { code: number; stdout: string; stderr: string }) => e);
  expect('code' in result ? result.code : 0).toBe(1); // README.md is not an image
  const lines = result.stdout.trim().split('\n').map((l) => JSON.parse(l) as { file: string; index?: number; top?: { index: number; label: string; prob: number }[]; logits?: number[]; error?: string });
  expect(lines.map((l) => [l.file, l.index])).toEqual([[files[0], undefined], [files[1], 0], [files[1], 1], [files[2], undefined], [files[3], undefined]]);
  expect(lines[0]!.top!.map((p) => p.label)).toEqual(['Egyptian Mau', 'tabby cat', 'tiger cat']);
  expect(lines[0]!.logits).toHaveLength(1000);
  expect(lines[1]!.top![0]!.index).toBe(285);
  expect(lines[2]!.top![0]!.label).toBe('espresso');
  expect(lines[3]!.error).toMatch(/README\.md is not an image/);
  expect(lines[4]!.top![0]!.label).toBe('espresso');
  expect(result.stderr).toMatch(/adapter: .*; model: embedded DeiT-tiny/);
}, 120_000);

test('classify explains bad arguments', async () => {
  const e = await run('node', ['scripts/classify.js', '--model', 'nope.safetensors', 'x.png']).catch((err: { code: number; stderr: string }) => err);
  expect('code' in e && e.code).toBe(2);
  expect(e.stderr).toMatch(/--model nope.safetensors does not exist/);
});
