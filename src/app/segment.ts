// The Segment page: trains a dense head on a frozen backbone (the small Fashion-MNIST ViT or the
// loaded model), or with its last block or all of it, on the built-in garment masks or the user's
// image and mask pairs (files paired by name, or masks drawn here), then overlays the predicted
// masks on held-out images and on any image the user picks. The trained head lives in the worker
// beside the loaded model, which it leaves as it is.
import { fetchFashionMnist, greyToRgba, type MaskResult, type NamedImage, type SegmentationMetrics, type SegmentProgress, type SegmentRequest, type SegmenterInfo } from '../index';
import { $, downloadSafetensors, message, onFilePick, setStatus, type App } from './app';
import { duration, recoveredText } from './chart';

/** Fashion-MNIST's example masks: garment where the grey value is above this (as the worker's default). */
const THRESHOLD = 25;
/** Held-out images shown with their predicted masks. */
const SHOWN = 8;

function progressText(p: SegmentProgress): string {
  if (p.recovered) return recoveredText(p.recovered);
  if (p.features) return `Computing the backbone's tokens, once: ${p.features.done} of ${p.features.total} images, about ${duration(p.secondsLeft)} left`;
  if (p.eval) return `Epoch ${p.epoch + 1} of ${p.epochs} done: ${scoreText(p.eval)}${p.warning ? `. ${p.warning}` : ''}`;
  return `Epoch ${p.epoch + 1} of ${p.epochs}, step ${p.step} of ${p.stepsPerEpoch}: per-pixel loss ${p.loss.toFixed(3)}, ${p.imagesPerSecond.toFixed(1)} images/s, about ${duration(p.secondsLeft)} left`;
}

function scoreText(m: SegmentationMetrics): string {
  return `held-out IoU ${m.iou.toFixed(3)}, Dice ${m.dice.toFixed(3)}, pixel accuracy ${(100 * m.pixelAccuracy).toFixed(1)}%`;
}

/**
 * Draws an image as the backbone sees it (the centre crop of the short side, cropPct of it) with
 * the predicted mask over it in red, and where given the true mask's edge in yellow.
 */
function overlay(image: ImageBitmap | ImageData, result: MaskResult, cropPct: number, truth?: ArrayLike<number>): HTMLCanvasElement {
  const S = result.size;
  const canvas = document.createElement('canvas');
  canvas.width = S;
  canvas.height = S;
  const ctx = canvas.getContext('2d')!;
  const side = Math.min(image.width, image.height) * cropPct;
  const source = image instanceof ImageData ? (() => {
    const c = new OffscreenCanvas(image.width, image.height);
    c.getContext('2d')!.putImageData(image, 0, 0);
    return c;
  })() : image;
  ctx.drawImage(source, (image.width - side) / 2, (image.height - side) / 2, side, side, 0, 0, S, S);
  const pixels = ctx.getImageData(0, 0, S, S);
  let foreground = 0;
  for (let p = 0; p < S * S; p++) {
    const a = 0.6 * Math.min(1, result.mask[p]!); // a probability, or a class index (0 = background)
    if (result.mask[p]! >= 0.5) foreground++;
    const px = pixels.data.subarray(4 * p, 4 * p + 4);
    px.set([px[0]! * (1 - a) + 230 * a, px[1]! * (1 - a) + 30 * a, px[2]! * (1 - a) + 40 * a, 255]);
    if (truth) {
      const y = Math.floor(p / S);
      const x = p % S;
      const edge = truth[p]! > 0 && [[y - 1, x], [y + 1, x], [y, x - 1], [y, x + 1]].some(([yy, xx]) => yy! < 0 || xx! < 0 || yy! >= S || xx! >= S || truth[yy! * S + xx!]! === 0);
      if (edge) px.set([250, 220, 40, 255]);
    }
  }
  ctx.putImageData(pixels, 0, 0);
  canvas.dataset.foreground = (foreground / (S * S)).toFixed(4);
  if (truth) canvas.dataset.truth = (Array.from(truth).filter((v) => v > 0).length / (S * S)).toFixed(4);
  return canvas;
}

/** The page's choice of what trains, as the worker takes it. */
function trainableOf(value: string): 'head' | 'all' | { lastBlocks: number } {
  return value.startsWith('last:') ? { lastBlocks: Number(value.slice(5)) } : value as 'head' | 'all';
}

export function setupSegment(app: App): void {
  const status = $('sg-status');
  const bar = $<HTMLProgressElement>('sg-progress');
  const stop = $<HTMLButtonElement>('sg-stop');
  const download = $<HTMLButtonElement>('sg-download');
  const num = (id: string) => Number($<HTMLInputElement>(id).value);
  const images: NamedImage[] = [];
  const masks = new Map<string, Blob>();
  let segmenter: SegmenterInfo | null = null;

  const dataKind = $<HTMLSelectElement>('sg-data');
  dataKind.addEventListener('change', () => {
    $('sg-example').hidden = dataKind.value !== 'example';
    $('sg-pairs').hidden = dataKind.value !== 'pairs';
  });

  // Image and mask files, paired by name; images without a mask can get one drawn.
  const pairsInfo = () => {
    const missing = images.filter((i) => !masks.has(i.name)).map((i) => i.name);
    $('sg-pairs-info').textContent = images.length === 0 ? 'No images yet.'
      : `${images.length} images, ${images.length - missing.length} with a mask${missing.length ? `; without: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}` : ''}`;
    if (missing.length) void startDrawing(missing[0]!);
    else $('sg-draw-box').hidden = true;
  };
  onFilePick($<HTMLInputElement>('sg-images'), (files) => {
    for (const f of files) if (!images.some((i) => i.name === f.name)) images.push({ name: f.name, image: f });
    pairsInfo();
  });
  onFilePick($<HTMLInputElement>('sg-masks'), (files) => {
    for (const f of files) masks.set(f.name, f);
    pairsInfo();
  });

  // Drawing: the image stretched over the canvas, the mask at the image's own size beneath it.
  const view = $<HTMLCanvasElement>('sg-draw');
  let drawing: { name: string; bitmap: ImageBitmap; mask: OffscreenCanvas } | null = null;
  const redraw = () => {
    if (!drawing) return;
    const ctx = view.getContext('2d')!;
    ctx.globalAlpha = 1;
    ctx.drawImage(drawing.bitmap, 0, 0, view.width, view.height);
    ctx.globalAlpha = 0.5;
    ctx.drawImage(drawing.mask, 0, 0, view.width, view.height);
  };
  async function startDrawing(name: string): Promise<void> {
    const file = images.find((i) => i.name === name)!.image;
    let bitmap: ImageBitmap;
    try {
      bitmap = await createImageBitmap(file as Blob);
    } catch (e) {
      setStatus(status, `image ${name} could not be read: ${message(e)}`, 'error');
      return;
    }
    const mask = new OffscreenCanvas(bitmap.width, bitmap.height);
    const m = mask.getContext('2d')!;
    m.fillStyle = 'black';
    m.fillRect(0, 0, mask.width, mask.height);
    drawing = { name, bitmap, mask };
    $('sg-draw-name').textContent = name;
    $('sg-draw-box').hidden = false;
    redraw();
  }
  const paint = (ev: PointerEvent) => {
    if (!drawing || ev.buttons === 0) return;
    const r = view.getBoundingClientRect();
    const { mask } = drawing;
    const m = mask.getContext('2d')!;
    m.fillStyle = ev.buttons === 2 || ev.shiftKey ? 'black' : 'white';
    m.beginPath();
    m.arc(((ev.clientX - r.left) / r.width) * mask.width, ((ev.clientY - r.top) / r.height) * mask.height, Math.max(1, mask.width / 24), 0, 2 * Math.PI);
    m.fill();
    redraw();
  };
  view.addEventListener('pointerdown', paint);
  view.addEventListener('pointermove', paint);
  view.addEventListener('contextmenu', (ev) => ev.preventDefault());
  $('sg-draw-clear').addEventListener('click', () => {
    if (drawing) void startDrawing(drawing.name);
  });
  $('sg-draw-done').addEventListener('click', async () => {
    if (!drawing) return;
    masks.set(drawing.name, await drawing.mask.convertToBlob({ type: 'image/png' }));
    drawing = null;
    pairsInfo();
  });

  /** The held-out images with their predicted masks: the example's first SHOWN, or the held-out pairs. */
  async function showHeldOut(request: SegmentRequest): Promise<void> {
    const shown: { image: ImageBitmap | ImageData; truth?: Float32Array }[] = [];
    const ds = request.dataset;
    if (ds.kind === 'fashion-mnist-masks') {
      const { images: fm } = await fetchFashionMnist(new URL('data/fashion-mnist/', document.baseURI));
      for (let i = ds.train; i < ds.train + Math.min(SHOWN, ds.holdout); i++) {
        const rgba = greyToRgba(fm, i);
        shown.push({ image: new ImageData(rgba, 28, 28), truth: Float32Array.from({ length: 784 }, (_, p) => (rgba[4 * p]! > THRESHOLD ? 1 : 0)) });
      }
    } else {
      const held = Math.floor(ds.images.length * (ds.holdoutFraction ?? 0.2));
      for (const { image } of ds.images.slice(ds.images.length - held).slice(0, SHOWN)) shown.push({ image: await createImageBitmap(image as Blob) });
    }
    if (shown.length === 0) {
      $('sg-overlays').innerHTML = '<p class="muted">No held-out images.</p>';
      return;
    }
    const results = await app.engine.segment(shown.map((s) => s.image));
    // The truth outline only where the mask is on the backbone's own 28 px grid.
    $('sg-overlays').replaceChildren(...results.map((r, i) => overlay(shown[i]!.image, r, segmenter!.cropPct, r.size === 28 ? shown[i]!.truth : undefined)));
  }

  $('sg-train-btn').addEventListener('click', async () => {
    let dataset: SegmentRequest['dataset'];
    if (dataKind.value === 'example') dataset = { kind: 'fashion-mnist-masks', train: num('sg-train'), holdout: num('sg-holdout'), threshold: THRESHOLD };
    else dataset = { kind: 'pairs', images: [...images], masks: [...masks].map(([name, image]) => ({ name, image })) };
    const request: SegmentRequest = {
      backbone: $<HTMLSelectElement>('sg-backbone').value as SegmentRequest['backbone'],
      head: { hidden: $<HTMLSelectElement>('sg-head').value === 'probe' ? [] : [256, 128], outputs: 1 },
      dataset,
      settings: { epochs: num('sg-epochs'), batch: num('sg-batch'), lr: $<HTMLSelectElement>('sg-head').value === 'probe' ? 1e-2 : 1e-3, trainable: trainableOf($<HTMLSelectElement>('sg-trainable').value) },
    };
    $('sg-result').textContent = '';
    delete $('sg-result').dataset.iou;
    setStatus(status, 'Preparing the pairs…', 'busy');
    stop.disabled = false;
    try {
      await app.job(async () => {
        // After a lost device, every later progress line says the run went back to a checkpoint.
        let resumed = '';
        const result = await app.engine.trainSegmentation(request, (p) => {
          if (p.recovered) resumed = ` (${p.recovered.message})`;
          bar.value = p.features ? p.features.done / p.features.total : (p.epoch + (p.step ? p.step / p.stepsPerEpoch : 0)) / p.epochs;
          setStatus(status, progressText(p) + (p.recovered ? '' : resumed), p.warning ? 'error' : 'busy');
        });
        if (result.steps === 0) {
          setStatus(status, 'Stopped before the first step: nothing changed.', 'ok');
          return;
        }
        segmenter = result.segmenter;
        download.disabled = false;
        const score = result.eval ? scoreText(result.eval) : 'no held-out pairs to score';
        $('sg-result').textContent = `${result.stopped ? 'Stopped' : 'Trained'}: ${score}.`;
        if (result.eval) $('sg-result').dataset.iou = String(result.eval.iou);
        setStatus(status, 'Drawing the held-out masks…', 'busy');
        await showHeldOut(request);
        setStatus(status, `${result.stopped ? 'Stopped' : 'Trained'}: ${score}.`, 'ok');
      });
    } catch (e) {
      setStatus(status, message(e), 'error');
    } finally {
      stop.disabled = true;
    }
  });
  stop.addEventListener('click', () => {
    setStatus(status, 'Stopping…', 'busy');
    void app.engine.stopTraining();
  });

  onFilePick($<HTMLInputElement>('sg-try'), async ([file]) => {
    try {
      if (!segmenter) throw new Error('Train a head first.');
      const [result] = await app.engine.segment([file!]);
      $('sg-tried').replaceChildren(overlay(await createImageBitmap(file!), result!, segmenter.cropPct));
      setStatus(status, `Segmented ${file!.name}.`, 'ok');
    } catch (e) {
      setStatus(status, `${file!.name}: ${message(e)}`, 'error');
    }
  });

  download.addEventListener('click', async () => {
    try {
      downloadSafetensors(await app.engine.exportSegmenter(), segmenter?.name ?? 'segmenter');
    } catch (e) {
      setStatus(status, message(e), 'error');
    }
  });
}
