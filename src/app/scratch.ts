// The train-from-scratch page: the small Fashion-MNIST ViT trained on the bundled split, with live
// curves, and a confusion matrix over the held-out images afterwards.
import { FASHION_MNIST_CLASSES, parseIdx } from '../data/idx';
import { $, message, type App } from './app';
import { progressText, TrainingChart } from './chart';

const SAVED_NAME = 'Fashion-MNIST ViT';

export function setupScratch(app: App): void {
  const chart = new TrainingChart($('sc-chart'));
  const status = $('sc-status');
  const say = (text: string, kind: 'ok' | 'error' = 'ok') => {
    status.textContent = text;
    status.dataset.kind = kind;
  };
  const num = (id: string) => Number($<HTMLInputElement>(id).value);

  $('sc-train-btn').addEventListener('click', async () => {
    const train = num('sc-train');
    const holdout = num('sc-holdout');
    chart.clear();
    $('sc-confusion').innerHTML = '<p class="muted">Appears after training.</p>';
    $<HTMLButtonElement>('sc-stop').disabled = false;
    say('Loading Fashion-MNIST…');
    try {
      const result = await app.job(() => app.engine.train(
        { model: 'fashion-mnist', dataset: { kind: 'fashion-mnist', train, holdout }, settings: { epochs: num('sc-epochs'), batch: num('sc-batch'), trainable: 'all', lr: 1e-3, warmupEpochs: 1, augment: 'light' } },
        (p) => {
          chart.add(p);
          $<HTMLProgressElement>('sc-progress').value = (p.epoch + p.step / p.stepsPerEpoch) / p.epochs;
          say(progressText(p), p.warning ? 'error' : 'ok');
        },
      ));
      await app.engine.saveModel(SAVED_NAME).catch((e: unknown) => say(`Not kept in the browser: ${message(e)}`, 'error'));
      app.modelChanged({ ...result.model, name: SAVED_NAME });
      app.savedChanged();
      say(`${result.stopped ? 'Stopped' : 'Trained'}: held-out accuracy ${(100 * result.evalAccuracy).toFixed(1)}%. The model is loaded and kept as "${SAVED_NAME}". Computing the confusion matrix…`);
      await confusion(train, holdout);
      say(`${result.stopped ? 'Stopped' : 'Trained'}: held-out accuracy ${(100 * result.evalAccuracy).toFixed(1)}%. The model is loaded (see the model list) and kept as "${SAVED_NAME}".`);
    } catch (e) {
      say(message(e), 'error');
    } finally {
      $<HTMLButtonElement>('sc-stop').disabled = true;
    }
  });
  $('sc-stop').addEventListener('click', () => {
    say('Stopping after this step…');
    void app.engine.stopTraining();
  });

  /** Classifies the held-out images with the trained model and tabulates true vs predicted class. */
  async function confusion(start: number, count: number): Promise<void> {
    const base = new URL('data/fashion-mnist/', document.baseURI);
    const [images, labels] = await Promise.all(['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'].map(async (f) => {
      const res = await fetch(new URL(f, base));
      if (!res.ok) throw new Error(`could not load ${f}: HTTP ${res.status}`);
      return parseIdx(await res.arrayBuffer(), f);
    }));
    const K = FASHION_MNIST_CLASSES.length;
    const counts = Array.from({ length: K }, () => new Array<number>(K).fill(0));
    const chunk = 128;
    for (let s = start; s < start + count; s += chunk) {
      const batch = Array.from({ length: Math.min(chunk, start + count - s) }, (_, j) => {
        const img = new ImageData(28, 28);
        for (let p = 0; p < 784; p++) {
          const v = images!.data[(s + j) * 784 + p]!;
          img.data.set([v, v, v, 255], 4 * p);
        }
        return img;
      });
      const results = await app.engine.classify(batch, { topK: 1 });
      results.forEach((r, j) => counts[labels!.data[s + j]!]![r.top[0]!.index]!++);
    }
    const table = document.createElement('table');
    const head = `<tr><th></th>${FASHION_MNIST_CLASSES.map((c) => `<th title="predicted ${c}">${c.split('/')[0]}</th>`).join('')}</tr>`;
    const rows = counts.map((row, t) => {
      const total = row.reduce((a, b) => a + b, 0) || 1;
      return `<tr><th>${FASHION_MNIST_CLASSES[t]}</th>${row.map((n, p) => {
        const share = n / total;
        const hue = t === p ? '42,157,87' : '200,60,50';
        return `<td title="${n} of ${total} ${FASHION_MNIST_CLASSES[t]} predicted ${FASHION_MNIST_CLASSES[p]}" style="background: rgba(${hue},${Math.min(1, share * 1.5).toFixed(2)})">${n || ''}</td>`;
      }).join('')}</tr>`;
    });
    table.innerHTML = head + rows.join('');
    $('sc-confusion').replaceChildren(table);
  }
}
