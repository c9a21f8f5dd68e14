/**
 * A hand-written 5×8 bitmap font for printable ASCII (32–126), plus '·' and '…'.
 *
 * Why not let sharp/librsvg render SVG text? Its output depends on which fonts the machine has
 * installed (a bare container may have none, and then text silently disappears or changes shape),
 * it costs tens of milliseconds per image, and it would make the "same request → same bytes"
 * promise depend on the host. A bitmap font is a few hundred bytes of data, draws in microseconds
 * and is identical everywhere.
 *
 * Each glyph is 8 rows of 5 bits (bit 4 = leftmost column), written as 16 hex digits. Rows 0–6
 * hold capitals and the body of lowercase letters; row 7 holds descenders (g, j, p, q, y, comma).
 */

export const GLYPH_WIDTH = 5;
export const GLYPH_HEIGHT = 8;
/** Horizontal distance from one glyph to the next, in font pixels (one column of spacing). */
export const GLYPH_ADVANCE = 6;

// prettier-ignore
const ASCII_GLYPHS: readonly string[] = [
  '0000000000000000', '0404040404000400', '0a0a0a0000000000', '0a0a1f0a1f0a0a00', // space ! " #
  '040f140e051e0400', '1819020408130300', '0c12140815120d00', '0404080000000000', // $ % & '
  '0204080808040200', '0804020202040800', '0004150e15040000', '0004041f04040000', // ( ) * +
  '00000000000c0408', '0000001f00000000', '00000000000c0c00', '0001020408100000', // , - . /
  '0e11131519110e00', '040c040404040e00', '0e11010204081f00', '1f02040201110e00', // 0 1 2 3
  '02060a121f020200', '1f101e0101110e00', '0608101e11110e00', '1f01020408080800', // 4 5 6 7
  '0e11110e11110e00', '0e11110f01020c00', '000c0c000c0c0000', '000c0c000c0c0408', // 8 9 : ;
  '0204081008040200', '00001f001f000000', '0804020102040800', '0e11010204000400', // < = > ?
  '0e11010d15150e00', '0e1111111f111100', '1e11111e11111e00', '0e11101010110e00', // @ A B C
  '1c12111111121c00', '1f10101e10101f00', '1f10101e10101000', '0e11101711110f00', // D E F G
  '1111111f11111100', '0e04040404040e00', '0702020202120c00', '1112141814121100', // H I J K
  '1010101010101f00', '111b151511111100', '1111191513111100', '0e11111111110e00', // L M N O
  '1e11111e10101000', '0e11111115120d00', '1e11111e14121100', '0f10100e01011e00', // P Q R S
  '1f04040404040400', '1111111111110e00', '11111111110a0400', '1111111515150a00', // T U V W
  '11110a040a111100', '1111110a04040400', '1f01020408101f00', '0e08080808080e00', // X Y Z [
  '0010080402010000', '0e02020202020e00', '040a110000000000', '000000000000001f', // \ ] ^ _
  '0804020000000000', '00000e010f110f00', '1010161911111e00', '00000e1010110e00', // ` a b c
  '01010d1311110f00', '00000e111f100e00', '0609081c08080800', '00000f11110f010e', // d e f g
  '1010161911111100', '04000c0404040e00', '020006020202120c', '1010121418141200', // h i j k
  '0c04040404040e00', '00001a1515111100', '0000161911111100', '00000e1111110e00', // l m n o
  '00001e11111e1010', '00000f11110f0101', '0000161910101000', '00000e100e011e00', // p q r s
  '08081c0808090600', '0000111111130d00', '00001111110a0400', '0000111115150a00', // t u v w
  '0000110a040a1100', '00001111110f010e', '00001f0204081f00', '0204040804040200', // x y z {
  '0404040404040400', '0804040204040800', '0000081502000000',                     // | } ~
];

// Characters outside ASCII that the placeholder draws itself: its own label and truncation mark.
const EXTRA_GLYPHS: Readonly<Record<string, string>> = {
  '·': '0000000c0c000000',
  '…': '0000000000001500',
};

/** Glyph bitmaps by character; built once at load. */
const GLYPHS: ReadonlyMap<string, Uint8Array> = (() => {
  const map = new Map<string, Uint8Array>();
  const parse = (hex: string): Uint8Array => {
    const rows = new Uint8Array(GLYPH_HEIGHT);
    for (let r = 0; r < GLYPH_HEIGHT; r++) rows[r] = parseInt(hex.slice(r * 2, r * 2 + 2), 16);
    return rows;
  };
  ASCII_GLYPHS.forEach((hex, i) => map.set(String.fromCharCode(32 + i), parse(hex)));
  for (const [ch, hex] of Object.entries(EXTRA_GLYPHS)) map.set(ch, parse(hex));
  return map;
})();

const FALLBACK = GLYPHS.get('?') as Uint8Array;

/** The 8 row bitmaps of a character; characters the font lacks draw as '?'. */
export function glyphRows(ch: string): Uint8Array {
  return GLYPHS.get(ch) ?? FALLBACK;
}

// Typographic characters common in prompts, mapped to their nearest ASCII look-alike.
const LOOKALIKES: Readonly<Record<string, string>> = {
  '‘': "'",
  '’': "'",
  '‚': ',',
  '“': '"',
  '”': '"',
  '„': '"',
  '–': '-',
  '—': '-',
  '−': '-',
  '\u00a0': ' ',
  '×': 'x',
  '«': '"',
  '»': '"',
};

/**
 * Turn arbitrary prompt text into characters the font can draw: accents are dropped
 * ("café" → "cafe") so Latin-script prompts stay readable, whitespace runs become one space,
 * and anything else outside the font becomes '?'.
 */
export function toFontText(text: string): string {
  let out = '';
  for (const ch of text.normalize('NFD').replace(/\p{M}/gu, '').replace(/\s+/gu, ' ')) {
    const mapped = LOOKALIKES[ch] ?? ch;
    out += GLYPHS.has(mapped) ? mapped : '?';
  }
  return out;
}

/** Width in pixels of a single line drawn at `scale` (no trailing spacing column). */
export function textWidth(length: number, scale: number): number {
  return length === 0 ? 0 : (length * GLYPH_ADVANCE - (GLYPH_ADVANCE - GLYPH_WIDTH)) * scale;
}

/** Where text is drawn: RGBA bytes, row-major. */
export interface TextTarget {
  width: number;
  height: number;
  data: Uint8Array;
}

/**
 * Draw one line of already font-safe text with its top-left corner at (x, y), each font pixel
 * an opaque `scale`×`scale` square of `rgba`. Parts outside the target are clipped.
 */
export function drawText(
  target: TextTarget,
  text: string,
  x: number,
  y: number,
  scale: number,
  rgba: readonly [number, number, number, number],
): void {
  const { width, height, data } = target;
  const [r, g, b, a] = rgba;
  let penX = x;
  for (const ch of text) {
    const rows = glyphRows(ch);
    for (let row = 0; row < GLYPH_HEIGHT; row++) {
      const bits = rows[row] as number;
      if (bits === 0) continue;
      const y0 = Math.max(0, y + row * scale);
      const y1 = Math.min(height, y + (row + 1) * scale);
      for (let col = 0; col < GLYPH_WIDTH; col++) {
        if ((bits & (0x10 >> col)) === 0) continue;
        const x0 = Math.max(0, penX + col * scale);
        const x1 = Math.min(width, penX + (col + 1) * scale);
        for (let py = y0; py < y1; py++) {
          for (let i = (py * width + x0) * 4, end = (py * width + x1) * 4; i < end; i += 4) {
            data[i] = r;
            data[i + 1] = g;
            data[i + 2] = b;
            data[i + 3] = a;
          }
        }
      }
    }
    penX += GLYPH_ADVANCE * scale;
  }
}
