import { basename } from 'node:path';

import type { FastifyBaseLogger } from 'fastify';

import type { ClassifierConfig, Config } from '../config/index.ts';
import { onnxThreadPlan } from '../runtime/onnx-threads.ts';
import { Blocklists } from './blocklists.ts';
import type { PromptClassifier } from './classifier.ts';
import { HttpModerationClassifier } from './classifiers/http-moderation.ts';
import { OnnxTextClassifier, type OnnxTextClassifierOptions } from './classifiers/onnx-text-classifier.ts';
import type { ImageFilter } from './image-filter.ts';
import { sharedNsfwClassifier } from './nsfw/worker-classifier.ts';
import { NsfwImageFilter } from './nsfw-image-filter.ts';
import { PassImageFilter } from './pass-image-filter.ts';
import { RealEnginesImageFilter } from './placeholder-image-filter.ts';
import { SafetyPolicy } from './policy.ts';
import type { PromptFilter } from './prompt-filter.ts';
import { SafetyPromptFilter } from './safety-prompt-filter.ts';

/** A prompt classifier's state for /readyz; `reason` never holds a full path or a key. */
export interface ClassifierState {
  kind: string;
  status: 'loading' | 'ready' | 'unavailable';
  reason?: string;
}

export interface Safety {
  promptFilter: PromptFilter;
  imageFilter: ImageFilter;
  classifierStates(): Record<string, ClassifierState>;
  /** Stops following blocklist files and releases the classifiers. */
  close(): Promise<void>;
}

/**
 * The filters the configuration asks for. Blocklists compile now (a bad pattern or unreadable
 * file stops the start with BlocklistError); ONNX classifiers load in the background, and one that
 * fails to load fails each prompt it is asked about, which its failure policy then decides.
 */
export function createSafety(
  config: Config,
  log: FastifyBaseLogger,
  overrides: { imageFilter?: ImageFilter } = {},
): Safety {
  const policy = new SafetyPolicy(
    { threshold: config.safety.threshold, blockProfanity: config.safety.blockProfanity },
    new Map(config.deployments.flatMap((d) => (d.safety ? [[d.name, d.safety] as const] : []))),
  );
  const blocklists = new Blocklists(config.safety.blocklists, log);
  blocklists.watch();
  const classifiers = config.safety.classifiers.map((settings) => ({
    classifier: createClassifier(settings, config),
    timeoutMs: settings.timeoutMs,
    onFailure: settings.onFailure,
  }));
  const states = new Map<string, ClassifierState>();
  config.safety.classifiers.forEach((settings, i) => {
    const { classifier } = classifiers[i]!;
    const state = (status: ClassifierState['status'], reason?: string) =>
      states.set(settings.id, { kind: settings.kind, status, ...(reason === undefined ? {} : { reason }) });
    if (!classifier.load) return void state('ready');
    state('loading');
    classifier.load().then(
      () => {
        state('ready');
        log.info({ classifier: settings.id }, 'prompt classifier loaded');
      },
      (error: Error) => {
        state(
          'unavailable',
          settings.kind === 'onnx'
            ? error.message.replaceAll(settings.folder, basename(settings.folder))
            : error.message,
        );
        log.error(
          { classifier: settings.id, err: error.message },
          'prompt classifier failed to load; its failure policy applies to every prompt',
        );
      },
    );
  });
  const imageFilter = overrides.imageFilter ?? configuredImageFilter(config, policy);
  return {
    promptFilter: new SafetyPromptFilter({ policy, blocklists, classifiers, log }),
    imageFilter,
    classifierStates: () => Object.fromEntries(states),
    async close() {
      await blocklists.close();
      await Promise.all(classifiers.map(async ({ classifier }) => classifier.close?.()));
    },
  };
}

/** The image classifier, on placeholder pictures only when the operator asks for it. */
function configuredImageFilter(config: Config, policy: SafetyPolicy): ImageFilter {
  if (config.safety.imageClassifier === 'none') return new PassImageFilter();
  const nsfw = new NsfwImageFilter({
    policy,
    classifier: sharedNsfwClassifier(),
    onFailure: config.safety.imageClassifierFailure,
  });
  return config.safety.classifyPlaceholderImages ? nsfw : new RealEnginesImageFilter(nsfw);
}

function createClassifier(c: ClassifierConfig, config: Config): PromptClassifier {
  if (c.kind === 'onnx') {
    return new OnnxTextClassifier({
      id: c.id,
      folder: c.folder,
      ...(c.labels ? { labels: c.labels as OnnxTextClassifierOptions['labels'] } : {}),
      ...(c.cutPoints ? { cutPoints: c.cutPoints } : {}),
      ...(c.maxTokens ? { maxTokens: c.maxTokens } : {}),
      executionProvider: config.onnx.executionProvider,
      threads: onnxThreadPlan(config).classifier,
    });
  }
  return new HttpModerationClassifier({
    id: c.id,
    kind: c.kind,
    url: c.url,
    ...(c.key ? { key: c.key } : {}),
    ...(c.model ? { model: c.model } : {}),
    ...(c.cutPoints ? { cutPoints: c.cutPoints } : {}),
  });
}
