// The classify page: an image in, the top-5 classes and where the model looks. Redrawing the
// overlay (layer, heads, rollout) reuses the attention of the last run: no model call.
import { attentionRollout, clsAttention, type HeadFusion } from '../engine/attentionMaps';
import { resizeCropGeometry } from '../image/preprocess';
import type { AttentionResult } from '../worker/api';
import { $, message, onFileDrop, onFilePick, showPredictions, type App } from './app';
import { Webcam } from './webcam';

const SAMPLES = ['chelsea.png', 'coffee.png', 'astronaut.png', 'rocket.jpg', 'camera.png'];

export function setupClassify(app: App): void {
  const view = $<HTMLCanvasElement>('view');
  const controls = {
    mode: $<HTMLSelectElement>('mode'), layer: $<HTMLInputElement>('layer'), heads: $<HTMLSelectElement>('heads'),
    discard: $<HTMLInputElement>('discard'), grid: $<HTMLInputElement>('grid'),
  };
  let shown: { bitmap: ImageBitmap; attention: AttentionResult; crop: [number, number, number] } | null = null;
  /** Counts model changes: a result that arrives after one belongs to the old model. */
  let generation = 0;

  app.onModelChange((model) => {
    const depth = model.blockHeads.length;
    const heads = model.blockHeads[0] ?? 1;
    controls.layer.max = String(depth);
    controls.layer.value = String(depth);
    controls.heads.replaceChildren(...['max', 'mean', 'min', ...Array.from({ length: heads }, (_, h) => String(h))].map((v) => {
      const o = document.createElement('option');
      o.value = v;
      o.textContent = /\d/.test(v) ? `head ${Number(v) + 1}` : `all heads, ${v}`;
      return o;
    }));
    // What was shown came from another model.
    shown?.bitmap.close();
    shown = null;
    generation++;
    $('top').replaceChildren();
    $('timing').textContent = '';
    $('caption').textContent = 'Choose an image to see the model\'s answer and where it looks.';
    view.getContext('2d')!.clearRect(0, 0, view.width, view.height);
    draw();
  });

  let running = false;
  const classify = async (blob: Blob, name: string) => {
    if (running || app.busy) {
      app.status(app.busy ? 'The GPU is busy with a training or a benchmark; try again when it is done.' : 'Still classifying the previous image…', 'error');
      return;
    }
    running = true;
    app.status(`Classifying ${name}…`, 'busy');
    const asked = generation;
    try {
      const t0 = performance.now();
      const [result] = await app.engine.classify([blob], { topK: 5, attention: true });
      const ms = performance.now() - t0;
      if (asked !== generation) return;
      const bitmap = await createImageBitmap(blob);
      shown?.bitmap.close();
      const { imageSize, cropPct } = app.model.config;
      const g = resizeCropGeometry(bitmap.width, bitmap.height, imageSize, cropPct);
      const scale = g.resizedW / bitmap.width;
      shown = { bitmap, attention: result!.attention!, crop: [g.cropX / scale, g.cropY / scale, imageSize / scale] };
      showPredictions($('top'), result!);
      $('timing').textContent = `${ms.toFixed(0)} ms on ${app.adapter}, including decoding and the attention read-back.`;
      $('caption').textContent = `${name}: the ${imageSize}×${imageSize} centre crop the model sees.`;
      draw();
      app.status(hasClassAttention(result!.attention!) ? 'Done. Choose another image or change the view.'
        : 'Done. This model attends within windows and has no class token: there is no class-token map or rollout to show.');
    } catch (e) {
      app.status(`${name}: ${message(e)}`, 'error');
    } finally {
      running = false;
    }
  };

  onFilePick($<HTMLInputElement>('file'), ([f]) => void classify(f!, f!.name));
  onFileDrop($('drop'), ([f]) => void classify(f!, f!.name));
  document.addEventListener('paste', (ev) => {
    if ($('page-classify').hidden) return;
    const f = [...(ev.clipboardData?.files ?? [])][0];
    if (f) void classify(f, 'pasted image');
  });
  $('samples').replaceChildren(...SAMPLES.map((name) => {
    const b = document.createElement('button');
    const url = new URL(`samples/${name}`, document.baseURI).href;
    b.type = 'button';
    b.innerHTML = `<img src="${url}" alt="${name}" />`;
    b.title = name;
    b.dataset.sample = name;
    b.addEventListener('click', async () => void classify(await (await fetch(url)).blob(), name));
    return b;
  }));
  const webcam = new Webcam($('webcam'), (frame) => void classify(frame, 'webcam photo'), (e) => app.status(message(e), 'error'));
  $('camera').addEventListener('click', () => webcam.start().catch((e: unknown) => app.status(message(e), 'error')));
  for (const el of Object.values(controls)) el.addEventListener('input', draw);

  function hasClassAttention(a: AttentionResult): boolean {
    return a.prefixTokens > 0 && a.shapes.every((s) => s.windows === 1);
  }

  /** The heatmap for the current controls, over the patch grid, scaled to [0, 1]. */
  function currentMap(a: AttentionResult): Float32Array | null {
    const mode = controls.mode.value;
    const heads = controls.heads.value;
    const fusion = /\d/.test(heads) ? 'mean' : (heads as HeadFusion);
    let map: Float32Array;
    // The class token's row and rollout exist where attention is global and a class token looks.
    if (mode === 'none' || !hasClassAttention(a)) return null;
    if (mode === 'rollout') {
      map = attentionRollout(a.probs, a.heads, a.tokens, a.prefixTokens, { fusion, discardRatio: Number(controls.discard.value), upTo: Number(controls.layer.value) });
    } else {
      const layer = a.probs[Number(controls.layer.value) - 1]!;
      map = clsAttention(layer, a.heads, a.tokens, a.prefixTokens, /\d/.test(heads) ? Number(heads) : fusion);
    }
    // Colour up to the 99th percentile: a few outlier patches (ViTs park attention on some
    // background tokens) would otherwise take the whole range and wash out everything else.
    const sorted = Float32Array.from(map).sort();
    const top = sorted[Math.floor(0.99 * (sorted.length - 1))]!;
    const low = sorted[0]!;
    return map.map((v) => (top > low ? Math.min(1, (v - low) / (top - low)) : 0));
  }

  function draw(): void {
    $('layer-out').textContent = controls.layer.value;
    $('discard-out').textContent = Number(controls.discard.value).toFixed(2);
    controls.discard.disabled = controls.mode.value !== 'rollout';
    if (!shown) return;
    const ctx = view.getContext('2d')!;
    const [sx, sy, side] = shown.crop;
    ctx.drawImage(shown.bitmap, sx, sy, side, side, 0, 0, view.width, view.height);
    const map = currentMap(shown.attention);
    const [gh, gw] = shown.attention.grid;
    if (map) {
      const small = new OffscreenCanvas(gw, gh);
      const img = new ImageData(gw, gh);
      map.forEach((v, i) => {
        // A warm colour ramp; transparency follows the weight so low attention shows the image.
        img.data.set([255, Math.round(80 + 175 * v), Math.round(40 * (1 - v)), Math.round(215 * v)], i * 4);
      });
      small.getContext('2d')!.putImageData(img, 0, 0);
      ctx.imageSmoothingEnabled = true;
      ctx.imageSmoothingQuality = 'high';
      ctx.drawImage(small, 0, 0, view.width, view.height);
    }
    if (controls.grid.checked) {
      ctx.strokeStyle = 'rgba(255,255,255,0.35)';
      ctx.lineWidth = 1;
      for (let i = 1; i < gw; i++) {
        const x = (i * view.width) / gw;
        ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, view.height); ctx.stroke();
      }
      for (let i = 1; i < gh; i++) {
        const y = (i * view.height) / gh;
        ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(view.width, y); ctx.stroke();
      }
    }
  }
}
