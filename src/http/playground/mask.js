// The edit image and its mask: the image on one canvas, the painted area on a second canvas laid
// over it at the same pixel size. Azure's convention: the mask's alpha 0 marks where to edit.

export class MaskPainter {
  constructor({ imageCanvas, maskCanvas, sizeInput, toolInputs }) {
    this.imageCanvas = imageCanvas;
    this.maskCanvas = maskCanvas;
    this.sizeInput = sizeInput;
    this.toolInputs = toolInputs;
    this.painted = false;
    this.last = null;
    /** Set by load(): an empty <canvas> is 300×150 by default, so its size says nothing. */
    this.hasImage = false;
    maskCanvas.addEventListener('pointerdown', (event) => this.start(event));
    maskCanvas.addEventListener('pointermove', (event) => this.move(event));
    for (const name of ['pointerup', 'pointercancel', 'pointerleave'])
      maskCanvas.addEventListener(name, () => (this.last = null));
  }

  /** Show `source` (an image or bitmap) and start a fresh mask of its size. */
  load(source) {
    const width = source.naturalWidth ?? source.width;
    const height = source.naturalHeight ?? source.height;
    for (const canvas of [this.imageCanvas, this.maskCanvas]) {
      canvas.width = width;
      canvas.height = height;
    }
    this.imageCanvas.getContext('2d').drawImage(source, 0, 0);
    this.hasImage = width > 0 && height > 0;
    this.clear();
  }

  get loaded() {
    return this.hasImage;
  }

  clear() {
    this.maskCanvas.getContext('2d').clearRect(0, 0, this.maskCanvas.width, this.maskCanvas.height);
    this.painted = false;
  }

  /** The brush size is in screen pixels; the canvas may be shown smaller or larger than its pixels. */
  scale() {
    const rect = this.maskCanvas.getBoundingClientRect();
    return rect.width > 0 ? this.maskCanvas.width / rect.width : 1;
  }

  point(event) {
    const rect = this.maskCanvas.getBoundingClientRect();
    const scale = this.scale();
    return { x: (event.clientX - rect.left) * scale, y: (event.clientY - rect.top) * scale };
  }

  start(event) {
    if (!this.loaded) return;
    event.preventDefault();
    this.maskCanvas.setPointerCapture?.(event.pointerId);
    this.last = this.point(event);
    this.stroke(this.last, this.last);
  }

  move(event) {
    if (!this.last) return;
    event.preventDefault();
    const next = this.point(event);
    this.stroke(this.last, next);
    this.last = next;
  }

  stroke(from, to) {
    const erase = this.toolInputs.find((input) => input.checked)?.value === 'eraser';
    const ctx = this.maskCanvas.getContext('2d');
    ctx.save();
    ctx.globalCompositeOperation = erase ? 'destination-out' : 'source-over';
    ctx.strokeStyle = '#ff2d55';
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.lineWidth = Number(this.sizeInput.value) * this.scale();
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x + 0.01, to.y);
    ctx.stroke();
    ctx.restore();
    if (!erase) this.painted = true;
  }

  /** The image as PNG. */
  imageBlob() {
    return toBlob(this.imageCanvas);
  }

  /** The mask as PNG: opaque everywhere, alpha 0 where painted (edit here); null when nothing is painted. */
  async maskBlob() {
    if (!this.painted) return null;
    const canvas = document.createElement('canvas');
    canvas.width = this.maskCanvas.width;
    canvas.height = this.maskCanvas.height;
    const ctx = canvas.getContext('2d');
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.globalCompositeOperation = 'destination-out';
    ctx.drawImage(this.maskCanvas, 0, 0);
    return toBlob(canvas);
  }
}

function toBlob(canvas) {
  return new Promise((resolve, reject) =>
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error('could not encode the canvas'))), 'image/png'),
  );
}
