// The demo page: classify an image and show where the model looks. All GPU work happens in the
// engine's Web Worker; this thread only draws. Redrawing the overlay (layer, heads, rollout) reuses
// the attention of the last run: no model call.
import { attentionRollout, clsAttention, type HeadFusion } from '../engine/attentionMaps';
import { resizeCropGeometry } from '../image/preprocess';
import type { AttentionResult, ClassifyResult, ModelInfo } from '../worker/api';
import { startEngineWorker } from '../worker/client';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $<HTMLParagraphElement>('status');
const progress = $<HTMLProgressElement>('progress');
const view = $<HTMLCanvasElement>('view');
const controls = {
  mode: $<HTMLSelectElement>('mode'), layer: $<HTMLInputElement>('layer'), heads: $<HTMLSelectElement>('heads'),
  discard: $<HTMLInputElement>('discard'), grid: $<HTMLInputElement>('grid'),
};
const SAMPLES = ['chelsea.png', 'coffee.png', 'astronaut.png', 'rocket.jpg', 'camera.png'];

let model: ModelInfo;
let shown: { bitmap: ImageBitmap; attention: AttentionResult; crop: [number, number, number] } | null = null;

function setStatus(text: string, kind: 'ok' | 'busy' | 'error' = 'ok'): void {
  status.textContent = text;
  status.style.color = kind === 'error' ? '#b52a26' : '';
}

async function main(): Promise<void> {
  if (!('gpu' in navigator)) {
    $('no-webgpu').hidden = false;
    setStatus('WebGPU is not available in this browser.', 'error');
    return;
  }
  const engine = startEngineWorker();
  try {
    setStatus('Starting the GPU…', 'busy');
    const { adapter } = await engine.init();
    setStatus(`Loading DeiT-tiny on ${adapter}…`, 'busy');
    progress.hidden = false;
    model = await engine.loadModelFromUrl(new URL('models/deit-tiny/', document.baseURI).href, (p) => {
      if (p.total) progress.value = p.loaded / p.total;
    });
    progress.hidden = true;
    setStatus(`DeiT-tiny (${(model.parameters / 1e6).toFixed(1)} M parameters) on ${adapter}. Choose an image.`);
  } catch (e) {
    progress.hidden = true;
    setStatus(`Could not start: ${message(e)}`, 'error');
    return;
  }
  $('app').hidden = false;
  controls.layer.max = String(model.config.depth);
  controls.layer.value = String(model.config.depth);
  $('layer-out').textContent = String(model.config.depth);
  controls.heads.replaceChildren(...['max', 'mean', 'min', ...Array.from({ length: model.config.heads }, (_, h) => String(h))].map((v) => {
    const o = document.createElement('option');
    o.value = v;
    o.textContent = /\d/.test(v) ? `head ${Number(v) + 1}` : `all heads, ${v}`;
    return o;
  }));

  let busy = false;
  const classify = async (blob: Blob, name: string) => {
    if (busy) return;
    busy = true;
    setStatus(`Classifying ${name}…`, 'busy');
    try {
      const t0 = performance.now();
      const [result] = await engine.classify([blob], { topK: 5, attention: true });
      const ms = performance.now() - t0;
      const bitmap = await createImageBitmap(blob);
      const g = resizeCropGeometry(bitmap.width, bitmap.height, model.config.imageSize, model.config.cropPct);
      const scale = g.resizedW / bitmap.width;
      shown = { bitmap, attention: result!.attention!, crop: [g.cropX / scale, g.cropY / scale, model.config.imageSize / scale] };
      showTop(result!);
      $('timing').textContent = `${ms.toFixed(0)} ms, including decoding and the attention read-back.`;
      $('caption').textContent = `${name}: the ${model.config.imageSize}x${model.config.imageSize} centre crop the model sees.`;
      draw();
      setStatus('Done. Choose another image or change the view.');
    } catch (e) {
      setStatus(message(e), 'error');
    } finally {
      busy = false;
    }
  };

  const drop = $('drop');
  $<HTMLInputElement>('file').addEventListener('change', (ev) => {
    const f = (ev.target as HTMLInputElement).files?.[0];
    if (f) void classify(f, f.name);
  });
  drop.addEventListener('dragover', (ev) => { ev.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (ev) => {
    ev.preventDefault();
    drop.classList.remove('over');
    const f = ev.dataTransfer?.files[0];
    if (f) void classify(f, f.name);
  });
  document.addEventListener('paste', (ev) => {
    const f = [...(ev.clipboardData?.files ?? [])][0];
    if (f) void classify(f, 'pasted image');
  });
  $('samples').replaceChildren(...SAMPLES.map((name) => {
    const b = document.createElement('button');
    const url = new URL(`samples/${name}`, document.baseURI).href;
    b.innerHTML = `<img src="${url}" alt="${name}" />`;
    b.title = name;
    b.addEventListener('click', async () => void classify(await (await fetch(url)).blob(), name));
    return b;
  }));
  for (const el of Object.values(controls)) el.addEventListener('input', draw);
}

function showTop(r: ClassifyResult): void {
  $('top').replaceChildren(...r.top.map((p) => {
    const li = document.createElement('li');
    li.innerHTML = `<span class="label"></span><span class="prob">${(100 * p.prob).toFixed(1)}%</span><span class="bar"><span style="width:${(100 * p.prob).toFixed(1)}%"></span></span>`;
    li.querySelector('.label')!.textContent = p.label;
    return li;
  }));
}

/** The heatmap for the current controls, over the patch grid, scaled to [0, 1]. */
function currentMap(a: AttentionResult): Float32Array | null {
  const mode = controls.mode.value;
  const heads = controls.heads.value;
  const fusion = /\d/.test(heads) ? 'mean' : (heads as HeadFusion);
  let map: Float32Array;
  if (mode === 'none') return null;
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

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

void main();
