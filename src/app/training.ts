// One training run as both training pages drive it: progress into a chart, a bar and a status
// line; the result kept in the browser and announced as the loaded model; all of it inside one
// GPU job, so nothing else can load a model between the training and its save.
import type { TrainProgress, TrainRequest, TrainResult } from '../index';
import { message, setStatus, type App, type ModelSource } from './app';
import { accuracyText, progressText, type TrainingChart } from './chart';

export interface RunView {
  chart: TrainingChart;
  bar: HTMLProgressElement;
  status: HTMLElement;
  stop: HTMLButtonElement;
}

/**
 * Trains, keeps the result under `keepAs`, and runs `after` (still inside the job). Returns the
 * result, or null after showing the error.
 */
export async function runTraining(app: App, request: TrainRequest, keepAs: string, view: RunView, hooks: { onProgress?: (p: TrainProgress) => void; after?: () => Promise<void> } = {}): Promise<TrainResult | null> {
  const { onProgress, after } = hooks;
  view.stop.disabled = false;
  // After a lost device, every later progress line says the run went back to a checkpoint.
  let resumed = '';
  try {
    return await app.job(async () => {
      const result = await app.engine.train(request, (p) => {
        if (p.recovered) {
          view.chart.truncate(p.recovered.fromEpoch); // those epochs run again
          resumed = ` (${p.recovered.message})`;
        }
        view.chart.add(p);
        view.bar.value = p.features ? p.features.done / p.features.total : (p.epoch + (p.step ? p.step / p.stepsPerEpoch : 0)) / p.epochs;
        setStatus(view.status, progressText(p) + (p.recovered ? '' : resumed), p.warning ? 'error' : 'busy');
        onProgress?.(p);
      });
      if (result.steps === 0) {
        setStatus(view.status, 'Stopped before the first step: the loaded model is unchanged.', 'ok');
        return result;
      }
      let source: ModelSource = 'trained';
      let kept = `kept in this browser as "${keepAs}"`;
      try {
        source = `saved:${(await app.engine.saveModel(keepAs)).key}`;
      } catch (e) {
        kept = `not kept in the browser (${message(e)})`;
      }
      const model = { ...result.model, name: keepAs };
      app.modelChanged(model, source);
      app.savedChanged();
      const summary = `${result.stopped ? 'Stopped' : 'Trained'}: ${accuracyText(result.evalAccuracy)}. The model is loaded and ${kept}.`;
      setStatus(view.status, summary, source === 'trained' ? 'error' : 'ok');
      if (after) {
        await after();
        setStatus(view.status, summary, source === 'trained' ? 'error' : 'ok');
      }
      return result;
    });
  } catch (e) {
    setStatus(view.status, message(e), 'error');
    return null;
  } finally {
    view.stop.disabled = true;
  }
}

/** Wires a Stop button: the worker stops after its current step. */
export function wireStop(app: App, view: RunView): void {
  view.stop.addEventListener('click', () => {
    setStatus(view.status, 'Stopping…', 'busy');
    void app.engine.stopTraining();
  });
}
