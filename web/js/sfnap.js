// Loads the sfnap wasm module (built by `make web` into web/pkg/) after checking
// that the browser has WebGPU, and shows a clear notice when it cannot run.

/** Which browsers run WebGPU, for the notice. */
export const WEBGPU_BROWSERS =
  "WebGPU runs in Chrome and Edge 113 or newer (on Linux: enable chrome://flags/#enable-unsafe-webgpu), " +
  "Safari 26 or newer, and Firefox 141 or newer on Windows (Firefox Nightly elsewhere).";

/** An error the page explains to the reader rather than a bug. */
export class Unsupported extends Error {}

/**
 * Imports and initializes the wasm module; resolves to its exports. Rejects with
 * `Unsupported` when the browser has no WebGPU or the module was not built.
 */
export async function loadSfnap() {
  if (!("gpu" in navigator)) {
    throw new Unsupported("This browser has no WebGPU (navigator.gpu is missing). " + WEBGPU_BROWSERS);
  }
  let mod;
  try {
    mod = await import("../pkg/sfnap.js");
    await mod.default();
  } catch (e) {
    throw new Unsupported(`The sfnap module could not be loaded (${e.message}). Build it with \`make web\`.`);
  }
  return mod;
}

/** Opens the device; resolves to the adapter's one-line description. */
export async function openAdapter(mod) {
  try {
    return await mod.adapter();
  } catch (e) {
    // No adapter although navigator.gpu exists: WebGPU disabled, blocklisted, or no usable GPU.
    throw new Unsupported(`${e.message || e}`);
  }
}

/** Shows `error` in the page's notice element (id `notice`), and returns its text. */
export function showNotice(error) {
  const box = document.getElementById("notice");
  const unsupported = error instanceof Unsupported;
  const text = error && error.message ? error.message : String(error);
  box.replaceChildren();
  const h = document.createElement("h2");
  h.textContent = unsupported ? "This browser cannot run sfnap's WebGPU kernels" : "Something went wrong";
  const p = document.createElement("p");
  p.textContent = text;
  box.append(h, p);
  if (unsupported && !text.includes("WebGPU runs in")) {
    const q = document.createElement("p");
    q.textContent = WEBGPU_BROWSERS;
    box.append(q);
  }
  box.hidden = false;
  return text;
}
