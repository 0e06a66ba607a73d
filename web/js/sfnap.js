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

/** The browser's own name for its adapter (wgpu sees only its description, often empty). */
async function browserAdapterName() {
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) {
    throw new Unsupported(
      "This browser has WebGPU but offers no adapter: WebGPU is disabled or blocklisted here, or there is no usable GPU."
    );
  }
  const info = adapter.info || {};
  return [info.vendor, info.architecture, info.description].filter(Boolean).join(" ") || "unnamed adapter";
}

/** Opens the device; resolves to the adapter's one-line description, e.g. `google swiftshader (BrowserWebGpu, Cpu)`. */
export async function openAdapter(mod) {
  const name = await browserAdapterName();
  let described;
  try {
    described = (await mod.adapter()).trim();
  } catch (e) {
    throw new Unsupported(`${e.message || e}`);
  }
  return described.startsWith("(") ? `${name} ${described}` : described;
}

/**
 * Shows `error` in the page's notice element (id `notice`) and returns its text. When the
 * browser cannot run the kernels, the notice names the browsers that can, and the page's
 * `main.demo` element (the demo that cannot run) is hidden.
 */
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
  if (unsupported) {
    const q = document.createElement("p");
    q.textContent = WEBGPU_BROWSERS;
    box.append(q);
    document.querySelector("main.demo")?.setAttribute("hidden", "");
  }
  box.hidden = false;
  return box.textContent;
}
