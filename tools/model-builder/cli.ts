// Writes a tiny random SD ONNX folder for manual tests of the engine and server:
//   npx tsx tools/model-builder/cli.ts <folder> [--family sdxl] [--ids int64] [--timestep int64-vector] [--inpainting]
//     [--fp16] [--external-data] [--latent-parameters] [--symbolic-channels] [--scheduler lcm] [--seed 7]
// [--tiny-autoencoder]
// or, with --preset, a folder with the real architecture of SD-Turbo, SD 1.5 or SDXL-Turbo (random weights) for
// benchmarks (small and sdxl-small: every block kind at small widths):
//   npx tsx tools/model-builder/cli.ts <folder> --preset small|sd-turbo|sd15|sdxl-turbo|sdxl-small [--fp16]
// [--ids int64] [--timestep …] [--latent-parameters] [--seed 7] [--tiny-autoencoder]
// --tiny-autoencoder adds vae_tiny_decoder/ and vae_tiny_encoder/ with TAESD's architecture: its real
// width with --preset sd-turbo|sd15|sdxl-turbo (TAESDXL for sdxl-turbo: the same architecture), width 8 otherwise.
import { parseArgs } from 'node:util';

import { ARCHITECTURE_PRESETS, type ArchitecturePreset, writeArchitectureModel } from './architectures.ts';
import {
  type IdsType,
  SCHEDULER_PRESETS,
  type SchedulerPreset,
  type TimestepKind,
  type TinyFamily,
  writeTinyModel,
} from './tiny-sd.ts';

const USAGE =
  'usage: cli.ts <folder> [--family sd|sdxl|lcm] [--ids int32|int64] [--timestep float-scalar|float-vector|int64-vector] [--inpainting] [--fp16] ' +
  `[--external-data] [--latent-parameters] [--symbolic-channels] [--pad "!"] [--scheduler ${Object.keys(SCHEDULER_PRESETS).join('|')}] [--seed N] [--tiny-autoencoder]\n` +
  `   or: cli.ts <folder> --preset ${ARCHITECTURE_PRESETS.join('|')} [--fp16] [--ids int32|int64] [--timestep …] [--latent-parameters] [--seed N] [--tiny-autoencoder]`;

/** Options of the tiny builder that an architecture preset fixes itself. */
const TINY_ONLY = ['family', 'inpainting', 'external-data', 'symbolic-channels', 'pad', 'scheduler'] as const;

function oneOf<T extends string>(name: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value))
    throw new Error(`--${name} must be one of ${allowed.join(', ')}, got "${value}"`);
  return value as T;
}

try {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      ids: { type: 'string' },
      timestep: { type: 'string' },
      inpainting: { type: 'boolean' },
      fp16: { type: 'boolean' },
      'external-data': { type: 'boolean' },
      'latent-parameters': { type: 'boolean' },
      'symbolic-channels': { type: 'boolean' },
      pad: { type: 'string' },
      scheduler: { type: 'string' },
      seed: { type: 'string' },
      family: { type: 'string' },
      preset: { type: 'string' },
      'tiny-autoencoder': { type: 'boolean' },
    },
  });
  const folder = positionals[0];
  if (folder === undefined || positionals.length > 1) throw new Error('give exactly one output folder');
  const seed = values.seed === undefined ? undefined : Number(values.seed);
  if (seed !== undefined && !Number.isSafeInteger(seed))
    throw new Error(`--seed must be an integer, got "${values.seed}"`);
  const idsType = oneOf<IdsType>('ids', values.ids, ['int32', 'int64']);
  const timestep = oneOf<TimestepKind>('timestep', values.timestep, ['float-scalar', 'float-vector', 'int64-vector']);
  const preset = oneOf<ArchitecturePreset>('preset', values.preset, ARCHITECTURE_PRESETS);
  if (preset !== undefined) {
    const refused = TINY_ONLY.filter((name) => values[name] !== undefined);
    if (refused.length > 0) throw new Error(`--preset fixes ${refused.map((name) => `--${name}`).join(', ')} itself`);
    const started = Date.now();
    const info = await writeArchitectureModel(folder, preset, {
      seed,
      fp16: values.fp16,
      idsType,
      timestep,
      latentParameters: values['latent-parameters'],
      tinyAutoencoder: values['tiny-autoencoder'],
    });
    const gb = Object.values(info.bytes).reduce((a, b) => a + b, 0) / 1e9;
    console.log(
      `wrote ${info.preset} to ${folder}: ${info.parameters.total.toLocaleString('en')} parameters, ${gb.toFixed(2)} GB in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  } else {
    const info = await writeTinyModel(folder, {
      family: oneOf<TinyFamily>('family', values.family, ['sd', 'sdxl', 'lcm']),
      idsType,
      timestep,
      inpainting: values.inpainting,
      fp16: values.fp16,
      externalData: values['external-data'],
      latentParameters: values['latent-parameters'],
      symbolicChannels: values['symbolic-channels'],
      padToken: oneOf('pad', values.pad, ['<|endoftext|>', '!'] as const),
      scheduler: oneOf<SchedulerPreset>(
        'scheduler',
        values.scheduler,
        Object.keys(SCHEDULER_PRESETS) as SchedulerPreset[],
      ),
      seed,
      ...(values['tiny-autoencoder'] ? { tinyAutoencoder: 'narrow' as const } : {}),
    });
    console.log(
      `wrote ${info.files.length} ${info.family} files to ${folder} (vocab ${info.vocabSize}, hidden ${info.hiddenSize}, UNet in ${info.unetInChannels})`,
    );
  }
} catch (error) {
  console.error(`${(error as Error).message}\n${USAGE}`);
  process.exit(2);
}
