// How the command-line scripts report a failure: one line on stderr, the engine's own message,
// never a stack trace, then exit status 1 (usage errors exit 2 before this is needed).

/**
 * The message of an error that may have crossed the page boundary: Playwright wraps what the page
 * threw as "page.evaluate: Error: MESSAGE" followed by the page's stack; comlink passes the
 * worker's message through unchanged. What is left is the engine's own first line.
 * @param {unknown} e
 */
export function plainMessage(e) {
  let m = (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '';
  for (let prev = ''; prev !== m;) {
    prev = m;
    m = m.replace(/^(?:page\.\w+|frame\.\w+|Error|Uncaught):\s*/, '');
  }
  return m.trim() || 'unknown error';
}

/**
 * Any failure that escapes the script's own handling still ends as one line and status 1.
 * @param {string} command the script's name, in front of the message
 */
export function exitOnUncaught(command) {
  const fail = (/** @type {unknown} */ e) => {
    console.error(`${command}: ${plainMessage(e)}`);
    process.exit(1);
  };
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
}

/**
 * Exits once everything written to stdout has reached it: process.exit() alone drops what a pipe
 * has not taken yet (a few hundred kilobytes of feature maps, say).
 * @param {number} code
 */
export function exitAfterOutput(code) {
  process.stdout.write('', () => process.exit(code));
}
