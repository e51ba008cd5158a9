// The smallest complete use of the package: load a model, caption a picked image.
import init, { Engine } from "./edgecap.js";

const $ = (id) => document.getElementById(id);
let engine = null;

await init();
document.body.dataset.state = "setup";

$("load").addEventListener("click", async () => {
  engine?.free();
  engine = null;
  document.body.dataset.state = "loading";
  try {
    engine = await Engine.fromUrl($("url").value, $("backend").value, (loaded, total) => {
      $("status").textContent = `Loading: ${Math.round((100 * loaded) / Math.max(total, 1))}%`;
    });
    $("status").textContent = `Ready on ${engine.backend} (${engine.adapter}).` +
      (engine.isTestModel ? " This is a test model with random weights: its words are noise." : "");
    document.body.dataset.state = "ready";
  } catch (e) {
    $("status").textContent = `Could not load the model (${e.code}): ${e.message}`;
    document.body.dataset.state = "error";
  }
});

$("image").addEventListener("change", async () => {
  const file = $("image").files[0];
  if (!engine || !file) return;
  const bitmap = await createImageBitmap(file);
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(bitmap, 0, 0);
  try {
    const { caption, ms } = await engine.captionImageData(ctx.getImageData(0, 0, bitmap.width, bitmap.height));
    $("caption").textContent = caption;
    $("status").textContent = `Captioned in ${Math.round(ms)} ms.`;
  } catch (e) {
    $("status").textContent = `Could not caption (${e.code}): ${e.message}`;
  }
});
