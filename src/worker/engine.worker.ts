// A ready-made engine worker (the package's `vitgpu/engine-worker`), for bundlers that build a
// worker from a package (Vite: `import EngineWorker from 'vitgpu/engine-worker?worker'`). This
// repository's tests and command-line page start it from source.
import { serveEngine } from './worker';

serveEngine();
