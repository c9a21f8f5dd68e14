// What `easel generate` and `easel edit` show while the server works: the API answers once, when
// every image is done (the engines report no steps over a plain request), so the honest display is
// what is being waited for and for how long. A spinner with the elapsed time on a terminal; one
// line before and one after otherwise (CI logs, redirected output).
import { formatDuration } from './format.ts';

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export interface Waiting {
  /** Stop the display; `outcome` ends the line ("done", "failed"). */
  stop(outcome: string): void;
}

export function showWaiting(stream: NodeJS.WriteStream, label: string, mode: 'spinner' | 'lines' | 'quiet'): Waiting {
  const started = Date.now();
  const elapsed = () => formatDuration((Date.now() - started) / 1000);
  if (mode === 'quiet') return { stop() {} };
  if (mode === 'lines') {
    stream.write(`${label} …\n`);
    return { stop: (outcome) => stream.write(`${outcome} after ${elapsed()}\n`) };
  }
  let frame = 0;
  const draw = () => stream.write(`\r\x1b[2K${FRAMES[frame++ % FRAMES.length]} ${label} ${elapsed()}`);
  draw();
  const timer = setInterval(draw, 100);
  return {
    stop(outcome) {
      clearInterval(timer);
      stream.write(`\r\x1b[2K${label}: ${outcome} after ${elapsed()}\n`);
    },
  };
}
