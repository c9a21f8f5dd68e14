import type { RawImage } from '../../contract/request.ts';
import type { Palette, Rgb } from './palette.ts';
import { between } from './random.ts';

/**
 * One soft "subject" shape, in pixel coordinates: a capsule around the segment a–b (a disc when
 * a = b), hollow when `halfWidth` > 0 (a ring of that half-width around radius `r`). One class for
 * all kinds keeps the per-pixel distance code monomorphic, which V8 runs several times faster.
 */
export class Shape {
  readonly vx: number;
  readonly vy: number;
  readonly inverseLength2: number;

  constructor(
    readonly ax: number,
    readonly ay: number,
    readonly bx: number,
    readonly by: number,
    readonly r: number,
    readonly halfWidth: number,
    readonly colour: Rgb,
  ) {
    this.vx = bx - ax;
    this.vy = by - ay;
    const length2 = this.vx * this.vx + this.vy * this.vy;
    this.inverseLength2 = length2 > 0 ? 1 / length2 : 0;
  }

  /** Distance from (x, y) to the shape's edge: negative inside. Exact, hence 1-Lipschitz. */
  distance(x: number, y: number): number {
    const wx = x - this.ax;
    const wy = y - this.ay;
    const t = Math.max(0, Math.min(1, (wx * this.vx + wy * this.vy) * this.inverseLength2));
    const dx = wx - this.vx * t;
    const dy = wy - this.vy * t;
    // Math.hypot guards against overflow that cannot happen here, and is several times slower.
    const fromAxis = Math.sqrt(dx * dx + dy * dy);
    return this.halfWidth > 0 ? Math.abs(fromAxis - this.r) - this.halfWidth : fromAxis - this.r;
  }

  /** The same shape, `factor` times the size, around its centre. */
  scaled(factor: number): Shape {
    const [cx, cy] = [(this.ax + this.bx) / 2, (this.ay + this.by) / 2];
    const [hx, hy] = [(this.vx / 2) * factor, (this.vy / 2) * factor];
    return new Shape(cx - hx, cy - hy, cx + hx, cy + hy, this.r * factor, this.halfWidth * factor, this.colour);
  }
}

/** How much the darkest part of a shadow darkens the background. */
const SHADOW_DEPTH = 0.4;

// 4×4 Bayer matrix in [0, 1): ordered dithering hides banding in slow gradients at no cost.
const BAYER = new Float64Array([0, 8, 2, 10, 12, 4, 14, 6, 3, 11, 1, 9, 15, 7, 13, 5].map((v) => (v + 0.5) / 16));

/** Four-corner gradient; with a transparent background the pixels stay (0, 0, 0, 0). */
export function paintBackground(image: RawImage, corners: Palette['corners'], transparent: boolean): void {
  if (transparent) return;
  const { width, height, data } = image;
  const [tl, tr, bl, br] = corners;
  const steps = width > 1 ? width - 1 : 1;
  for (let y = 0; y < height; y++) {
    const v = height > 1 ? y / (height - 1) : 0;
    const bayerRow = (y & 3) * 4;
    let r = tl[0] + (bl[0] - tl[0]) * v;
    let g = tl[1] + (bl[1] - tl[1]) * v;
    let b = tl[2] + (bl[2] - tl[2]) * v;
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
 * Place 4–6 shapes from the seeded `random`. Shapes never reach the image corners, so a
 * transparent picture always has background there (a promise the tests and users can rely on).
 */
export function layoutShapes(random: () => number, width: number, height: number, palette: Palette): Shape[] {
  const size = Math.min(width, height);
  const cornerClearance = size * 0.08;
  const count = 4 + Math.floor(random() * 3);
  const shapes: Shape[] = [];
  for (let k = 0; k < count; k++) {
    const cx = between(random, 0.1, 0.9) * width;
    // Alternate above and below the middle, where the text card sits, so the shapes show.
    const cy = (k % 2 === 0 ? between(random, 0.1, 0.4) : between(random, 0.6, 0.9)) * height;
    const colour = palette.shapes[Math.floor(random() * palette.shapes.length)] as Rgb;
    const pick = random();
    let shape: Shape;
    if (pick < 0.5) {
      shape = new Shape(cx, cy, cx, cy, between(random, 0.09, 0.22) * size, 0, colour);
    } else if (pick < 0.75) {
      const r = between(random, 0.12, 0.24) * size;
      shape = new Shape(cx, cy, cx, cy, r, r * between(random, 0.1, 0.18), colour);
    } else {
      const angle = random() * Math.PI;
      const half = between(random, 0.1, 0.24) * size;
      const [dx, dy] = [Math.cos(angle) * half, Math.sin(angle) * half];
      shape = new Shape(cx - dx, cy - dy, cx + dx, cy + dy, between(random, 0.035, 0.07) * size, 0, colour);
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
      current.distance(0, 0),
      current.distance(width, 0),
      current.distance(0, height),
      current.distance(width, height),
    );
    if (nearest >= clearance) return current;
    current = current.scaled(0.8);
  }
  return null;
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
  const [minX, maxX] = [Math.min(shape.ax, shape.bx), Math.max(shape.ax, shape.bx)];
  const [minY, maxY] = [Math.min(shape.ay, shape.by), Math.max(shape.ay, shape.by)];
  const extent = shape.r + shape.halfWidth;
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

/**
 * A soft drop shadow under the shape; skipped on transparent pictures, whose background is empty.
 * The signed distance is 1-Lipschitz, so one evaluation far from the shadow's edge skips as many
 * pixels as it is far away: only the thin soft band is computed pixel by pixel.
 */
export function paintShadow(image: RawImage, shape: Shape): void {
  const { width, height, data } = image;
  const size = Math.min(width, height);
  const blur = size * 0.022;
  const [ox, oy] = [size * 0.006, size * 0.014];
  // Deeper inside than this, the shape itself will cover the pixel.
  const hidden = -(Math.sqrt(ox * ox + oy * oy) + 1);
  const box = boundsOf(shape, blur + Math.max(ox, oy), width, height);
  for (let y = box.y0; y < box.y1; y++) {
    let x = box.x0;
    while (x < box.x1) {
      const d = shape.distance(x + 0.5 - ox, y + 0.5 - oy);
      if (d >= blur) {
        x += 1 + Math.floor(d - blur);
        continue;
      }
      if (d <= hidden) {
        x += 1 + Math.floor(hidden - d);
        continue;
      }
      const t = d <= -blur ? 1 : 0.5 - d / (2 * blur);
      const keep = (256 - SHADOW_DEPTH * 256 * t * t * (3 - 2 * t)) | 0;
      const i = (y * width + x) * 4;
      data[i] = ((data[i] as number) * keep) >> 8;
      data[i + 1] = ((data[i + 1] as number) * keep) >> 8;
      data[i + 2] = ((data[i + 2] as number) * keep) >> 8;
      x++;
    }
  }
}

/**
 * The shape itself: opaque, lit from the top left, with a one-pixel anti-aliased edge. As in
 * paintShadow, distances skip the outside and fill runs of the inside without evaluating it.
 */
export function paintShape(image: RawImage, shape: Shape): void {
  const { width, height, data } = image;
  const box = boundsOf(shape, 1, width, height);
  const [cr, cg, cb] = shape.colour;
  const light = 0.22 / (box.extent || 1);
  for (let y = box.y0; y < box.y1; y++) {
    const rowShade = 1 - (y - box.cy - box.cx) * light;
    let x = box.x0;
    while (x < box.x1) {
      const d = shape.distance(x + 0.5, y + 0.5);
      if (d >= 0.5) {
        x += 1 + Math.floor(d - 0.5);
        continue;
      }
      const run = d > -0.5 ? 1 : 1 + Math.floor(-0.5 - d);
      const end = Math.min(box.x1, x + run);
      for (let i = (y * width + x) * 4; x < end; x++, i += 4) {
        const shade = rowShade - x * light;
        const r = Math.min(255, cr * shade);
        const g = Math.min(255, cg * shade);
        const b = Math.min(255, cb * shade);
        if (d > -0.5) {
          composite(data, i, r, g, b, 0.5 - d);
          continue;
        }
        data[i] = r;
        data[i + 1] = g;
        data[i + 2] = b;
        data[i + 3] = 255;
      }
    }
  }
}

/** Straight-alpha "source over" of an opaque colour with partial coverage. */
function composite(data: Uint8Array, i: number, r: number, g: number, b: number, coverage: number): void {
  const below = ((data[i + 3] as number) / 255) * (1 - coverage);
  const alpha = coverage + below;
  data[i] = (r * coverage + (data[i] as number) * below) / alpha + 0.5;
  data[i + 1] = (g * coverage + (data[i + 1] as number) * below) / alpha + 0.5;
  data[i + 2] = (b * coverage + (data[i + 2] as number) * below) / alpha + 0.5;
  data[i + 3] = alpha * 255 + 0.5;
}
