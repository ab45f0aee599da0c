import { serveEngine } from 'vitgpu/worker';
serveEngine();
