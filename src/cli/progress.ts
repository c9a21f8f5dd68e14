// How a pull shows its progress on stderr: bars (cli-progress) on a terminal, a line every few
// seconds otherwise (CI logs, redirected output), nothing with --quiet. src/models only emits events.
import cliProgress from 'cli-progress';

import type { PullEvent } from '../models/index.ts';
import { count, formatBytes, formatDuration } from './format.ts';

/** Hashing a file this big takes seconds: say so rather than look stuck. */
const BIG_FILE = 100_000_000;

export type PullReporter = { onEvent(event: PullEvent): void; stop(): void };

export function pullReporter(stream: NodeJS.WriteStream, mode: 'bars' | 'lines' | 'quiet'): PullReporter {
  if (mode === 'quiet') return { onEvent: () => {}, stop: () => {} };
  return mode === 'bars' ? barsReporter(stream) : linesReporter(stream);
}

/** Bytes per second over the last few seconds of received bytes. */
class Speed {
  private readonly samples: Array<{ at: number; bytes: number }> = [];

  add(bytes: number, at = Date.now()): void {
    this.samples.push({ at, bytes });
    while (this.samples.length > 2 && at - this.samples[0]!.at > 5000) this.samples.shift();
  }

  perSecond(): number {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || !last || last.at - first.at < 250) return 0;
    return ((last.bytes - first.bytes) * 1000) / (last.at - first.at);
  }
}

function listedLine(e: Extract<PullEvent, { type: 'listed' }>): string {
  const skipped = e.skipped.length > 0 ? `; ${count(e.skipped.length, 'file')} outside the ONNX layout skipped` : '';
  return `Pulling ${e.repo}@${e.revision} (commit ${e.commit.slice(0, 10)}) into ${e.folder}: ${count(e.files.length, 'file')}, ${formatBytes(e.totalSize)}${skipped}\n`;
}

function totalsLine(totalBytes: number, totalSize: number, speed: number): string {
  const percent = totalSize > 0 ? Math.floor((totalBytes / totalSize) * 100) : 100;
  const eta = speed > 0 ? formatDuration((totalSize - totalBytes) / speed) : '?';
  return `${percent}% ${formatBytes(totalBytes)} of ${formatBytes(totalSize)}, ${formatBytes(Math.round(speed))}/s, ETA ${eta}`;
}

function linesReporter(stream: NodeJS.WriteStream): PullReporter {
  const speed = new Speed();
  let lastLine = 0;
  return {
    onEvent(e) {
      switch (e.type) {
        case 'listed':
          lastLine = Date.now();
          stream.write(listedLine(e));
          break;
        case 'file-checking':
          if (e.size >= BIG_FILE) stream.write(`  checking ${e.path} (${formatBytes(e.size)}) already on disk\n`);
          break;
        case 'file-started':
          if (e.resumedFrom > 0)
            stream.write(`  resuming ${e.path} at ${formatBytes(e.resumedFrom)} of ${formatBytes(e.size)}\n`);
          break;
        case 'progress':
          speed.add(e.receivedBytes);
          if (Date.now() - lastLine >= 5000) {
            lastLine = Date.now();
            stream.write(`  ${totalsLine(e.totalBytes, e.totalSize, speed.perSecond())}\n`);
          }
          break;
        case 'file-done':
          stream.write(`  ${e.alreadyThere ? 'already there' : 'done'}: ${e.path} (${formatBytes(e.size)})\n`);
          break;
        default:
          break;
      }
    },
    stop() {},
  };
}

function bar(progress: number, width: number): string {
  const done = Math.round(Math.min(1, Math.max(0, progress)) * width);
  return '█'.repeat(done) + '░'.repeat(width - done);
}

function barsReporter(stream: NodeJS.WriteStream): PullReporter {
  const speed = new Speed();
  const multibar = new cliProgress.MultiBar({
    stream,
    hideCursor: true,
    clearOnComplete: true,
    gracefulExit: false,
    fps: 8,
    format: (_options, params, payload: { label: string; speed?: boolean }) => {
      const line = `${bar(params.progress, 24)} ${payload.label.padEnd(28).slice(0, 40)}`;
      if (payload.speed) return `${line} ${totalsLine(params.value, params.total, speed.perSecond())}`;
      return `${line} ${Math.floor(params.progress * 100)}% ${formatBytes(params.value)}/${formatBytes(params.total)}`;
    },
  });
  let total: cliProgress.SingleBar | undefined;
  const files = new Map<string, cliProgress.SingleBar>();
  return {
    onEvent(e) {
      switch (e.type) {
        case 'listed':
          multibar.log(listedLine(e));
          total = multibar.create(e.totalSize, 0, { label: 'total', speed: true });
          break;
        case 'file-checking':
          if (e.size >= BIG_FILE) multibar.log(`checking ${e.path} (${formatBytes(e.size)}) already on disk\n`);
          break;
        case 'file-started':
          files.set(e.path, multibar.create(e.size, e.resumedFrom, { label: e.path }));
          if (e.resumedFrom > 0) multibar.log(`resuming ${e.path} at ${formatBytes(e.resumedFrom)}\n`);
          break;
        case 'progress':
          speed.add(e.receivedBytes);
          files.get(e.path)?.update(e.bytes);
          total?.update(e.totalBytes);
          break;
        case 'inspecting':
          total?.update(total.getTotal());
          break;
        case 'file-done': {
          const fileBar = files.get(e.path);
          if (fileBar) multibar.remove(fileBar);
          files.delete(e.path);
          if (e.alreadyThere) total?.increment(e.size);
          multibar.log(`${e.alreadyThere ? 'already there' : 'done'}: ${e.path} (${formatBytes(e.size)})\n`);
          break;
        }
        default:
          break;
      }
    },
    stop() {
      multibar.stop();
    },
  };
}
