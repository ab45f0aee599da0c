import { defineConfig } from 'vitest/config';
import { playwright } from '@vitest/browser-playwright';
import { chromiumArgs, chromiumExecutable, CROSS_ORIGIN_ISOLATED } from './scripts/chromium.js';

// Four projects: pure-TypeScript tests (float64 references, file formats) run in Node; everything
// that touches WebGPU runs in headless Chromium, and again in Node on Dawn (*.dawn.test.ts); the end-to-end tests drive the production build
// of the demo in headless Chromium through Playwright.
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
          browser: {
            enabled: true,
            headless: true,
            screenshotFailures: false,
            provider: playwright({
              launchOptions: { executablePath: chromiumExecutable(), args: chromiumArgs },
            }),
            instances: [{ browser: 'chromium' }],
          },
        },
      },
    ],
  },
});
