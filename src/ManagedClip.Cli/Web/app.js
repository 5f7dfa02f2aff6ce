// The web page of `managedclip serve`: classify uploaded images (for each, bars sorted by probability beside the
// exact 224×224 image the model saw, from POST /preprocess, or that image's own error) and search the index when
// the server has one. Plain DOM code, no libraries; every server error is shown as the text of its {"error"}.
"use strict";

const $ = (id) => document.getElementById(id);

/** The server's one-line error for a failed reply, or a description of the failure itself. */
async function errorOf(response) {
  try {
    const body = await response.json();
    if (body && typeof body.error === "string") return `${body.error} (HTTP ${response.status})`;
  } catch { /* not JSON */ }
  return `the server answered HTTP ${response.status} ${response.statusText}`;
}

function showError(element, message) {
  element.textContent = message;
  element.hidden = !message;
}

async function refreshStatus() {
  try {
    const response = await fetch("healthz", { cache: "no-store" });
    const health = await response.json();
    if (!health.ready) {
      $("status").textContent = "The model is loading…";
      setTimeout(refreshStatus, 1000);
      return;
    }
    // The folder's name says which model; its full path (a detail of the server's disk) is in the tooltip.
    const folder = (health.model ?? "").split(" (weights ")[0].replace(/[\\/]+$/, "").split(/[\\/]/).pop();
    $("status").textContent = `Model ${folder} · ${health.embeddingSize}-d embeddings · ${health.kernelPath} kernels`;
    $("status").title = health.model ?? "";
    if (health.indexRows !== null && health.indexRows !== undefined) {
      $("search-section").hidden = false;
      $("index-size").textContent = `(${health.indexRows} images)`;
    }
  } catch (e) {
    $("status").textContent = `The server cannot be reached: ${e.message}`;
  }
}

/** The bars of one classified image, most probable first. */
function barsOf(reply) {
  const rows = reply.labels.map((label, i) => ({ label, prob: reply.probs[i] }))
    .sort((a, b) => b.prob - a.prob);
  const list = document.createElement("ol");
  list.className = "bars";
  for (const row of rows) {
    const item = document.createElement("li");
    item.dataset.label = row.label;
    item.dataset.prob = String(row.prob);
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = row.label;
    const track = document.createElement("span");
    track.className = "track";
    track.setAttribute("role", "meter");
    track.setAttribute("aria-valuemin", "0");
    track.setAttribute("aria-valuemax", "1");
    track.setAttribute("aria-valuenow", String(row.prob));
    track.setAttribute("aria-label", row.label);
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.width = `${(row.prob * 100).toFixed(2)}%`;
    track.append(fill);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = `${(row.prob * 100).toFixed(1)} %`;
    item.append(name, track, value);
    list.append(item);
  }
  return list;
}

/**
 * One image's card: its name, then the image the model saw beside its bars, or the server's one-line error for
 * that image alone (several images: the others are still classified).
 */
function cardOf(item) {
  const card = document.createElement("article");
  card.className = "result";
  card.dataset.image = item.image;
  const title = document.createElement("h3");
  title.textContent = item.image;
  card.append(title);
  if (typeof item.error === "string") {
    card.dataset.state = "error";
    const problem = document.createElement("p");
    problem.className = "error item-error";
    problem.setAttribute("role", "alert");
    problem.textContent = item.error;
    card.append(problem);
    return card;
  }
  card.dataset.state = "classified";
  const body = document.createElement("div");
  body.className = "result-body";
  const figure = document.createElement("figure");
  const seen = document.createElement("img");
  seen.className = "seen";
  seen.width = 224;
  seen.height = 224;
  seen.alt = `The 224 × 224 image the model saw for ${item.image}, after resizing and centre cropping`;
  const caption = document.createElement("figcaption");
  caption.textContent = "What the model saw (224 × 224)";
  figure.append(seen, caption);
  const box = document.createElement("div");
  box.className = "bars-box";
  box.append(barsOf(item));
  body.append(figure, box);
  card.append(body);
  return card;
}

/** Shows what the model saw for a classified image (POST /preprocess); a failure is shown in the card. */
async function showSeen(card, file) {
  const picture = new FormData();
  picture.append("image", file, file.name);
  const seen = await fetch("preprocess", { method: "POST", body: picture });
  if (!seen.ok) throw new Error(await errorOf(seen));
  const image = card.querySelector("img.seen");
  const loaded = new Promise((resolve) => { image.onload = resolve; image.onerror = resolve; });
  image.src = URL.createObjectURL(await seen.blob());
  await loaded;
}

async function classify(event) {
  event.preventDefault();
  const files = [...$("image").files];
  if (files.length === 0) { showError($("classify-error"), "Pick an image first."); return; }
  const button = $("classify");
  button.disabled = true;
  showError($("classify-error"), "");
  document.body.dataset.state = "classifying";
  const results = $("results");
  for (const image of results.querySelectorAll("img.seen")) {
    if (image.src.startsWith("blob:")) URL.revokeObjectURL(image.src);
  }
  results.replaceChildren();
  try {
    const form = new FormData();
    for (const file of files) form.append("image", file, file.name);
    form.append("labels", $("labels").value);
    form.append("template", $("template").value);
    const scores = await fetch("classify", { method: "POST", body: form });
    // A request-level error (one image that failed, no labels, too many images, ...) is the reply's status.
    if (!scores.ok) throw new Error(await errorOf(scores));
    const reply = await scores.json();
    // One image: one object; several: an array in upload order, each a result or {image, error}.
    const items = Array.isArray(reply) ? reply : [reply];
    const cards = items.map(cardOf);
    results.replaceChildren(...cards);
    results.hidden = false;
    // The preprocessed images one at a time, so a large upload does not fill the server's queue.
    for (let i = 0; i < cards.length; i++) {
      if (cards[i].dataset.state === "classified") await showSeen(cards[i], files[i]);
    }
    const failed = items.filter((item) => typeof item.error === "string").length;
    $("result-summary").textContent = items.length > 1
      ? `${items.length - failed} of ${items.length} images classified${failed > 0 ? `; ${failed} could not be read` : ""}` : "";
    document.body.dataset.state = "classified";
  } catch (e) {
    showError($("classify-error"), `Classify failed: ${e.message}`);
    document.body.dataset.state = "error";
  } finally {
    button.disabled = false;
  }
}

async function search(event) {
  event.preventDefault();
  showError($("search-error"), "");
  const list = $("hits");
  list.replaceChildren();
  try {
    const response = await fetch("search", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text: $("query").value, k: Number($("k").value) }),
    });
    if (!response.ok) throw new Error(await errorOf(response));
    for (const hit of await response.json()) {
      const item = document.createElement("li");
      const path = document.createElement("span");
      path.className = "path";
      path.textContent = hit.relative_path;
      path.title = hit.path;
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = hit.score.toFixed(4);
      item.append(path, score);
      list.append(item);
    }
  } catch (e) {
    showError($("search-error"), `Search failed: ${e.message}`);
  }
}

function setUpDrop() {
  const zone = $("drop");
  const input = $("image");
  const named = () => {
    const names = [...input.files].map((file) => file.name);
    $("file-name").textContent = names.length === 0 ? "" : names.length === 1 ? `Selected: ${names[0]}`
      : `Selected ${names.length} images: ${names.join(", ")}`;
  };
  input.addEventListener("change", named);
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files.length > 0) {
      input.files = e.dataTransfer.files;
      named();
    }
  });
}

setUpDrop();
$("classify-form").addEventListener("submit", classify);
$("search-form").addEventListener("submit", search);
refreshStatus();
