// `npm run train` end to end: a run with --checkpoint, then --resume from its first epoch, in two
// fresh headless Chromiums, must reach the same second epoch and write the same model.
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';
import { PRESETS } from '../src/models/registry';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'train-cli-'));
const train = (args: string[]) => run('node', ['scripts/train.js', ...args]).catch((e: { code: number; stdout: string; stderr: string }) => e);
const epochs = (stdout: string) => stdout.trim().split('\n').map((l) => JSON.parse(l) as { epoch: number; loss: number; accuracy: number; evalAccuracy: number; adapter: string });

test('a run resumed from its checkpoint file goes on exactly as the uninterrupted run', async () => {
  const ckpt = join(dir, 'run.ckpt');
  const whole = await train(['--preset', 'fashion-mnist', '--train', '96', '--holdout', '32', '--epochs', '2', '--batch', '32', '--lr', '3e-3',
    '--augment', 'seed', '--checkpoint', ckpt, '--out', join(dir, 'whole.safetensors')]);
  expect('code' in whole ? whole.stderr : '').toBe('');
  expect(whole.stderr).toMatch(/wrote .*run\.ckpt after epoch 1/);
  const [, second] = epochs(whole.stdout);
  expect(second!.adapter).toMatch(/\S/); // each line names the adapter its images/s were measured on
  const wholeModel = readFileSync(join(dir, 'whole.safetensors'));

  // The resumed run takes the options it started with (from run.ckpt.json), including --out.
  const resumed = await train(['--resume', ckpt]);
  expect('code' in resumed ? resumed.stderr : '').toBe('');
  const lines = epochs(resumed.stdout);
  expect(lines).toHaveLength(1);
  const { epoch, loss, accuracy, evalAccuracy } = lines[0]!;
  expect({ epoch, loss, accuracy, evalAccuracy }).toEqual({ epoch: 2, loss: second!.loss, accuracy: second!.accuracy, evalAccuracy: second!.evalAccuracy });
  expect(readFileSync(join(dir, 'whole.safetensors')).equals(wholeModel)).toBe(true);
}, 300_000);

test('--resume explains what it needs', async () => {
  const missing = await train(['--resume', join(dir, 'nope.ckpt')]);
  expect('code' in missing && missing.code).toBe(2);
  expect(missing.stderr).toMatch(/--resume .*nope\.ckpt: needs .*nope\.ckpt and .*nope\.ckpt\.json, as --checkpoint .* writes them/);
  const extra = await train(['--resume', join(dir, 'run.ckpt'), '--epochs', '3']);
  expect('code' in extra && extra.code).toBe(2);
  expect(extra.stderr).toMatch(/--resume FILE takes no other options/);
});

test('a failure is one line on stderr and status 1: in the page (an unknown preset, a served file that is no image), and in a file it reads', async () => {
  const unknown = await train(['--preset', 'nope', '--train', '10', '--holdout', '10', '--epochs', '1']);
  expect('code' in unknown && unknown.code).toBe(1);
  expect(unknown.stderr).toBe(`training: unknown preset "nope"; known: ${Object.keys(PRESETS).join(', ')}\n`);
  // An image folder reaches the page file by file over the script's server: a file that is no image is named.
  mkdirSync(join(dir, 'images', 'a'), { recursive: true });
  mkdirSync(join(dir, 'images', 'b'), { recursive: true });
  writeFileSync(join(dir, 'images', 'a', 'x.png'), 'not an image');
  copyFileSync('public/samples/coffee.png', join(dir, 'images', 'b', 'coffee.png'));
  const notImage = await train(['--data', join(dir, 'images'), '--epochs', '1', '--batch', '2']);
  expect('code' in notImage && notImage.code).toBe(1);
  expect(notImage.stderr).toBe('image: x.png is not an image (expected PNG, JPEG, WebP, GIF or BMP)\n');
  const ckpt = join(dir, 'broken.ckpt');
  writeFileSync(ckpt, '');
  writeFileSync(`${ckpt}.json`, '{"argv": [');
  const broken = await train(['--resume', ckpt]);
  expect('code' in broken && broken.code).toBe(1);
  expect(broken.stderr).toMatch(new RegExp(`^--resume ${ckpt}: ${ckpt}\\.json is not valid JSON \\([^\\n]+\\)\\n$`));
}, 120_000);

test('--node trains in Node on Dawn (no browser), writes the model, and fails the same way', async () => {
  // That the same steps give the same losses in Chromium and on Dawn is trainingStep.{gpu,dawn}.test.ts's.
  const args = ['--preset', 'fashion-mnist', '--train', '32', '--holdout', '16', '--epochs', '1', '--batch', '16', '--lr', '3e-3', '--augment', 'light'];
  const node = await train(['--node', ...args, '--out', join(dir, 'node.safetensors')]);
  expect('code' in node ? node.stderr : '').toBe('');
  const [n] = epochs(node.stdout);
  expect(n).toMatchObject({ epoch: 1, loss: expect.any(Number), evalAccuracy: expect.any(Number) });
  expect(Number.isFinite(n!.loss)).toBe(true);
  expect(n!.adapter).toMatch(/swiftshader|\S/i);
  expect(node.stderr).toMatch(/wrote .*node\.safetensors and .*node\.json; held-out accuracy/);
  expect(readFileSync(join(dir, 'node.safetensors')).length).toBeGreaterThan(100_000);

  const unknown = await train(['--node', '--preset', 'nope', '--train', '10', '--holdout', '10', '--epochs', '1']);
  expect('code' in unknown && unknown.code).toBe(1);
  expect(unknown.stderr).toBe(`training: unknown preset "nope"; known: ${Object.keys(PRESETS).join(', ')}\n`);
}, 240_000);
