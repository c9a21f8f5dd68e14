// Which engine serves each deployment, chosen once from the configuration. Diffusion deployments
// that name the same model folder share one worker (one set of sessions); each model loads in the
// background, so the server answers /healthz and /readyz while a large model is still loading.
import { basename } from 'node:path';

import type { Config, DeploymentConfig } from '../config/index.ts';
import { onnxThreadPlan } from '../runtime/onnx-threads.ts';
import { DiffusionEngine } from './diffusion/engine.ts';
import { ModelWorker } from './diffusion/worker/host.ts';
import type { ModelInfo } from './diffusion/worker/protocol.ts';
import type { Engine } from './engine.ts';
import { PlaceholderEngine } from './placeholder/index.ts';

export type EngineStatus = 'loading' | 'ready' | 'unavailable';

/** A deployment's engine and its state, updated in place as its model loads. */
export interface DeploymentEngine {
  engine: Engine;
  status: EngineStatus;
  /** Why the deployment cannot serve (status unavailable). */
  reason: string | null;
  /** The loaded model, for diffusion deployments. */
  model: (ModelInfo & { folder: string }) | null;
}

export interface LoadLog {
  info(object: object, message: string): void;
  error(object: object, message: string): void;
}

export interface DeploymentEngines {
  get(deployment: string): DeploymentEngine;
  /** Settles when every model has loaded or failed to. */
  loaded: Promise<void>;
  close(): Promise<void>;
}

export function createDeploymentEngines(config: Config, log: LoadLog, override?: Engine): DeploymentEngines {
  const placeholder = new PlaceholderEngine();
  const workers = new Map<string, ModelWorker>();
  const entries = new Map<string, DeploymentEngine>();
  const loads: Promise<void>[] = [];
  const executionProviders = config.onnx.executionProvider === 'cuda' ? ['cuda'] : ['cpu'];
  const threadPlan = onnxThreadPlan(config);
  const threads = threadPlan.diffusion;
  if (
    !override &&
    config.deployments.some((d) => d.engine === 'diffusion') &&
    config.onnx.executionProvider === 'cpu'
  ) {
    log.info(
      { onnxThreads: threads },
      `onnxruntime: ${threads} thread(s) per diffusion session (${threadPlan.reason})`,
    );
  }

  for (const d of config.deployments) {
    if (override || d.engine === 'placeholder') {
      const stepMs = d.engine === 'placeholder' ? (d.placeholder?.stepMs ?? 0) : 0;
      const engine = override ?? (stepMs > 0 ? new PlaceholderEngine({ stepMs }) : placeholder);
      entries.set(d.name, { engine, status: 'ready', reason: null, model: null });
      continue;
    }
    const { folder } = d.diffusion;
    let worker = workers.get(folder);
    if (!worker) {
      worker = new ModelWorker({ folder, executionProviders, threads, fuseAttention: config.onnx.fuseAttention });
      workers.set(folder, worker);
    }
    const engine = new DiffusionEngine(worker, d.diffusion, basename(folder));
    const entry: DeploymentEngine = { engine, status: 'loading', reason: null, model: null };
    entries.set(d.name, entry);
    loads.push(load(d, engine, entry, log));
  }

  return {
    get(name) {
      const entry = entries.get(name);
      if (!entry) throw new Error(`no engine for deployment ${name}`);
      return entry;
    },
    loaded: Promise.all(loads).then(() => undefined),
    async close() {
      await Promise.all([...workers.values()].map((w) => w.close()));
      await override?.close?.();
    },
  };
}

async function load(
  d: DeploymentConfig & { engine: 'diffusion' },
  engine: DiffusionEngine,
  entry: DeploymentEngine,
  log: LoadLog,
): Promise<void> {
  const { folder } = d.diffusion;
  try {
    const info = await engine.load();
    entry.status = 'ready';
    entry.model = { ...info, folder };
    log.info(
      {
        deployment: d.name,
        folder,
        family: info.family,
        inpainting: info.inpainting,
        resolution: info.nativeResolution,
        loadMs: Math.round(info.loadMs),
      },
      `deployment ${d.name}: model ${basename(folder)} loaded (${info.family}${info.inpainting ? ', inpainting' : ''}) in ${info.loadMs < 1000 ? `${Math.round(info.loadMs)} ms` : `${(info.loadMs / 1000).toFixed(1)} s`}`,
    );
    if (info.schedulerNote) log.info({ deployment: d.name }, info.schedulerNote);
    const rewrite = info.attentionRewrite;
    if (rewrite && (rewrite.fused > 0 || rewrite.skipped > 0 || rewrite.reason))
      log.info(
        { deployment: d.name, attentionRewrite: rewrite },
        `deployment ${d.name}: ${rewrite.fused} UNet attention block(s) fused for the CPU` +
          (rewrite.skipped > 0 ? `, ${rewrite.skipped} left as exported (${rewrite.firstSkipped})` : '') +
          (rewrite.reason ? ` (not rewritten: ${rewrite.reason})` : ''),
      );
  } catch (error) {
    entry.status = 'unavailable';
    // Clients and /readyz see the folder's name, the log its full path.
    entry.reason = `the model could not be loaded: ${(error as Error).message.replaceAll(folder, basename(folder))}`;
    log.error(
      { deployment: d.name, folder, reason: entry.reason },
      `deployment ${d.name} is unavailable: ${entry.reason}`,
    );
  }
}
