import { defineConfig } from 'vitest/config';
import { playwright } from '@vitest/browser-playwright';
import { chromiumArgs, chromiumExecutable, CROSS_ORIGIN_ISOLATED } from './scripts/chromium.js';

// Five projects: pure-TypeScript tests (float64 references, file formats) run in Node; everything
// that touches WebGPU runs in headless Chromium, and again in Node on Dawn (*.dawn.test.ts); the end-to-end tests drive the production build
// of the demo in headless Chromium through Playwright. With VITGPU_LIMITS=default (npm run
// test:limits) a fifth, `limits`, runs a few of the browser tests again on devices with only the
// WebGPU default limits (tests/helpers/gpu.ts); it stays out of `npm test`, whose time it would
// push past the 15-minute budget on a 2-core machine.

/** Headless Chromium with WebGPU, for the browser projects. */
const chromium = {
  enabled: true,
  headless: true,
  screenshotFailures: false,
  provider: playwright({
    launchOptions: { executablePath: chromiumExecutable(), args: chromiumArgs },
  }),
  instances: [{ browser: 'chromium' as const }],
};

/**
 * What runs under the WebGPU default limits (128 MiB bindings, 16 KiB of workgroup storage, 8
 * storage buffers a stage), as many laptops and phones give, in about 90 seconds: kernels with
 * workgroup memory and many bindings, the DeiT-tiny golden, seeded training steps (every kernel of
 * a ViT's forward and backward pass), and splitting under a cap. The matmul and attention files
 * take minutes on a software adapter; their kernels run in the golden and the training steps.
 */
const DEFAULT_LIMITS_TESTS = [
  'tests/layernorm.gpu.test.ts',
  'tests/crossEntropy.gpu.test.ts',
  'tests/optimizer.gpu.test.ts',
  'tests/golden.gpu.test.ts',
  'tests/trainingStep.gpu.test.ts',
  'tests/limits.gpu.test.ts',
];

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'node',
          include: ['tests/**/*.node.test.ts'],
          environment: 'node',
          // These share the cores with the other projects' Chromium, so 5 s (vitest's default)
          // measured the machine's load more than the tests: float64 references take seconds.
          testTimeout: 60_000,
        },
      },
      {
        test: {
          // The engine in Node on Dawn (the webgpu package), SwiftShader on a machine without a GPU.
          name: 'dawn',
          include: ['tests/**/*.dawn.test.ts'],
          environment: 'node',
          // Each test file owns its process: Dawn polls once a millisecond instead of spinning a
          // core the software adapter needs (see pollGpuGently).
          setupFiles: ['tests/helpers/dawnSetup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['tests/e2e/**/*.e2e.test.ts'],
          environment: 'node',
          globalSetup: ['tests/e2e/setup.ts'],
          testTimeout: 600_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
      {
        // Cross-origin isolated, so a test can measure a worker's JS heap (measureUserAgentSpecificMemory).
        server: { headers: CROSS_ORIGIN_ISOLATED },
        test: {
          name: 'browser',
          include: ['tests/**/*.gpu.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
          browser: chromium,
        },
      },
      ...(process.env.VITGPU_LIMITS === 'default' ? [{
        test: {
          name: 'limits',
          include: DEFAULT_LIMITS_TESTS,
          provide: { gpuLimits: 'default' as const },
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
          browser: chromium,
        },
      }] : []),
    ],
  },
});
