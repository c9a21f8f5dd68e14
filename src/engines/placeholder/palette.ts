import type { ImageRequest } from '../../contract/request.ts';
import { between, fnv1a, mulberry32 } from './random.ts';

export type Rgb = readonly [number, number, number];

/** The colours of one placeholder picture; derived from the prompt, so a prompt has "its" colours. */
export interface Palette {
  /** Background corners: top-left, top-right, bottom-left, bottom-right. */
  corners: readonly [Rgb, Rgb, Rgb, Rgb];
  shapes: readonly Rgb[];
  /** Dark, slightly hued backing of the text card. */
  panel: Rgb;
  /** Bright colour for the card's accent bar. */
  accent: Rgb;
}

interface Look {
  bgSaturation: number;
  bgLightness: readonly [number, number];
  shapeSaturation: number;
  shapeLightness: readonly [number, number];
}

// DALL-E 3's `vivid` leans to hyper-real, dramatic colour; `natural` to subdued, realistic colour.
// Families without a style get something in between.
const LOOKS: Readonly<Record<'vivid' | 'natural' | 'balanced', Look>> = {
  vivid: { bgSaturation: 0.9, bgLightness: [0.2, 0.46], shapeSaturation: 0.95, shapeLightness: [0.52, 0.66] },
  natural: { bgSaturation: 0.2, bgLightness: [0.66, 0.82], shapeSaturation: 0.26, shapeLightness: [0.4, 0.6] },
  balanced: { bgSaturation: 0.5, bgLightness: [0.36, 0.6], shapeSaturation: 0.62, shapeLightness: [0.46, 0.64] },
};

// Hue offsets of classic colour schemes: analogous, complementary, triadic, split-complementary.
const SCHEMES: readonly (readonly number[])[] = [
  [0, 28, -28, 56],
  [0, 180, 24, 204],
  [0, 120, 240, 60],
  [0, 150, 210, 30],
];

export function makePalette(prompt: string, style: ImageRequest['style'], tint: Rgb | null): Palette {
  const hash = fnv1a(prompt);
  const random = mulberry32(hash);
  const look = LOOKS[style ?? 'balanced'];
  const baseHue = hash % 360;
  const scheme = SCHEMES[(hash >>> 16) % SCHEMES.length] as readonly number[];
  const hue = (i: number): number => baseHue + (scheme[i % scheme.length] as number);

  const [bgDark, bgLight] = look.bgLightness;
  const corner = (h: number): Rgb =>
    hsl(h + between(random, -12, 12), look.bgSaturation, between(random, bgDark, bgLight));
  const corners = [corner(hue(0)), corner(hue(1)), corner(hue(0) + 20), corner(hue(1) - 20)] as const;

  const [shapeDark, shapeLight] = look.shapeLightness;
  const shapes = [0, 1, 2, 3].map((i) => hsl(hue(i), look.shapeSaturation, between(random, shapeDark, shapeLight)));

  const palette: Palette = {
    corners,
    shapes,
    panel: hsl(baseHue, 0.35, 0.07),
    accent: hsl(hue(1), Math.max(0.45, look.shapeSaturation), 0.62),
  };
  return tint ? tintPalette(palette, tint, 0.3) : palette;
}

/** Pull every colour part of the way toward `tint` (the average colour of reference images). */
function tintPalette(palette: Palette, tint: Rgb, amount: number): Palette {
  const pull = (c: Rgb): Rgb => [mix(c[0], tint[0], amount), mix(c[1], tint[1], amount), mix(c[2], tint[2], amount)];
  const [tl, tr, bl, br] = palette.corners;
  return {
    corners: [pull(tl), pull(tr), pull(bl), pull(br)],
    shapes: palette.shapes.map(pull),
    panel: palette.panel,
    accent: pull(palette.accent),
  };
}

function mix(a: number, b: number, t: number): number {
  return Math.round(a + (b - a) * t);
}

/** HSL (hue in degrees, any range; saturation and lightness 0–1) to 8-bit RGB. */
function hsl(hue: number, saturation: number, lightness: number): Rgb {
  const h = (((hue % 360) + 360) % 360) / 360;
  const q = lightness < 0.5 ? lightness * (1 + saturation) : lightness + saturation - lightness * saturation;
  const p = 2 * lightness - q;
  const channel = (t: number): number => {
    const u = t < 0 ? t + 1 : t > 1 ? t - 1 : t;
    const v = u < 1 / 6 ? p + (q - p) * 6 * u : u < 1 / 2 ? q : u < 2 / 3 ? p + (q - p) * (2 / 3 - u) * 6 : p;
    return Math.round(v * 255);
  };
  return [channel(h + 1 / 3), channel(h), channel(h - 1 / 3)];
}

/** Average colour of some RGBA images (every 7th pixel is plenty), or null when there are none. */
export function averageColour(images: readonly { data: Uint8Array; channels: number }[]): Rgb | null {
  let r = 0;
  let g = 0;
  let b = 0;
  let count = 0;
  for (const image of images) {
    const stride = image.channels * 7;
    for (let i = 0; i + 2 < image.data.length; i += stride) {
      r += image.data[i] as number;
      g += image.data[i + 1] as number;
      b += image.data[i + 2] as number;
      count++;
    }
  }
  return count === 0 ? null : [Math.round(r / count), Math.round(g / count), Math.round(b / count)];
}
