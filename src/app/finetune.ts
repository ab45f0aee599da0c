// The fine-tune page, Teachable Machine's flow on a ViT: classes with images (files, folders,
// webcam), a freezing policy, training with live curves, stop and resume, a test image, and the
// result kept in the browser and downloadable as safetensors. A run is kept in the browser as it
// starts, its images too up to a size, so that it can resume after a reload (see interrupted.ts).
import {
  FASHION_MNIST_CLASSES, fetchFashionMnist, forgetRun, forgetUnlessResumable, greyToRgba, resumeRequest,
  type InterruptedRun, type TrainRequest, type TrainSettings,
} from '../index';
import { $, downloadSafetensors, drawSquare, message, onFileDrop, onFilePick, setStatus, showPredictions, type App } from './app';
import { TrainingChart } from './chart';
import { keepStartedRun, newRunKey, ResumeOffer } from './interrupted';
import { runTraining, wireStop, type RunView } from './training';
import { Webcam } from './webcam';

interface ClassImage { blob: Blob; name: string; url: string }
interface ClassEntry { name: string; images: ClassImage[]; card?: HTMLElement }

const PAGE = 'finetune';
const THUMBS = 12;

export function setupFinetune(app: App): Promise<void> {
  const classes: ClassEntry[] = [];
  const view: RunView = { chart: new TrainingChart($('ft-chart')), bar: $<HTMLProgressElement>('ft-progress'), status: $('ft-status'), stop: $<HTMLButtonElement>('ft-stop') };
  const say = (text: string, kind: 'ok' | 'error' = 'ok') => setStatus(view.status, text, kind);
  let webcamTarget: ClassEntry | 'test' | null = null;
  const webcam = new Webcam($('ft-webcam'), (frame) => {
    if (webcamTarget === 'test') void test(frame, 'webcam photo');
    else if (webcamTarget) void addImages(webcamTarget, [new File([frame], `webcam-${webcamTarget.images.length + 1}.png`, { type: 'image/png' })]);
  }, (e) => say(message(e), 'error'));
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
        <label class="button">Add images<input type="file" accept="image/*" multiple class="add-files visually-hidden" /></label>
        <label class="button">Add a folder<input type="file" webkitdirectory multiple class="add-folder visually-hidden" /></label>
        <button type="button" class="add-webcam">Webcam</button>
        <span class="muted">or drop images here</span>
      </div>`;
    const nameInput = card.querySelector<HTMLInputElement>('.class-name')!;
    nameInput.value = name;
    nameInput.placeholder = name;
    nameInput.addEventListener('input', () => {
      entry.name = nameInput.value.trim() || name;
      card.querySelector('.remove')!.setAttribute('aria-label', `Remove class ${entry.name}`);
    });
    card.querySelector('.remove')!.setAttribute('aria-label', `Remove class ${name}`);
    for (const sel of ['.add-files', '.add-folder']) onFilePick(card.querySelector<HTMLInputElement>(sel)!, (files) => void addImages(entry, files));
    card.querySelector('.add-webcam')!.addEventListener('click', () => openWebcam(entry));
    card.querySelector('.remove')!.addEventListener('click', () => {
      if (webcamTarget === entry) webcam.stop();
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
    const { images, labels } = await fetchFashionMnist(new URL('data/fashion-mnist/', document.baseURI));
    const picked: { name: string; files: File[] }[] = [];
    for (const label of [7, 8]) {
      const files: File[] = [];
      // From index 2000 on: the first images stay unseen, for trying the result.
      for (let i = 2000; i < labels.data.length && files.length < 12; i++) {
        if (labels.data[i] !== label) continue;
        const canvas = new OffscreenCanvas(28, 28);
        canvas.getContext('2d')!.putImageData(new ImageData(greyToRgba(images, i), 28, 28), 0, 0);
        files.push(new File([await canvas.convertToBlob({ type: 'image/png' })], `fashion-${i}.png`, { type: 'image/png' }));
      }
      picked.push({ name: `${FASHION_MNIST_CLASSES[label]}s`, files });
    }
    reset();
    for (const { name, files } of picked) await addImages(addClass(name), files);
    say('Example classes added: train them, then try an image.');
  }

  const policy = $<HTMLSelectElement>('ft-policy');
  policy.addEventListener('change', () => {
    $('ft-blocks-label').hidden = policy.value !== 'last';
    $('ft-augment-label').hidden = policy.value === 'head';
  });

  function settings(): Partial<TrainSettings> {
    const trainable = policy.value === 'head' ? 'head' : policy.value === 'all' ? 'all' : { lastBlocks: Number($<HTMLInputElement>('ft-blocks').value) };
    // The head alone trains on features computed once (no augmentation). Deeper training gets crops
    // and flips at most, since mixup and RandAugment need far more images and epochs than a few per
    // class; without them, the frozen blocks too run once.
    const augment = trainable !== 'head' && $<HTMLInputElement>('ft-augment').checked ? 'light' : 'none';
    return {
      epochs: Number($<HTMLInputElement>('ft-epochs').value), lr: Number($<HTMLInputElement>('ft-lr').value),
      accumulate: Number($<HTMLInputElement>('ft-accumulate').value), trainable, augment,
    };
  }

  /** Shows a run's settings in the form (a resumed run trains with its own, whatever the form says). */
  function showSettings(s: Partial<TrainSettings>): void {
    const t = s.trainable;
    setValue('ft-policy', t === 'head' || t === 'all' ? t : 'last');
    if (t && typeof t === 'object') setValue('ft-blocks', String(t.lastBlocks));
    $<HTMLInputElement>('ft-augment').checked = s.augment !== 'none';
    for (const [id, v] of [['ft-epochs', s.epochs], ['ft-lr', s.lr], ['ft-accumulate', s.accumulate ?? 1]] as const) if (v !== undefined) setValue(id, String(v));
  }
  const setValue = (id: string, value: string) => {
    $<HTMLInputElement | HTMLSelectElement>(id).value = value;
    $(id).dispatchEvent(new Event('change'));
  };

  // A stopped run resumes with exactly the request it started with (data, policy, schedule).
  let stopped: { request: TrainRequest; epochsDone: number } | null = null;
  const forgetStopped = () => {
    stopped = null;
    $('ft-resume').hidden = true;
  };
  const note = (text: string | null) => {
    $('ft-note').textContent = text ?? '';
    $('ft-note').hidden = !text;
  };

  async function train(resume: boolean): Promise<void> {
    if (resume && stopped) return run({ ...stopped.request, resume: true }, stopped.epochsDone);
    const names = classes.map((c) => c.name);
    const duplicate = names.find((n, i) => names.indexOf(n) !== i);
    if (duplicate) return say(`Two classes are named "${duplicate}": give each class its own name.`, 'error');
    const request = {
      model: 'current' as const,
      dataset: { kind: 'images' as const, classes: classes.map((c) => ({ name: c.name, images: c.images.map((i) => i.blob) })) },
      settings: settings(),
      checkpointKey: newRunKey(PAGE),
    };
    offer.hide();
    awaitingImages = false;
    note(null);
    const kept = keepStartedRun(PAGE, app.model.name, request, classes.map((c) => c.images.map((i) => i.name))).then(note);
    return run(request, 0, kept);
  }

  /**
   * Continues the run kept in the browser: with its images, or with the same images added again
   * (the first press sets up its classes and asks for them).
   */
  let awaitingImages = false;
  async function resumeKept(kept: InterruptedRun): Promise<void> {
    const ds = kept.request.dataset;
    if (ds.kind !== 'images') return;
    if (!kept.imagesKept && !awaitingImages) {
      reset();
      for (const c of ds.classes) addClass(c.name);
      awaitingImages = true;
      return say(`Add the same images to each class again (${ds.classes.map((c) => `${c.name}: ${c.images.length}`).join(', ')}), then press Resume: they are checked by name and size.`, 'error');
    }
    let request: TrainRequest;
    try {
      request = resumeRequest(kept, classes.map((c) => ({ name: c.name, images: c.images.map((i) => ({ name: i.name, blob: i.blob })) })));
    } catch (e) {
      return say(`Cannot resume yet: ${message(e)}.`, 'error');
    }
    if (kept.imagesKept) {
      reset();
      for (const c of ds.classes) {
        const entry = addClass(c.name);
        for (const img of c.images) entry.images.push({ blob: img.blob!, name: img.name, url: URL.createObjectURL(img.blob!) });
        render(entry);
      }
    }
    showSettings(kept.request.settings ?? {});
    offer.hide();
    awaitingImages = false;
    note(null);
    return run(request, kept.epochsDone);
  }

  /**
   * Trains `request` (a new run, or one resumed after `epochsDone` epochs). `kept` settles once the
   * run is kept in the browser: it is forgotten once it finishes, or when it has nothing to resume from.
   */
  async function run(request: TrainRequest, epochsDone: number, kept: Promise<unknown> = Promise.resolve()): Promise<void> {
    const resume = request.resume === true;
    if (resume) view.chart.truncate(epochsDone);
    else view.chart.clear();
    forgetStopped();
    setStatus(view.status, resume ? 'Resuming from the last finished epoch…' : 'Preparing the images…', 'busy');
    const keepAs = $<HTMLInputElement>('ft-name').value.trim() || 'my classes';
    const result = await runTraining(app, request, keepAs, view, {
      onProgress: (p) => {
        // A run stopped again before finishing an epoch can still resume from the same checkpoint.
        if (p.evalAccuracy !== undefined) epochsDone = p.epoch + 1;
      },
    });
    // Once kept: a finished run (or one with nothing to resume from) leaves nothing in the browser;
    // one that failed after an epoch (another model loaded, a lost device) is offered again.
    const key = request.checkpointKey!;
    void kept.then(() => (result && !result.stopped ? forgetRun(key) : forgetUnlessResumable(key))).catch(() => undefined)
      .then(() => (result ? undefined : offer.refresh()));
    if (result?.stopped) {
      if (epochsDone > 0) {
        stopped = { request: { ...request, resume: false }, epochsDone };
        $('ft-resume').hidden = false;
        say(`${view.status.textContent} Resume continues from the end of epoch ${epochsDone}.`);
      } else {
        say(`${view.status.textContent} No epoch had finished, so there is nothing to resume from.`);
      }
    } else if (result) {
      say(`${view.status.textContent} Try an image below.`, view.status.dataset.kind === 'error' ? 'error' : 'ok');
    }
  }

  async function test(image: Blob, name: string): Promise<void> {
    if (app.busy) return say('Wait for the training to finish (or stop it) to try an image.', 'error');
    $('ft-test-top').replaceChildren();
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
      for (const [cls, verb] of [['use', 'Use'], ['dl', 'Download'], ['del', 'Delete']]) li.querySelector(`.${cls}`)!.setAttribute('aria-label', `${verb} ${m.name}`);
      (li.querySelector('.use') as HTMLButtonElement).disabled = app.busy;
      li.querySelector('.use')!.addEventListener('click', () => void app.pick(`saved:${m.key}`));
      li.querySelector('.dl')!.addEventListener('click', () => {
        app.engine.exportSavedModel(m.key).then((bytes) => downloadSafetensors(bytes, m.name), (e: unknown) => say(`Could not download ${m.name}: ${message(e)}`, 'error'));
      });
      li.querySelector('.del')!.addEventListener('click', () => {
        app.engine.deleteSavedModel(m.key).then(() => app.savedChanged(), (e: unknown) => say(`Could not delete ${m.name}: ${message(e)}`, 'error'));
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
  const offer = new ResumeOffer(PAGE, $('ft-interrupted'), (kept) => void resumeKept(kept));
  wireStop(app, view);
  // Resuming after the classes or settings changed would mix two runs: offer it no more.
  for (const id of ['classes', 'ft-policy', 'ft-blocks', 'ft-augment', 'ft-epochs', 'ft-lr', 'ft-accumulate']) $(id).addEventListener('input', forgetStopped);
  onFilePick($<HTMLInputElement>('ft-test-file'), ([f]) => void test(f!, f!.name));
  $('ft-test-camera').addEventListener('click', () => openWebcam('test'));
  onFileDrop($('ft-test-view').closest('section')!, ([f]) => void test(f!, f!.name));
  $('ft-download').addEventListener('click', () => {
    const name = app.model.name;
    app.engine.exportModel().then((bytes) => downloadSafetensors(bytes, name), (e: unknown) => say(`Could not download: ${message(e)}`, 'error'));
  });
  app.onModelChange((m) => {
    for (const el of document.querySelectorAll('.base-name')) el.textContent = m.name;
    $<HTMLInputElement>('ft-blocks').max = String(m.blockHeads.length);
    $('ft-test-top').replaceChildren();
    if (!app.busy) forgetStopped();
  });
  app.onSavedChange(() => void renderSaved());
  return Promise.all([renderSaved(), offer.refresh()]).then(() => undefined);
}
