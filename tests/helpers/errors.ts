// What a refused call says, for tests that check the exact message.

/** The message a rejected call carries: exactly what was said, nothing wrapped around it. */
export async function messageOf(call: Promise<unknown>): Promise<string> {
  try {
    await call;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  throw new Error('expected the call to be refused');
}
