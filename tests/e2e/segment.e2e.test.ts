// The Segment page end to end, against the production build: the seed's dense head trained briefly
// on the Fashion-MNIST garment masks over the small ViT, whose held-out IoU must clear what the
// masks' own statistics give a head that learned nothing (every pixel garment; every pixel
// background scores 0), the overlays drawn, and image and mask pairs that do not fit refused by name.
import type { Browser, Page } from 'playwright';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { launch, openDemo, screenshot, setValue, statusAfter, waitReady } from './browser';

const TRAIN = 128;
const HOLDOUT = 64;
const THRESHOLD = 25;

let browser: Browser;
let page: Page;
let errors: string[];

beforeAll(async () => {
  browser = await launch();
  ({ page, errors } = await openDemo(browser, '#segment'));
  await waitReady(page);
});

afterAll(async () => {
  await browser?.close();
});

/** The IoU of calling every held-out pixel garment: the share of garment pixels (computed here from the bundled file). */
async function allGarmentIoU(): Promise<number> {
  return page.evaluate(async ({ from, count, threshold }) => {
    const res = await fetch(new URL('data/fashion-mnist/t10k-images-idx3-ubyte.gz', document.baseURI));
    let bytes = new Uint8Array(await res.arrayBuffer());
    if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = new Uint8Array(await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'))).arrayBuffer());
    let garment = 0;
    for (let i = 16 + from * 784; i < 16 + (from + count) * 784; i++) if (bytes[i]! > threshold) garment++;
    return garment / (count * 784);
  }, { from: TRAIN, count: HOLDOUT, threshold: THRESHOLD });
}

/** A PNG of one grey value, made in the page. */
async function png(width: number, height: number, value: number): Promise<Buffer> {
  const base64 = await page.evaluate(async ({ w, h, v }) => {
    const canvas = new OffscreenCanvas(w, h);
    const ctx = canvas.getContext('2d')!;
    ctx.fillStyle = `rgb(${v},${v},${v})`;
    ctx.fillRect(0, 0, w, h);
    const bytes = new Uint8Array(await (await canvas.convertToBlob({ type: 'image/png' })).arrayBuffer());
    return btoa(String.fromCharCode(...bytes));
  }, { w: width, h: height, v: value });
  return Buffer.from(base64, 'base64');
}

describe('Segment page', () => {
  test('the seed head on Fashion-MNIST garment masks beats every constant mask on held-out images, and the masks are drawn', async () => {
    await setValue(page, '#sg-train', String(TRAIN));
    await setValue(page, '#sg-holdout', String(HOLDOUT));
    await setValue(page, '#sg-epochs', '2');
    await setValue(page, '#sg-batch', '16');
    const status = await statusAfter(page, () => page.click('#sg-train-btn'), '#sg-status', 900_000);
    expect(status.kind, status.text).toBe('ok');
    const iou = Number(await page.$eval('#sg-result', (el) => (el as HTMLElement).dataset.iou));
    const baseline = await allGarmentIoU();
    expect(baseline).toBeGreaterThan(0.3);
    expect(baseline).toBeLessThan(0.6);
    // A head that learned nothing scores at most the all-garment baseline; the seed head goes far past it.
    console.log(`Segment page: held-out IoU ${iou}; every pixel garment: ${baseline}`);
    expect(iou, `IoU ${iou} against ${baseline} for every pixel garment`).toBeGreaterThan(Math.max(0.7, baseline + 0.2));
    // The drawn masks cover about as much of their images as the true masks do. Not every one: a
    // dim garment (mean grey near 40) is mostly missed, since the tokens are LayerNorm'ed and an
    // untrained backbone keeps little of a patch's overall brightness.
    const shown = await page.$$eval('#sg-overlays canvas', (cs) => cs.map((c) => ({ predicted: Number((c as HTMLElement).dataset.foreground), truth: Number((c as HTMLElement).dataset.truth) })));
    expect(shown).toHaveLength(8);
    const close = shown.filter((s) => Math.abs(s.predicted - s.truth) < 0.1);
    expect(close.length, JSON.stringify(shown)).toBeGreaterThanOrEqual(6);
    await screenshot(page, 'segment');
    expect(errors).toEqual([]);
  });

  test('a mask for a missing image, a mask of the wrong size and a mask that is not an image are refused by name; the trained head stays', async () => {
    await setValue(page, '#sg-data', 'pairs');
    await page.setInputFiles('#sg-images', [{ name: 'a.png', mimeType: 'image/png', buffer: await png(8, 8, 200) }]);
    await page.setInputFiles('#sg-masks', [
      { name: 'a.png', mimeType: 'image/png', buffer: await png(8, 8, 255) },
      { name: 'b.png', mimeType: 'image/png', buffer: await png(8, 8, 255) },
    ]);
    let status = await statusAfter(page, () => page.click('#sg-train-btn'), '#sg-status');
    expect(status.kind).toBe('error');
    expect(status.text).toContain('mask b.png has no image of the same name');

    await page.setInputFiles('#sg-images', [{ name: 'b.png', mimeType: 'image/png', buffer: await png(8, 8, 200) }]);
    await page.setInputFiles('#sg-masks', [{ name: 'b.png', mimeType: 'image/png', buffer: await png(6, 8, 255) }]);
    status = await statusAfter(page, () => page.click('#sg-train-btn'), '#sg-status');
    expect(status.kind).toBe('error');
    expect(status.text).toContain('mask b.png is 6x8, its image is 8x8');
    // A mask that is not an image.
    await page.setInputFiles('#sg-masks', [{ name: 'b.png', mimeType: 'image/png', buffer: Buffer.from('not a picture') }]);
    status = await statusAfter(page, () => page.click('#sg-train-btn'), '#sg-status');
    expect(status.kind).toBe('error');
    expect(status.text).toMatch(/mask b\.png/);
    // The head trained above still segments.
    await page.setInputFiles('#sg-try', [{ name: 'c.png', mimeType: 'image/png', buffer: await png(28, 28, 200) }]);
    await page.waitForSelector('#sg-tried canvas');
    expect(errors).toEqual([]);
  });
});
