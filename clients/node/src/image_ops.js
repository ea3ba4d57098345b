// Pillow-equivalent image operations the captioning preprocessing uses (8-bit RGB):
// alpha compositing on an opaque background (Image.alpha_composite + convert("RGB")) and the
// two-pass antialiased bilinear resize (Image.resize(..., BILINEAR, reducing_gap=None)),
// both in Pillow's fixed-point arithmetic so that every output byte matches.

const RESIZE_BITS = 32 - 8 - 2;
const COMPOSITE_BITS = 7;

/** RGBA (or grey+alpha expanded to RGBA) bytes composited on `background` -> RGB bytes. */
export function compositeOnBackground(rgba, pixels, background) {
  const out = new Uint8Array(pixels * 3);
  const shiftDiv255 = (a) => (((a >>> 8) + a) >>> 8);
  for (let p = 0; p < pixels; p += 1) {
    const a = rgba[p * 4 + 3];
    if (a === 0) {
      out.set(background, p * 3);
      continue;
    }
    const blend = 255 * (255 - a);
    const outa255 = a * 255 + blend;
    const coef1 = Math.floor((a * 255 * 255 * (1 << COMPOSITE_BITS)) / outa255);
    const coef2 = 255 * (1 << COMPOSITE_BITS) - coef1;
    for (let c = 0; c < 3; c += 1) {
      const tmp = rgba[p * 4 + c] * coef1 + background[c] * coef2;
      out[p * 3 + c] = shiftDiv255(tmp + (0x80 << COMPOSITE_BITS)) >>> COMPOSITE_BITS;
    }
  }
  return out;
}

function bilinear(x) {
  const ax = Math.abs(x);
  return ax < 1 ? 1 - ax : 0;
}

// Fixed-point filter coefficients of one axis: {bounds: [min, count] per output, k, ksize}.
function coefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 1.0 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const k = new Int32Array(outSize * ksize);
  for (let xx = 0; xx < outSize; xx += 1) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    const w = new Float64Array(xmax);
    let ww = 0;
    for (let x = 0; x < xmax; x += 1) {
      w[x] = bilinear((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (let x = 0; x < xmax; x += 1) {
      const v = ww !== 0 ? w[x] / ww : w[x];
      k[xx * ksize + x] = Math.trunc(v < 0 ? -0.5 + v * (1 << RESIZE_BITS) : 0.5 + v * (1 << RESIZE_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, k, ksize };
}

function clip8(ss) {
  const v = ss >> RESIZE_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Resize RGB bytes (h, w, 3) to (outH, outW, 3) like Pillow's BILINEAR resize: two 1-D
 * passes in Pillow's order (each rounds to 8 bits, so the order changes the last bit). */
export function resizeBilinear(rgb, width, height, outWidth, outHeight) {
  // Pillow's order (libImaging/Resample.c): the vertical pass first when the height shrinks by
  // more than twice as many pixels as the width does, else the horizontal pass first.
  const verticalFirst = height - outHeight > 0 && height - outHeight > (width - outWidth) * 2;
  if (verticalFirst && outWidth !== width) {
    const turned = resizeTwoPass(transpose(rgb, width, height), height, width, outHeight, outWidth);
    return transpose(turned, outHeight, outWidth);
  }
  return resizeTwoPass(rgb, width, height, outWidth, outHeight);
}

function transpose(rgb, width, height) {
  const out = new Uint8Array(rgb.length);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      for (let c = 0; c < 3; c += 1) out[(x * height + y) * 3 + c] = rgb[(y * width + x) * 3 + c];
    }
  }
  return out;
}

// Horizontal pass, then vertical pass (each skipped when its size is unchanged).
function resizeTwoPass(rgb, width, height, outWidth, outHeight) {
  let src = rgb;
  let srcWidth = width;
  if (outWidth !== width) {
    const { bounds, k, ksize } = coefficients(width, outWidth);
    const tmp = new Uint8Array(height * outWidth * 3);
    for (let y = 0; y < height; y += 1) {
      for (let xx = 0; xx < outWidth; xx += 1) {
        const xmin = bounds[xx * 2];
        const count = bounds[xx * 2 + 1];
        for (let c = 0; c < 3; c += 1) {
          let ss = 1 << (RESIZE_BITS - 1);
          for (let x = 0; x < count; x += 1) ss += src[(y * width + x + xmin) * 3 + c] * k[xx * ksize + x];
          tmp[(y * outWidth + xx) * 3 + c] = clip8(ss);
        }
      }
    }
    src = tmp;
    srcWidth = outWidth;
  }
  if (outHeight === height) return src;
  const { bounds, k, ksize } = coefficients(height, outHeight);
  const out = new Uint8Array(outHeight * srcWidth * 3);
  for (let yy = 0; yy < outHeight; yy += 1) {
    const ymin = bounds[yy * 2];
    const count = bounds[yy * 2 + 1];
    for (let x = 0; x < srcWidth; x += 1) {
      for (let c = 0; c < 3; c += 1) {
        let ss = 1 << (RESIZE_BITS - 1);
        for (let y = 0; y < count; y += 1) ss += src[((y + ymin) * srcWidth + x) * 3 + c] * k[yy * ksize + y];
        out[(yy * srcWidth + x) * 3 + c] = clip8(ss);
      }
    }
  }
  return out;
}
