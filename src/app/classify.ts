// The classify page: an image in, the top-5 classes and where the model looks. Redrawing the
// overlay (layer, heads, rollout, the patch picked) reuses the attention of the last run: no model
// call, so picking patches stays instant.
import { attentionRollout, clsAttention, patchAttention, resizeCropGeometry, type AttentionResult, type HeadFusion, type MapRect, type ModelInfo } from '../index';
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
  /**
   * The patch picked, on the first layer's grid (the finest map): each layer reads it on its own,
   * coarser or equal, grid, so moving through the layers keeps the same spot of the image.
   */
  let picked: [number, number] | null = null;
  /** Counts model changes: a result that arrives after one belongs to the old model. */
  let generation = 0;

  app.onModelChange((model) => {
    const depth = model.blockHeads.length;
    controls.layer.max = String(depth);
    controls.layer.value = String(depth);
    controls.heads.replaceChildren();
    // Without a class token only the patch view means anything; say so instead of hiding the choices.
    const classToken = hasClassToken(model);
    for (const o of controls.mode.options) if (o.value === 'rollout' || o.value === 'layer') o.disabled = !classToken;
    if (!classToken && (controls.mode.value === 'rollout' || controls.mode.value === 'layer')) controls.mode.value = 'patch';
    $('mode-note').hidden = classToken;
    // What was shown came from another model.
    shown?.bitmap.close();
    shown = null;
    picked = null;
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
      const [gh, gw] = shown.attention.grid;
      picked ??= [Math.floor(gh / 2), Math.floor(gw / 2)];
      draw();
      app.status(hasClassAttention(result!.attention!) ? 'Done. Choose another image, click a patch, or change the view.'
        : 'Done. This model has no class token: click the image (or use the arrow keys) to see where a patch looks.');
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
  view.addEventListener('click', (ev) => {
    if (!shown) return;
    const box = view.getBoundingClientRect();
    const [gh, gw] = shown.attention.grid;
    const at = (v: number, side: number) => Math.min(side - 1, Math.max(0, Math.floor(v * side)));
    pickPatch([at((ev.clientY - box.top) / box.height, gh), at((ev.clientX - box.left) / box.width, gw)]);
  });
  view.addEventListener('keydown', (ev) => {
    const step = ({ ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] } as Record<string, [number, number]>)[ev.key];
    if (!step || !shown || !picked) return;
    ev.preventDefault(); // the arrows move the patch, not the page
    // One patch of the layer shown: on a coarse Swin stage one step crosses several first-layer patches.
    const a = shown.attention;
    const [h, w] = layerGrid(a);
    const [gh, gw] = a.grid;
    const [r, c] = onLayer(a, picked);
    const move = (v: number, d: number, side: number, fine: number) => Math.ceil((Math.min(side - 1, Math.max(0, v + d)) * fine) / side);
    pickPatch([move(r, step[0], h, gh), move(c, step[1], w, gw)]);
  });

  /** Shows where `patch` (on the first layer's grid) looks, switching to the patch view. */
  function pickPatch(patch: [number, number]): void {
    picked = patch;
    controls.mode.value = 'patch';
    draw();
  }

  function hasClassAttention(a: AttentionResult): boolean {
    return a.prefixTokens > 0 && a.shapes.every((s) => s.windows === 1);
  }

  /** The layer the slider picks, from 0. */
  function layerIndex(): number {
    return Number(controls.layer.value) - 1;
  }

  function layerGrid(a: AttentionResult): readonly [number, number] {
    return a.shapes[layerIndex()]?.grid ?? a.grid;
  }

  /** A first-layer patch on the chosen layer's grid (Swin stage s is 2^s times coarser). */
  function onLayer(a: AttentionResult, [r, c]: [number, number]): [number, number] {
    const [h, w] = layerGrid(a);
    return [Math.floor((r * h) / a.grid[0]), Math.floor((c * w) / a.grid[1])];
  }

  /**
   * The heatmap for the current controls over the grid it lives on, scaled to [0, 1]; in the patch
   * view also the patch and its window's outline on that grid.
   */
  function currentMap(a: AttentionResult): { map: Float32Array; grid: readonly [number, number]; patch?: [number, number]; window?: MapRect[] } | null {
    const mode = controls.mode.value;
    const heads = controls.heads.value;
    const fusion = /\d/.test(heads) ? 'mean' : (heads as HeadFusion);
    if (mode === 'patch' && picked) {
      const l = layerIndex();
      const shape = a.shapes[l]!;
      const patch = onLayer(a, picked);
      const { map, window } = patchAttention(a.probs[l]!, shape, a.prefixTokens, patch, /\d/.test(heads) ? Number(heads) : fusion);
      // Scaled to the largest weight, from 0: outside the window the weights are 0 by construction,
      // and a percentile over the whole map would saturate a window that is a sliver of it.
      const top = map.reduce((m, v) => Math.max(m, v), 0);
      return { map: map.map((v) => (top > 0 ? v / top : 0)), grid: shape.grid, patch, window };
    }
    let map: Float32Array;
    // The class token's row and rollout exist where attention is global and a class token looks.
    if ((mode !== 'rollout' && mode !== 'layer') || !hasClassAttention(a)) return null;
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
    return { map: map.map((v) => (top > low ? Math.min(1, (v - low) / (top - low)) : 0)), grid: a.grid };
  }

  function draw(): void {
    const layer = layerIndex();
    $('layer-out').textContent = layerName(app.model, layer);
    $('discard-out').textContent = Number(controls.discard.value).toFixed(2);
    controls.discard.disabled = controls.mode.value !== 'rollout';
    setHeads(app.model.blockHeads[layer] ?? 1);
    delete view.dataset.patch;
    delete view.dataset.window;
    if (!shown) return;
    const ctx = view.getContext('2d')!;
    const [sx, sy, side] = shown.crop;
    ctx.drawImage(shown.bitmap, sx, sy, side, side, 0, 0, view.width, view.height);
    const overlay = currentMap(shown.attention);
    const [gh, gw] = overlay?.grid ?? shown.attention.grid;
    if (overlay) {
      const small = new OffscreenCanvas(gw, gh);
      const img = new ImageData(gw, gh);
      overlay.map.forEach((v, i) => {
        // A warm colour ramp; transparency follows the weight so low attention shows the image.
        img.data.set([255, Math.round(80 + 175 * v), Math.round(40 * (1 - v)), Math.round(215 * v)], i * 4);
      });
      small.getContext('2d')!.putImageData(img, 0, 0);
      // A patch's weights stay sharp: smoothing would bleed them across its window's outline.
      ctx.imageSmoothingEnabled = !overlay.patch;
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
    $('patch-out').textContent = 'click the image to pick one';
    if (overlay?.patch) {
      const [r, c] = overlay.patch;
      // The window is drawn only where it is not the whole map (a ViT's, a Swin's last stage).
      const outlined = overlay.window!.length === 1 && overlay.window![0]!.rows === gh && overlay.window![0]!.cols === gw ? [] : overlay.window!;
      for (const w of outlined) outline(ctx, w, [gh, gw], WINDOW_COLOUR);
      outline(ctx, { row: r, col: c, rows: 1, cols: 1 }, [gh, gw], PATCH_COLOUR);
      // What is drawn, for tests and assistive technology to read back.
      view.dataset.patch = `${r},${c}`;
      view.dataset.window = outlined.map((w) => `${w.row},${w.col},${w.rows},${w.cols}`).join(' ');
      const where = outlined.length ? `; its window is outlined${outlined.length > 1 ? ` (shifted: it wraps around the edges in ${outlined.length} pieces)` : ''}` : '';
      $('patch-out').textContent = `row ${r + 1}, column ${c + 1} of ${gh} × ${gw}${where}`;
    }
  }

  /** The head selector for a layer of `count` heads (Swin stages differ); keeps the choice where it exists. */
  function setHeads(count: number): void {
    if (controls.heads.options.length === 3 + count) return;
    const was = controls.heads.value;
    controls.heads.replaceChildren(...['max', 'mean', 'min', ...Array.from({ length: count }, (_, h) => String(h))].map((v) => {
      const o = document.createElement('option');
      o.value = v;
      o.textContent = /\d/.test(v) ? `head ${Number(v) + 1}` : `all heads, ${v}`;
      return o;
    }));
    if ([...controls.heads.options].some((o) => o.value === was)) controls.heads.value = was;
  }
}

const WINDOW_COLOUR = '#00e5ff';
const PATCH_COLOUR = '#ffffff';

/** Outlines cells of a grid inside their edges (so cells at the border show whole), over a dark halo that shows on any image. */
function outline(ctx: CanvasRenderingContext2D, rect: MapRect, [gh, gw]: readonly [number, number], colour: string): void {
  const { width, height } = ctx.canvas;
  const x = (rect.col * width) / gw;
  const y = (rect.row * height) / gh;
  const w = (rect.cols * width) / gw;
  const h = (rect.rows * height) / gh;
  for (const [style, lineWidth] of [['rgba(0,0,0,0.7)', 4], [colour, 2]] as const) {
    ctx.strokeStyle = style;
    ctx.lineWidth = lineWidth;
    ctx.strokeRect(x + 1, y + 1, w - 2, h - 2);
  }
}

/** The class-token map and rollout need a class token attending over the whole image: a ViT's. */
function hasClassToken(m: ModelInfo): boolean {
  const { tokens } = m.config as { tokens?: string };
  return tokens !== undefined && tokens !== 'none';
}

/** Block `i` (from 0) as the slider shows it: its number in a ViT, its stage and place in a Swin. */
function layerName(m: ModelInfo, i: number): string {
  const { depths } = m.config as { depths?: number[] };
  if (!depths) return String(i + 1);
  let j = i;
  let s = 0;
  while (s < depths.length - 1 && j >= depths[s]!) j -= depths[s++]!;
  return `stage ${s + 1}, block ${j + 1} (layers.${s}.blocks.${j})`;
}
