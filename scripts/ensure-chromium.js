// Runs before the tests: makes sure a Chromium with WebGPU is there. On Debian as root it installs
// the distribution's `chromium` package (which carries SwiftShader, so WebGPU works without a
// GPU); elsewhere it says what to install. CHROME_PATH selects a browser of your own.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chromiumExecutable } from './chromium.js';

if (!chromiumExecutable()) {
  const canApt = existsSync('/usr/bin/apt-get') && process.getuid?.() === 0;
  if (!canApt) {
    console.error('No Chromium found. Install it (Debian/Ubuntu: sudo apt-get install chromium) or set CHROME_PATH to a Chrome or Chromium binary.');
    process.exit(1);
  }
  console.error('Installing Debian chromium for the browser tests...');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'inherit', 'inherit'], env });
  execFileSync('apt-get', ['install', '-y', '-qq', 'chromium'], { stdio: ['ignore', 'inherit', 'inherit'], env });
}
