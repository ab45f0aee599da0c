// The fine-tune page, Teachable Machine's flow on a ViT: classes with images (files, folders,
// webcam), a freezing policy, training with live curves, stop and resume, a test image, and the
// result kept in the browser and downloadable as safetensors.
import { FASHION_MNIST_CLASSES, parseIdx } from '../data/idx';
import type { TrainProgress, TrainRequest, TrainSettings } from '../worker/api';
import { $, download, drawSquare, message, onFileDrop, showPredictions, type App } from './app';
import { progressText, TrainingChart } from './chart';
import { Webcam } from './webcam';

interface ClassImage { blob: Blob; name: string; url: string }
interface ClassEntry { name: string; images: ClassImage[]; card?: HTMLElement }

const CHECKPOINT_KEY = 'finetune';
const THUMBS = 12;

export function setupFinetune(app: App): void {
  const classes: ClassEntry[] = [];
  const chart = new TrainingChart($('ft-chart'));
  const status = $('ft-status');
  const say = (text: string, kind: 'ok' | 'error' = 'ok') => {
    status.textContent = text;
    status.dataset.kind = kind;
  };
  let webcamTarget: ClassEntry | 'test' | null = null;
  const webcam = new Webcam($('ft-webcam'), (frame) => {
    if (webcamTarget === 'test') void test(frame, 'webcam photo');
    else if (webcamTarget) void addImages(webcamTarget, [new File([frame], `webcam-${webcamTarget.images.length + 1}.png`, { type: 'image/png' })]);
  });
  const openWebcam = (target: ClassEntry | 'test') => {
    webcamTarget = target;
    webcam.start().catch((e: unknown) => say(message(e), 'error'));
  };

  /** Adds the files that decode as images; names the ones that do not. */
  async function addImages(entry: ClassEntry, files: File[]): Promise<void> {
    const rejected: string[] = [];
    for (const file of files) {
      try {
        (await createImageBitmap(file)).close();
        entry.images.push({ blob: file, name: file.name, url: URL.createObjectURL(file) });
      } catch {
        rejected.push(file.name || 'an item');
      }
    }
    render(entry);
    if (rejected.length) say(`Not added to "${entry.name}": ${rejected.join(', ')} ${rejected.length > 1 ? 'are not images' : 'is not an image'} this browser can read (PNG, JPEG, WebP, GIF or BMP).`, 'error');
  }

  function addClass(name = `Class ${classes.length + 1}`): ClassEntry {
    const entry: ClassEntry = { name, images: [] };
    classes.push(entry);
    const card = document.createElement('div');
    card.className = 'class-card';
    card.innerHTML = `
      <div class="row"><input class="class-name" type="text" maxlength="40" aria-label="Class name" />
        <span class="count muted"></span><button type="button" class="remove" title="Remove this class">Remove</button></div>
      <div class="thumbs"></div>
      <div class="row">
        <label class="button">Add images<input type="file" accept="image/*" multiple hidden class="add-files" /></label>
        <label class="button">Add a folder<input type="file" webkitdirectory multiple hidden class="add-folder" /></label>
        <button type="button" class="add-webcam">Webcam</button>
        <span class="muted">or drop images here</span>
      </div>`;
    const nameInput = card.querySelector<HTMLInputElement>('.class-name')!;
    nameInput.value = name;
    nameInput.addEventListener('input', () => (entry.name = nameInput.value.trim() || nameInput.placeholder));
    for (const sel of ['.add-files', '.add-folder']) {
      card.querySelector<HTMLInputElement>(sel)!.addEventListener('change', (ev) => {
        const input = ev.target as HTMLInputElement;
        void addImages(entry, [...(input.files ?? [])]);
        input.value = '';
      });
    }
    card.querySelector('.add-webcam')!.addEventListener('click', () => openWebcam(entry));
    card.querySelector('.remove')!.addEventListener('click', () => {
      classes.splice(classes.indexOf(entry), 1);
      for (const img of entry.images) URL.revokeObjectURL(img.url);
      card.remove();
    });
    onFileDrop(card, (files) => void addImages(entry, files));
    entry.card = card;
    $('classes').append(card);
    render(entry);
    return entry;
  }

  function render(entry: ClassEntry): void {
    const card = entry.card!;
    card.querySelector('.count')!.textContent = `${entry.images.length} image${entry.images.length === 1 ? '' : 's'}`;
    const thumbs = entry.images.slice(-THUMBS).map((img) => {
      const el = document.createElement('img');
      el.src = img.url;
      el.alt = img.name;
      el.title = img.name;
      return el;
    });
    if (entry.images.length > THUMBS) {
      const more = document.createElement('span');
      more.className = 'muted';
      more.textContent = `+${entry.images.length - THUMBS}`;
      thumbs.unshift(more as unknown as HTMLImageElement);
    }
    card.querySelector('.thumbs')!.replaceChildren(...thumbs);
  }

  function reset(): void {
    for (const c of classes.splice(0)) {
      for (const img of c.images) URL.revokeObjectURL(img.url);
      c.card?.remove();
    }
  }

  /** Two classes of 12 images each from the bundled Fashion-MNIST split, as PNG files. */
  async function example(): Promise<void> {
    const base = new URL('data/fashion-mnist/', document.baseURI);
    const [images, labels] = await Promise.all(['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'].map(async (f) => {
      const res = await fetch(new URL(f, base));
      if (!res.ok) throw new Error(`could not load ${f}: HTTP ${res.status}`);
      return parseIdx(await res.arrayBuffer(), f);
    }));
    const picked: { name: string; files: File[] }[] = [];
    for (const label of [7, 8]) {
      const files: File[] = [];
      // From index 2000 on: the first images stay unseen, for trying the result.
      for (let i = 2000; i < labels!.data.length && files.length < 12; i++) {
        if (labels!.data[i] !== label) continue;
        const canvas = new OffscreenCanvas(28, 28);
        const img = new ImageData(28, 28);
        for (let p = 0; p < 784; p++) {
          const v = images!.data[i * 784 + p]!;
          img.data.set([v, v, v, 255], 4 * p);
        }
        canvas.getContext('2d')!.putImageData(img, 0, 0);
        files.push(new File([await canvas.convertToBlob({ type: 'image/png' })], `fashion-${i}.png`, { type: 'image/png' }));
      }
      picked.push({ name: `${FASHION_MNIST_CLASSES[label]}s`, files });
    }
    reset();
    for (const { name, files } of picked) await addImages(addClass(name), files);
    say('Example classes added: train them, then try an image.');
  }

  const policy = $<HTMLSelectElement>('ft-policy');
  policy.addEventListener('change', () => ($('ft-blocks-label').hidden = policy.value !== 'last'));

  function settings(): Partial<TrainSettings> {
    const trainable = policy.value === 'head' ? 'head' : policy.value === 'all' ? 'all' : { lastBlocks: Number($<HTMLInputElement>('ft-blocks').value) };
    // The head alone trains on features computed once (no augmentation); deeper training gets crops
    // and flips only, since mixup and RandAugment need far more images and epochs than a few per class.
    return { epochs: Number($<HTMLInputElement>('ft-epochs').value), lr: Number($<HTMLInputElement>('ft-lr').value), trainable, augment: trainable === 'head' ? 'none' : 'light' };
  }

  let epochsDone = 0;
  async function train(resume: boolean): Promise<void> {
    const request: TrainRequest = {
      model: 'current',
      dataset: { kind: 'images', classes: classes.map((c) => ({ name: c.name, images: c.images.map((i) => i.blob) })) },
      settings: settings(),
      checkpointKey: CHECKPOINT_KEY,
      resume,
    };
    if (!resume) {
      chart.clear();
      epochsDone = 0;
    }
    $<HTMLButtonElement>('ft-stop').disabled = false;
    $('ft-resume').hidden = true;
    const bar = $<HTMLProgressElement>('ft-progress');
    say(resume ? 'Resuming from the last finished epoch…' : 'Preparing images and computing…');
    try {
      const result = await app.job(() => app.engine.train(request, (p: TrainProgress) => {
        chart.add(p);
        bar.value = (p.epoch + p.step / p.stepsPerEpoch) / p.epochs;
        if (p.evalAccuracy !== undefined) epochsDone = p.epoch + 1;
        say(progressText(p), p.warning ? 'error' : 'ok');
      }));
      const name = $<HTMLInputElement>('ft-name').value.trim() || 'my classes';
      await app.engine.saveModel(name).catch((e: unknown) => say(`Trained, but not kept in the browser: ${message(e)}`, 'error'));
      app.modelChanged({ ...result.model, name });
      app.savedChanged();
      const acc = Number.isNaN(result.evalAccuracy) ? '' : ` Held-out accuracy ${(100 * result.evalAccuracy).toFixed(1)}%.`;
      say(result.stopped ? `Stopped.${acc} The model as it is now is loaded and kept as "${name}"; resume to continue from the last finished epoch.` : `Trained.${acc} Kept in this browser as "${name}". Try an image below.`);
      if (result.stopped && epochsDone > 0) $('ft-resume').hidden = false;
    } catch (e) {
      say(message(e), 'error');
    } finally {
      $<HTMLButtonElement>('ft-stop').disabled = true;
    }
  }

  async function test(image: Blob, name: string): Promise<void> {
    if (app.busy) return say('Wait for the training to finish (or stop it) to try an image.', 'error');
    try {
      const [r] = await app.engine.classify([image], { topK: Math.min(5, app.model.config.numClasses) });
      await drawSquare($('ft-test-view'), image);
      showPredictions($('ft-test-top'), r!);
      say(`${name}: ${r!.top[0]!.label} (${(100 * r!.top[0]!.prob).toFixed(1)}%) by ${app.model.name}.`);
    } catch (e) {
      say(`${name}: ${message(e)}`, 'error');
    }
  }

  async function renderSaved(): Promise<void> {
    const list = await app.engine.listSavedModels().catch(() => []);
    $('saved').replaceChildren(...list.map((m) => {
      const li = document.createElement('li');
      li.innerHTML = `<span><strong></strong> <span class="muted"></span></span>
        <span class="row"><button type="button" data-gpu class="use">Use</button><button type="button" class="dl">Download</button><button type="button" class="del">Delete</button></span>`;
      li.querySelector('strong')!.textContent = m.name;
      li.querySelector('.muted')!.textContent = `${m.classes.length} classes (${m.classes.slice(0, 4).join(', ')}${m.classes.length > 4 ? ', …' : ''}), ${(m.bytes / 2 ** 20).toFixed(1)} MiB, ${new Date(m.savedAt).toLocaleString()}`;
      li.querySelector('.use')!.addEventListener('click', () => void app.pick(`saved:${m.key}`));
      li.querySelector('.dl')!.addEventListener('click', async () => {
        await app.pick(`saved:${m.key}`);
        download(await app.engine.exportModel(), `${m.name.replace(/[^\w.-]+/g, '_')}.safetensors`);
      });
      li.querySelector('.del')!.addEventListener('click', async () => {
        await app.engine.deleteSavedModel(m.key);
        app.savedChanged();
      });
      return li;
    }));
    if (!list.length) $('saved').innerHTML = '<li class="muted">Nothing kept yet.</li>';
  }

  addClass();
  addClass();
  $('add-class').addEventListener('click', () => addClass());
  $('example-classes').addEventListener('click', () => void example().catch((e: unknown) => say(message(e), 'error')));
  $('ft-train').addEventListener('click', () => void train(false));
  $('ft-resume').addEventListener('click', () => void train(true));
  $('ft-stop').addEventListener('click', () => {
    say('Stopping after this step…');
    void app.engine.stopTraining();
  });
  $<HTMLInputElement>('ft-test-file').addEventListener('change', (ev) => {
    const input = ev.target as HTMLInputElement;
    const f = input.files?.[0];
    if (f) void test(f, f.name);
    input.value = '';
  });
  $('ft-test-camera').addEventListener('click', () => openWebcam('test'));
  onFileDrop($('ft-test-view').closest('section')!, ([f]) => void test(f!, f!.name));
  $('ft-download').addEventListener('click', async () => {
    const name = app.model.name;
    download(await app.engine.exportModel(), `${name.replace(/[^\w.-]+/g, '_')}.safetensors`);
  });
  app.onModelChange((m) => {
    for (const el of document.querySelectorAll('.base-name')) el.textContent = m.name;
    $<HTMLInputElement>('ft-blocks').max = String(m.config.depth);
  });
  app.onSavedChange(() => void renderSaved());
  void renderSaved();
}
