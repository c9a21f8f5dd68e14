// Short names for ONNX exports known to work with easel (docs/diffusion.md, "Known ONNX repositories"), with what each
// needs and the deployment settings it is meant to run with. Data only: `easel pull --list-aliases`
// prints this table and the README repeats it.

export interface ModelAlias {
  /** What users type: `easel pull sd-turbo`; also the folder name under models.dir. */
  name: string;
  /** Hugging Face repository id. */
  repo: string;
  /** Branch, tag or commit holding the ONNX export. */
  revision: string;
  description: string;
  /** What it takes to run: execution provider, download size, memory. */
  needs: string;
  /** Deployment settings (the config file's `diffusion` object, less the folder). */
  settings: { steps: number; guidanceScale: number; resolution: number };
}

export const MODEL_ALIASES: readonly ModelAlias[] = [
  {
    name: 'sd-turbo',
    repo: 'onnxruntime/sd-turbo',
    revision: 'main',
    description: 'SD-Turbo (distilled SD 2.1), Olive-optimised fp16, 1–4 steps at 512×512',
    needs: 'the CUDA execution provider only (EASEL_EXECUTION_PROVIDER=cuda): its fused operators do not run on CPU',
    settings: { steps: 2, guidanceScale: 0, resolution: 512 },
  },
  {
    name: 'sdxl-turbo',
    repo: 'stabilityai/sdxl-turbo',
    revision: 'main',
    description:
      'SDXL-Turbo, the optimum fp32 ONNX export at the repository root (its PyTorch weights are skipped), 1–4 steps',
    needs: 'CPU is fine; ~13 GB download and as much memory; 512×512',
    settings: { steps: 2, guidanceScale: 0, resolution: 512 },
  },
  {
    name: 'lcm-dreamshaper-v7',
    repo: 'SimianLuo/LCM_Dreamshaper_v7',
    revision: 'main',
    description: 'Latent Consistency Model distilled from Dreamshaper v7 (SD 1.5), optimum fp32 ONNX, 4 steps',
    needs: 'CPU is fine; ~4.3 GB download',
    settings: { steps: 4, guidanceScale: 8.5, resolution: 512 },
  },
  {
    name: 'sd-2.1-base',
    repo: 'aislamov/stable-diffusion-2-1-base-onnx',
    revision: 'cpu',
    description:
      'Stable Diffusion 2.1 base, the fp32 "cpu" revision of the diffusers.js export (main is fp16 for GPUs)',
    needs: 'CPU is fine; 25 steps make it slow there',
    settings: { steps: 25, guidanceScale: 7.5, resolution: 512 },
  },
  {
    name: 'sd-turbo-fp16',
    repo: 'schmuell/sd-turbo-ort-web',
    revision: 'main',
    description: 'SD-Turbo fp16 made for ONNX Runtime Web, 1–4 steps at 512×512',
    needs: 'fp16 weights: best with CUDA; on CPU fp16 runs slowly where it runs at all',
    settings: { steps: 2, guidanceScale: 0, resolution: 512 },
  },
];

export function findAlias(name: string): ModelAlias | undefined {
  return MODEL_ALIASES.find((a) => a.name === name);
}
