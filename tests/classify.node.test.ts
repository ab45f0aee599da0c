// `npm run classify` end to end: a real headless Chromium, the engine's worker, JSON lines out.
// One run per way it can end: 0 (all classified), 1 (a file failed, or the model did not load: one
// line each on stderr, no stack trace), 2 (bad arguments: the problem and the usage).
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';
import { parseSafetensors, serializeSafetensors } from '../src/weights/safetensors';

const run = promisify(execFile);
const classify = (args: string[]) => run('node', ['scripts/classify.js', ...args]).then((r) => ({ code: 0, ...r }), (e: { code: number; stdout: string; stderr: string }) => e);
const dir = mkdtempSync(join(tmpdir(), 'classify-cli-'));
const USAGE = 'usage: npm run classify -- [--node] [--model FILE.safetensors] [--top K] [--logits] FILE...';

test('classify prints one JSON line per image, in input order, and nothing else on stdout', async () => {
  const files = ['public/samples/chelsea.png', 'tests/fixtures/deit_tiny_golden.safetensors', 'README.md', 'nope.png', 'public/samples/coffee.png'];
  const result = await classify(['--top', '3', '--logits', ...files]);
  expect(result.code).toBe(1); // README.md is not an image, nope.png does not exist
  const lines = result.stdout.trim().split('\n').map((l) => JSON.parse(l) as { file: string; index?: number; top?: { index: number; label: string; prob: number }[]; logits?: number[]; error?: string });
  expect(lines.map((l) => [l.file, l.index])).toEqual([[files[0], undefined], [files[1], 0], [files[1], 1], [files[2], undefined], [files[3], undefined], [files[4], undefined]]);
  expect(lines[0]!.top!.map((p) => p.label)).toEqual(['Egyptian Mau', 'tabby cat', 'tiger cat']);
  expect(lines[0]!.logits).toHaveLength(1000);
  expect(lines[1]!.top![0]!.index).toBe(285);
  expect(lines[2]!.top![0]!.label).toBe('espresso');
  expect(lines[3]!.error).toBe('image: README.md is not an image (expected PNG, JPEG, WebP, GIF or BMP)');
  expect(lines[4]!.error).toBe('cannot read nope.png: ENOENT');
  expect(lines[5]!.top![0]!.label).toBe('espresso');
  expect(result.stderr.split('\n')).toEqual([
    expect.stringMatching(/^adapter: .*; model: embedded DeiT-tiny$/),
    'README.md: image: README.md is not an image (expected PNG, JPEG, WebP, GIF or BMP)',
    'nope.png: cannot read nope.png: ENOENT',
    '',
  ]);
}, 120_000);

test('exit 0: a --model checkpoint served to the page from disk, with the labels file its config names', async () => {
  const model = join(dir, 'deit.safetensors');
  copyFileSync('public/models/deit-tiny/model.safetensors', model);
  copyFileSync('public/models/deit-tiny/config.json', join(dir, 'deit.json'));
  copyFileSync('public/models/deit-tiny/labels.json', join(dir, 'labels.json'));
  const result = await classify(['--model', model, '--top', '1', 'public/samples/coffee.png']);
  expect(result.code).toBe(0);
  expect(result.stderr).toMatch(new RegExp(`^adapter: .*; model: ${model.replace(/[.]/g, '\\.')}\\n$`));
  expect(JSON.parse(result.stdout)).toEqual({ file: 'public/samples/coffee.png', top: [{ index: 967, label: 'espresso', prob: expect.any(Number) }] });
}, 120_000);

test('exit 1: a model that fails to load is one line on stderr naming the file and the problem', async () => {
  const st = parseSafetensors(readFileSync('public/models/deit-tiny/model.safetensors'));
  const model = join(dir, 'nan.safetensors');
  writeFileSync(model, serializeSafetensors(st.names().map((name) => {
    const data = st.get(name);
    if (name === 'blocks.3.mlp.fc1.weight') data[1234] = Number.NaN;
    return { name, shape: st.entries.get(name)!.shape, data };
  })));
  copyFileSync('public/models/deit-tiny/config.json', join(dir, 'nan.json'));
  const result = await classify(['--model', model, 'public/samples/coffee.png']);
  expect(result.code).toBe(1);
  expect(result.stderr).toBe(`checkpoint ${model}: blocks.3.mlp.fc1.weight holds NaN at index 1234\n`);
  expect(result.stdout).toBe('');
}, 120_000);

test('--node: the engine in Node on Dawn, no browser: the same lines, and a model that fails to load is one line', async () => {
  const model = join(dir, 'node-deit.safetensors');
  copyFileSync('public/models/deit-tiny/model.safetensors', model);
  copyFileSync('public/models/deit-tiny/config.json', join(dir, 'node-deit.json'));
  copyFileSync('public/models/deit-tiny/labels.json', join(dir, 'labels.json'));
  const result = await classify(['--node', '--model', model, '--top', '2', 'public/samples/chelsea.png', 'README.md']);
  expect(result.code).toBe(1);
  expect(result.stdout.trim().split('\n').map((l) => JSON.parse(l))).toEqual([
    { file: 'public/samples/chelsea.png', top: [{ index: 285, label: 'Egyptian Mau', prob: expect.closeTo(0.371, 3) }, { index: 281, label: 'tabby cat', prob: expect.any(Number) }] },
    { file: 'README.md', error: 'image: README.md is not an image (expected PNG, JPEG, WebP, GIF or BMP)' },
  ]);
  expect(result.stderr).toMatch(new RegExp(`^adapter: .* \\(Node, Dawn\\); model: ${model.replace(/[.]/g, '\\.')}\nREADME\\.md: image: README\\.md is not an image .*\n$`));

  const bad = join(dir, 'node-bad.safetensors');
  writeFileSync(bad, 'not a safetensors file');
  copyFileSync('public/models/deit-tiny/config.json', join(dir, 'node-bad.json'));
  const failed = await classify(['--node', '--model', bad, 'public/samples/chelsea.png']);
  expect(failed.code).toBe(1);
  expect(failed.stderr).toMatch(new RegExp(`^checkpoint ${bad.replace(/[.]/g, '\\.')}: [^\n]+\n$`));
  expect(failed.stdout).toBe('');
}, 240_000);

test('exit 2: bad arguments print the problem and the usage', async () => {
  const missing = await classify(['--model', 'nope.safetensors', 'x.png']);
  expect(missing.code).toBe(2);
  expect(missing.stderr).toBe(`--model nope.safetensors does not exist\n${USAGE}\n`);
  const unknown = await classify(['--tpo', '3', 'x.png']);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toBe(`unknown option --tpo\n${USAGE}\n`);
});
