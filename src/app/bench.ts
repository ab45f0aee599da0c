// The benchmark page: runs a suite in the worker on a device of its own and prints its lines.
import type { BenchSuite } from '../index';
import { $, message, type App } from './app';

export function setupBench(app: App): void {
  const log = $('bench-log');
  for (const button of document.querySelectorAll<HTMLButtonElement>('[data-suite]')) {
    button.addEventListener('click', async () => {
      const suite = button.dataset.suite as BenchSuite;
      log.textContent = `Running the ${suite} suite on ${app.adapter}…\n`;
      app.status(`Benchmarking (${suite})…`, 'busy');
      try {
        await app.job(() => app.engine.benchmark([suite], (line) => (log.textContent += `${line}\n`)));
        log.textContent += 'done.\n';
        app.status(`Benchmark (${suite}) done.`);
      } catch (e) {
        log.textContent += `error: ${message(e)}\n`;
        app.status(`Benchmark failed: ${message(e)}`, 'error');
      }
    });
  }
}
