import type { RawImage } from '../../contract/request.ts';
import type { Palette, Rgb } from './palette.ts';
import { between } from './random.ts';

/** The soft "subject" shapes of a placeholder picture, in pixel coordinates. */
export type Shape =
  | { kind: 'disc'; cx: number; cy: number; r: number; colour: Rgb }
  | { kind: 'ring'; cx: number; cy: number; r: number; halfWidth: number; colour: Rgb }
  | { kind: 'pill'; ax: number; ay: number; bx: number; by: number; r: number; colour: Rgb };

// 4×4 Bayer matrix in [0, 1): ordered dithering hides banding in slow gradients at no cost.
const BAYER = new Float64Array([0, 8, 2, 10, 12, 4, 14, 6, 3, 11, 1, 9, 15, 7, 13, 5].map((v) => (v + 0.5) / 16));

/** Four-corner gradient; with a transparent background the pixels stay (0, 0, 0, 0). */
export function paintBackground(image: RawImage, corners: Palette['corners'], transparent: boolean): void {
  if (transparent) return;
  const { width, height, data } = image;
  const [tl, tr, bl, br] = corners;
  for (let y = 0; y < height; y++) {
    const v = height > 1 ? y / (height - 1) : 0;
    const bayerRow = (y & 3) * 4;
    let r = tl[0] + (bl[0] - tl[0]) * v;
    let g = tl[1] + (bl[1] - tl[1]) * v;
    let b = tl[2] + (bl[2] - tl[2]) * v;
    const steps = width > 1 ? width - 1 : 1;
    const dr = (tr[0] + (br[0] - tr[0]) * v - r) / steps;
    const dg = (tr[1] + (br[1] - tr[1]) * v - g) / steps;
    const db = (tr[2] + (br[2] - tr[2]) * v - b) / steps;
    for (let x = 0, i = y * width * 4; x < width; x++, i += 4) {
      const d = BAYER[bayerRow + (x & 3)] as number;
      data[i] = r + d;
      data[i + 1] = g + d;
      data[i + 2] = b + d;
      data[i + 3] = 255;
      r += dr;
      g += dg;
      b += db;
    }
  }
}

/**
 * Place 3–5 shapes from the seeded `random`. Shapes never reach the image corners, so a
 * transparent picture always has background there (a promise the tests and users can rely on).
 */
export function layoutShapes(random: () => number, width: number, height: number, palette: Palette): Shape[] {
  const size = Math.min(width, height);
  const cornerClearance = size * 0.08;
  const count = 3 + Math.floor(random() * 3);
  const shapes: Shape[] = [];
  for (let k = 0; k < count; k++) {
    const cx = between(random, 0.1, 0.9) * width;
    const cy = between(random, 0.1, 0.9) * height;
    const colour = palette.shapes[Math.floor(random() * palette.shapes.length)] as Rgb;
    const pick = random();
    let shape: Shape;
    if (pick < 0.5) {
      shape = { kind: 'disc', cx, cy, r: between(random, 0.09, 0.22) * size, colour };
    } else if (pick < 0.75) {
      const r = between(random, 0.12, 0.24) * size;
      shape = { kind: 'ring', cx, cy, r, halfWidth: r * between(random, 0.1, 0.18), colour };
    } else {
      const angle = random() * Math.PI;
      const half = between(random, 0.1, 0.24) * size;
      const [dx, dy] = [Math.cos(angle) * half, Math.sin(angle) * half];
      shape = { kind: 'pill', ax: cx - dx, ay: cy - dy, bx: cx + dx, by: cy + dy, r: between(random, 0.035, 0.07) * size, colour };
    }
    const fitted = shrinkFromCorners(shape, width, height, cornerClearance);
    if (fitted) shapes.push(fitted);
  }
  return shapes;
}

function shrinkFromCorners(shape: Shape, width: number, height: number, clearance: number): Shape | null {
  let current = shape;
  for (let attempt = 0; attempt < 8; attempt++) {
    const nearest = Math.min(
      signedDistance(current, 0, 0),
      signedDistance(current, width, 0),
      signedDistance(current, 0, height),
      signedDistance(current, width, height),
    );
    if (nearest >= clearance) return current;
    current = scaled(current, 0.8);
  }
  return null;
}

function scaled(shape: Shape, factor: number): Shape {
  switch (shape.kind) {
    case 'disc':
      return { ...shape, r: shape.r * factor };
    case 'ring':
      return { ...shape, r: shape.r * factor, halfWidth: shape.halfWidth * factor };
    case 'pill': {
      const [cx, cy] = [(shape.ax + shape.bx) / 2, (shape.ay + shape.by) / 2];
      const f = factor;
      return { ...shape, ax: cx + (shape.ax - cx) * f, ay: cy + (shape.ay - cy) * f, bx: cx + (shape.bx - cx) * f, by: cy + (shape.by - cy) * f, r: shape.r * f };
    }
  }
}

/** Distance from (x, y) to the shape's edge: negative inside. */
export function signedDistance(shape: Shape, x: number, y: number): number {
  switch (shape.kind) {
    case 'disc':
      return length(x - shape.cx, y - shape.cy) - shape.r;
    case 'ring':
      return Math.abs(length(x - shape.cx, y - shape.cy) - shape.r) - shape.halfWidth;
    case 'pill': {
      const [vx, vy] = [shape.bx - shape.ax, shape.by - shape.ay];
      const [wx, wy] = [x - shape.ax, y - shape.ay];
      const t = Math.max(0, Math.min(1, (wx * vx + wy * vy) / (vx * vx + vy * vy || 1)));
      return length(wx - vx * t, wy - vy * t) - shape.r;
    }
  }
}

// Math.hypot guards against overflow we cannot have here, and is several times slower.
function length(x: number, y: number): number {
  return Math.sqrt(x * x + y * y);
}

interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  cx: number;
  cy: number;
  extent: number;
}

function boundsOf(shape: Shape, pad: number, width: number, height: number): Box {
  const [minX, maxX, minY, maxY, extent] =
    shape.kind === 'pill'
      ? [Math.min(shape.ax, shape.bx), Math.max(shape.ax, shape.bx), Math.min(shape.ay, shape.by), Math.max(shape.ay, shape.by), shape.r]
      : [shape.cx, shape.cx, shape.cy, shape.cy, shape.r + (shape.kind === 'ring' ? shape.halfWidth : 0)];
  const reach = extent + pad;
  return {
    x0: Math.max(0, Math.floor(minX - reach)),
    y0: Math.max(0, Math.floor(minY - reach)),
    x1: Math.min(width, Math.ceil(maxX + reach)),
    y1: Math.min(height, Math.ceil(maxY + reach)),
    cx: (minX + maxX) / 2,
    cy: (minY + maxY) / 2,
    extent: Math.max(extent, (maxX - minX) / 2, (maxY - minY) / 2),
  };
}

/** A soft drop shadow under the shape; skipped on transparent pictures, whose background is empty. */
export function paintShadow(image: RawImage, shape: Shape): void {
  const { width, height, data } = image;
  const size = Math.min(width, height);
  const blur = size * 0.03;
  const [ox, oy] = [size * 0.008, size * 0.018];
  const box = boundsOf(shape, blur + Math.max(ox, oy), width, height);
  for (let y = box.y0; y < box.y1; y++) {
    for (let x = box.x0, i = (y * width + x) * 4; x < box.x1; x++, i += 4) {
      const d = signedDistance(shape, x + 0.5 - ox, y + 0.5 - oy);
      if (d >= blur) continue;
      const t = d <= -blur ? 1 : 0.5 - d / (2 * blur);
      const keep = 1 - 0.4 * t * t * (3 - 2 * t);
      data[i] = (data[i] as number) * keep;
      data[i + 1] = (data[i + 1] as number) * keep;
      data[i + 2] = (data[i + 2] as number) * keep;
    }
  }
}

/** The shape itself: opaque, lit from the top left, with a one-pixel anti-aliased edge. */
export function paintShape(image: RawImage, shape: Shape): void {
  const { width, height, data } = image;
  const box = boundsOf(shape, 1, width, height);
  const [cr, cg, cb] = shape.colour;
  const light = 0.22 / (box.extent || 1);
  for (let y = box.y0; y < box.y1; y++) {
    for (let x = box.x0, i = (y * width + x) * 4; x < box.x1; x++, i += 4) {
      const d = signedDistance(shape, x + 0.5, y + 0.5);
      if (d >= 0.5) continue;
      const shade = 1 - ((x - box.cx) + (y - box.cy)) * light;
      const r = Math.min(255, cr * shade);
      const g = Math.min(255, cg * shade);
      const b = Math.min(255, cb * shade);
      if (d <= -0.5) {
        data[i] = r;
        data[i + 1] = g;
        data[i + 2] = b;
        data[i + 3] = 255;
      } else {
        composite(data, i, r, g, b, 0.5 - d);
      }
    }
  }
}

/** Straight-alpha "source over" of an opaque colour with partial coverage. */
export function composite(data: Uint8Array, i: number, r: number, g: number, b: number, coverage: number): void {
  const below = ((data[i + 3] as number) / 255) * (1 - coverage);
  const alpha = coverage + below;
  data[i] = (r * coverage + (data[i] as number) * below) / alpha + 0.5;
  data[i + 1] = (g * coverage + (data[i + 1] as number) * below) / alpha + 0.5;
  data[i + 2] = (b * coverage + (data[i + 2] as number) * below) / alpha + 0.5;
  data[i + 3] = alpha * 255 + 0.5;
}
