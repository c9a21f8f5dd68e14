/**
 * Measuring what a burst of edits costs a server process in memory: the growth of its peak resident
 * set (Linux /proc: VmHWM, reset through clear_refs) while the burst runs. Used by
 * test/e2e/memory-bound.test.ts and bench/memory.bench.ts.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

import { TEST_KEY } from '../helpers/app.ts';

export const canMeasure = (pid: number) => existsSync(`/proc/${pid}/status`) && existsSync(`/proc/${pid}/clear_refs`);

function statusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/** Run `burst` and return its result with how far the process's peak RSS rose above its RSS before. */
export async function peakRssGrowth<T>(
  pid: number,
  burst: () => Promise<T>,
): Promise<{ result: T; growthBytes: number }> {
  writeFileSync(`/proc/${pid}/clear_refs`, '5'); // "5" resets the peak (VmHWM) to the current RSS
  const before = statusBytes(pid, 'VmRSS');
  const result = await burst();
  return { result, growthBytes: statusBytes(pid, 'VmHWM') - before };
}

/** POST a gpt-image-1 edit; answers the status and the error code, if any. */
export async function postEdit(
  base: string,
  images: Buffer[],
  fields: Record<string, string> = {},
): Promise<{ status: number; code: string | null }> {
  const form = new FormData();
  form.append('prompt', 'add a red hat');
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  for (const [i, image] of images.entries())
    form.append(
      images.length > 1 ? 'image[]' : 'image',
      new Blob([new Uint8Array(image)], { type: 'image/png' }),
      `${i}.png`,
    );
  const response = await fetch(`${base}/openai/deployments/gpt-image-1/images/edits?api-version=2025-04-01-preview`, {
    method: 'POST',
    headers: { 'api-key': TEST_KEY },
    body: form,
  });
  const body = (await response.json()) as { error?: { code: string } };
  return { status: response.status, code: body.error?.code ?? null };
}
