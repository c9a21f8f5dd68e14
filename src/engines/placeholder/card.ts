import type { RawImage } from '../../contract/request.ts';
import { drawText, GLYPH_ADVANCE, GLYPH_HEIGHT, textWidth, toFontText } from './font.ts';
import type { Palette } from './palette.ts';

/** What the card says; `prompt` is the user's text, the rest is easel's own. */
export interface CardText {
  label: string;
  subtitle: string;
  meta: string;
  prompt: string;
}

type Colour = readonly [number, number, number, number];
const LABEL_COLOUR: Colour = [255, 255, 255, 255];
const SUBTITLE_COLOUR: Colour = [222, 222, 222, 255];
const META_COLOUR: Colour = [160, 160, 160, 255];
const PROMPT_COLOUR: Colour = [245, 245, 245, 255];
/** How much of the panel colour covers the picture: enough for white text on any palette. */
const PANEL_OPACITY = 0.76;
/** Longer prompt lines are tiring to read; wider cards wrap here. */
const MAX_PROMPT_CHARS = 52;

interface Line {
  text: string;
  scale: number;
  colour: Colour;
  /** Space above the line, in pixels. */
  gapBefore: number;
}

/** Font scale from picture size: 1 at 256 px, 2 at 512, 3 at 1024. */
function textScale(width: number, height: number): number {
  return Math.max(1, Math.round(Math.min(width, height) / 320));
}

/** A rectangle of the picture, in pixels. */
export interface Frame {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * Draw the text card: a semi-opaque rounded panel (alpha 255 even on transparent pictures) with
 * the PLACEHOLDER label, easel's note, the request summary and the wrapped prompt, laid out to fit
 * and centred in `frame` (the whole picture, or the region an edit changes).
 */
export function paintCard(image: RawImage, palette: Palette, text: CardText, frame: Frame): void {
  const { width, height } = image;
  const s = textScale(width, height);
  const margin = 4 * s;
  const pad = 6 * s + 2;
  const { header, body, ruleGap } = layoutLines(text, s, frame, { width, height, room: 2 * (pad + margin) });

  const lines = [...header, ...body];
  const innerWidth = Math.max(...lines.map((l) => textWidth(l.text.length, l.scale)));
  const cardWidth = innerWidth + 2 * pad;
  const cardHeight = linesHeight(lines) + 2 * pad;
  const left = clamp(Math.round(frame.left + (frame.width - cardWidth) / 2), margin, width - margin - cardWidth);
  const top = clamp(Math.round(frame.top + (frame.height - cardHeight) / 2), margin, height - margin - cardHeight);

  paintPanel(image, palette, left, top, cardWidth, cardHeight, 3 * s + 2);
  let y = top + pad;
  for (const l of lines) {
    y += l.gapBefore;
    drawText(image, l.text, left + pad, y, l.scale, l.colour);
    y += GLYPH_HEIGHT * l.scale;
  }
  if (body.length > 0) {
    const [r, g, b] = palette.accent;
    const ruleWidth = Math.min(innerWidth, 12 * GLYPH_ADVANCE * s);
    fillRect(image, left + pad, top + pad + linesHeight(header) + ruleGap, ruleWidth, s, [r, g, b, 255]);
  }
}

/**
 * The card's lines at text scale `s`: the label (twice as large, when it fits), the note and
 * summary, then as much of the prompt as fits in about three quarters of the frame's height.
 * `room` is the horizontal space padding and margins take.
 */
function layoutLines(
  text: CardText,
  s: number,
  frame: Frame,
  picture: { width: number; height: number; room: number },
): { header: Line[]; body: Line[]; ruleGap: number } {
  // A frame narrower than the label still gets a card as wide as the label; edges may clip.
  const labelWidth = textWidth(text.label.length, 2 * s);
  const usable = Math.max(frame.width, Math.min(picture.width, labelWidth + picture.room)) - picture.room;
  const maxChars = Math.max(1, Math.floor((usable + s) / (GLYPH_ADVANCE * s)));
  const header: Line[] = [
    line(toFontText(text.label), labelWidth <= usable ? 2 * s : s, LABEL_COLOUR, 0),
    ...wrap(toFontText(text.subtitle), maxChars, 2).map((t, k) => line(t, s, SUBTITLE_COLOUR, k === 0 ? 4 * s : 2 * s)),
    ...wrap(toFontText(text.meta), maxChars, 2).map((t) => line(t, s, META_COLOUR, 2 * s)),
  ];
  const headerChars = Math.max(...header.map((l) => (l.text.length * l.scale) / s));
  const promptChars = Math.min(maxChars, Math.max(headerChars, MAX_PROMPT_CHARS));
  const ruleGap = 5 * s;
  // Leave some of the picture visible around the card, even for long prompts.
  const room = Math.max(frame.height, picture.height / 3) * 0.72 - picture.room - linesHeight(header) - 2 * ruleGap;
  // The prompt always gets two lines, even in a small edit region: it is what the image reflects.
  const maxLines = Math.max(2, Math.min(12, Math.floor(room / ((GLYPH_HEIGHT + 2) * s))));
  const body = wrap(`"${toFontText(text.prompt)}"`, promptChars, maxLines).map((t, k) =>
    line(t, s, PROMPT_COLOUR, k === 0 ? 2 * ruleGap + s : 2 * s),
  );
  return { header, body, ruleGap };
}

function linesHeight(lines: readonly Line[]): number {
  return lines.reduce((sum, l) => sum + l.gapBefore + GLYPH_HEIGHT * l.scale, 0);
}

function line(text: string, scale: number, colour: Colour, gapBefore: number): Line {
  return { text, scale, colour, gapBefore };
}

function clamp(value: number, min: number, max: number): number {
  return Math.max(min, Math.min(max, value));
}

/**
 * Word-wrap into at most `maxLines` lines of at most `maxChars` characters; words longer than a
 * line are cut; text that does not fit ends in '…'.
 */
export function wrap(text: string, maxChars: number, maxLines: number): string[] {
  if (maxLines <= 0) return [];
  const lines: string[] = [];
  let current = '';
  for (const word of text.split(' ').filter((w) => w.length > 0)) {
    let rest = word;
    while (rest.length > 0) {
      const joined = current.length === 0 ? rest : `${current} ${rest}`;
      if (joined.length <= maxChars) {
        current = joined;
        rest = '';
      } else if (current.length > 0) {
        lines.push(current);
        current = '';
      } else {
        lines.push(rest.slice(0, maxChars));
        rest = rest.slice(maxChars);
      }
    }
  }
  if (current.length > 0) lines.push(current);
  if (lines.length <= maxLines) return lines;
  const kept = lines.slice(0, maxLines);
  const last = (kept[maxLines - 1] as string).slice(0, Math.max(0, maxChars - 1)).trimEnd();
  kept[maxLines - 1] = `${last}…`;
  return kept;
}

function paintPanel(
  image: RawImage,
  palette: Palette,
  left: number,
  top: number,
  w: number,
  h: number,
  radius: number,
): void {
  const { width, height, data } = image;
  const [pr, pg, pb] = palette.panel;
  const x0 = Math.max(0, left);
  const x1 = Math.min(width, left + w);
  for (let y = Math.max(0, top); y < Math.min(height, top + h); y++) {
    const dy = Math.max(top + radius - (y + 0.5), y + 0.5 - (top + h - radius), 0);
    for (let x = x0, i = (y * width + x) * 4; x < x1; x++, i += 4) {
      // Only the four corner squares need a distance; elsewhere coverage is 1.
      const dx = Math.max(left + radius - (x + 0.5), x + 0.5 - (left + w - radius), 0);
      const coverage = dx === 0 || dy === 0 ? 1 : clamp(radius + 0.5 - Math.sqrt(dx * dx + dy * dy), 0, 1);
      if (coverage === 0) continue;
      const t = PANEL_OPACITY * coverage;
      data[i] = (data[i] as number) + (pr - (data[i] as number)) * t;
      data[i + 1] = (data[i + 1] as number) + (pg - (data[i + 1] as number)) * t;
      data[i + 2] = (data[i + 2] as number) + (pb - (data[i + 2] as number)) * t;
      data[i + 3] = (data[i + 3] as number) + (255 - (data[i + 3] as number)) * coverage;
    }
  }
}

function fillRect(image: RawImage, x: number, y: number, w: number, h: number, rgba: Colour): void {
  const { width, height, data } = image;
  for (let py = Math.max(0, y); py < Math.min(height, y + h); py++) {
    for (let px = Math.max(0, x); px < Math.min(width, x + w); px++) {
      data.set(rgba, (py * width + px) * 4);
    }
  }
}
