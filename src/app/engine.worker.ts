// The demo's engine worker, as any app writes it: the package serves the engine, the app's
// bundler builds this file (and the engine with it) as a worker.
import { serveEngine } from '../worker/worker';

serveEngine();
