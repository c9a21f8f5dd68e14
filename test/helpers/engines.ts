import type { ImageRequest } from '../../src/contract/request.ts';
import { type Engine, EngineAbortedError, type EngineOutput, type EngineRunContext } from '../../src/engines/engine.ts';
import { PlaceholderEngine } from '../../src/engines/placeholder/index.ts';

/**
 * An engine that holds every job until `release()` is called, then paints it with the real
 * placeholder engine. A job whose signal fires while held fails with EngineAbortedError.
 * `runs` counts the jobs that reached the engine; `started` resolves when the first one does.
 */
export class GatedEngine implements Engine {
  readonly name = 'gated-test-engine';
  runs = 0;
  private readonly inner = new PlaceholderEngine();
  private openGate!: () => void;
  private readonly gate = new Promise<void>((resolve) => (this.openGate = resolve));
  private firstRun!: () => void;
  readonly started = new Promise<void>((resolve) => (this.firstRun = resolve));

  release(): void {
    this.openGate();
  }

  async run(request: ImageRequest, context: EngineRunContext = {}): Promise<EngineOutput> {
    this.runs++;
    this.firstRun();
    const { signal } = context;
    await new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(new EngineAbortedError());
      const onAbort = () => reject(new EngineAbortedError());
      signal?.addEventListener('abort', onAbort, { once: true });
      void this.gate.then(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
    return this.inner.run(request, context);
  }
}

/** An engine that always throws. */
export const failingEngine: Engine = {
  name: 'failing',
  async run() {
    throw new Error('the engine broke on purpose');
  },
};

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
